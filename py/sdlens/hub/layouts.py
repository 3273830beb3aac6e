"""Which files of a Hub repo are which part of a Stable Diffusion model.

Two layouts are read:

* **optimum**: what `optimum-cli export onnx --task text-to-image` writes (and
  `schmuell/sd-turbo-ort-web` publishes): `model_index.json`, one folder per component with its
  `model.onnx` (maybe external data beside it) and `config.json`, `tokenizer/`, `scheduler/`;
* **root files**: graphs in the repo root under names of their own (the WebNN demos'), for the
  repos `known` names them for.

A listing is the Hub tree API's answer, normalised by `listing()`: one entry per file with its
path, size, sha256 (for LFS files) and git blob id.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..errors import SdlensError
from .known import known

COMPONENTS = ("text_encoder", "unet", "vae_decoder", "vae_encoder")
OPTIONAL = ("vae_encoder",)
TOKENIZER_FILES = {"vocab": "tokenizer/vocab.json", "merges": "tokenizer/merges.txt",
                   "config": "tokenizer/tokenizer_config.json"}
CONFIGS = {"model_index": "model_index.json", "unet": "unet/config.json", "vae": "vae_decoder/config.json",
           "text_encoder": "text_encoder/config.json", "scheduler": "scheduler/scheduler_config.json"}


def listing(tree: list[dict]) -> list[dict]:
    """The tree API's entries (`/api/models/{repo}/tree/{rev}?recursive=true`) → files only,
    as {path, bytes, sha256 (LFS files; else None), git_oid}."""
    files = []
    for entry in tree:
        if entry.get("type", "file") != "file":
            continue
        lfs = entry.get("lfs") or {}
        files.append({"path": entry["path"], "bytes": int(entry["size"]),
                      "sha256": lfs.get("oid") or lfs.get("sha256"), "git_oid": entry.get("oid")})
    return files


@dataclass
class Layout:
    kind: str  # "optimum" or "root files"
    #: component → its graph file first, then its external data files (repo paths)
    graphs: dict[str, list[str]]
    #: config name (CONFIGS) → repo path, for those the repo has
    configs: dict[str, str] = field(default_factory=dict)
    #: "vocab"/"merges"/"config" → repo path; empty when the tokenizer comes from elsewhere
    tokenizer: dict[str, str] = field(default_factory=dict)


def read_layout(repo: str, files: list[dict]) -> Layout:
    paths = {f["path"] for f in files}
    named = known(repo).get("files")
    if named:
        missing = [p for p in named.values() if p not in paths]
        if missing:
            raise SdlensError(f"{repo} does not have the files sdlens knows it by: missing {', '.join(missing)}"
                              f"{_found(paths)}")
        return Layout("root files", {c: [p] + _beside(p, paths) for c, p in named.items()})
    graphs = {}
    for component in COMPONENTS:
        graph = f"{component}/model.onnx"
        if graph in paths:
            graphs[component] = [graph] + _beside(graph, paths)
    missing = [c for c in COMPONENTS if c not in graphs and c not in OPTIONAL]
    if missing:
        what = ", ".join(f"{c}/model.onnx" for c in missing)
        raise SdlensError(f"{repo} is not a Stable Diffusion ONNX export that sdlens can read: it has no {what}"
                          f"{_found(paths)}")
    tokenizer = {k: p for k, p in TOKENIZER_FILES.items() if p in paths}
    if not {"vocab", "merges"} <= set(tokenizer):
        raise SdlensError(f"{repo} has no CLIP tokenizer (tokenizer/vocab.json and tokenizer/merges.txt){_found(paths)}")
    return Layout("optimum", graphs, {k: p for k, p in CONFIGS.items() if p in paths}, tokenizer)


def tokenizer_entries(repo: str, files: list[dict], folder: str) -> dict[str, dict]:
    """A tokenizer kept in another repo's `folder` (the known table's `tokenizer`): "vocab"/
    "merges"/"config" → its listing entry, with `source` its path there and `path` the one it
    takes in a model folder (tokenizer/…)."""
    theirs = {f["path"]: f for f in files}
    entries = {}
    for key, ours in TOKENIZER_FILES.items():
        source = f"{folder}/{ours.split('/', 1)[1]}"
        if source in theirs:
            entries[key] = {**theirs[source], "path": ours, "source": source}
        elif key != "config":
            raise SdlensError(f"{repo} has no {source}, which the tokenizer needs{_found(set(theirs))}")
    return entries


def _beside(graph: str, paths: set[str]) -> list[str]:
    """A graph's external data: the files onnx writes beside it (`model.onnx_data`, `weights.pb`)."""
    folder = graph.rpartition("/")[0]
    if not folder:  # in the repo root, only the graph's own `<name>_data` / `<name>.data`
        return sorted(p for p in paths if p in (graph + "_data", graph + ".data"))
    return sorted(p for p in paths if p.rpartition("/")[0] == folder and p != graph
                  and not p.endswith((".json", ".md", ".txt", ".onnx")))


def _found(paths: set[str]) -> str:
    shown = sorted(paths)
    more = f" and {len(shown) - 30} more" if len(shown) > 30 else ""
    return f" (found: {', '.join(shown[:30]) or 'no files'}{more})"
