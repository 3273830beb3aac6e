"""`sdlens fetch OWNER/REPO --out models/NAME`: a Stable Diffusion ONNX repo from the Hugging Face
Hub → an sdlens model folder, without PyTorch.

The files are downloaded as published (byte-equal, same paths), each checked against the Hub's
own listing: the sha256 of LFS files, the git blob id of small ones, and every size. The graphs'
inputs and outputs are read from the graphs themselves (onnx, without loading their weights),
then `sdlens.hub.describe` writes the manifest, so `serve.py --models`, `sdlens site` and
`sdlens generate` use the folder as they use an exported one.

huggingface_hub does the downloading: it honours HF_ENDPOINT (or --hub-endpoint), a token
(HF_TOKEN or `huggingface-cli login`), and resumes a file cut off in the middle. Files gather in
OUT.partial/ (a second run resumes there); OUT itself appears only once everything is checked.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path

from ..errors import SdlensError
from ..hub import describe as hub_describe
from ..hub.known import endpoint_from, known
from ..hub.layouts import listing, read_layout, tokenizer_entries

ONNX_DTYPES = {1: "float32", 10: "float16", 6: "int32", 7: "int64", 11: "float64", 16: "bfloat16", 9: "bool"}


RETRIES = 3  # resumptions of one file whose connection was lost


def _lost_connection(err: Exception) -> bool:
    import requests

    return isinstance(err, (requests.ConnectionError, requests.exceptions.ChunkedEncodingError, requests.ReadTimeout))


def _hub():
    try:
        import huggingface_hub
    except ImportError:
        raise SdlensError("sdlens fetch needs huggingface_hub and onnx: pip install 'sdlens[hub]'") from None
    return huggingface_hub


def _explain(err: Exception, repo: str, what: str) -> SdlensError:
    """huggingface_hub's errors in a user's words, naming the repo (or file)."""
    from huggingface_hub import errors

    status = getattr(getattr(err, "response", None), "status_code", None)
    if isinstance(err, errors.GatedRepoError) or status == 403:
        return SdlensError(f"{repo} is gated: its licence must be accepted on the Hub first. Accept it there, then "
                           f"fetch with a token: HF_TOKEN=hf_… sdlens fetch {repo} (or run huggingface-cli login)")
    if isinstance(err, errors.RevisionNotFoundError):
        return SdlensError(f"{repo} has no revision {what!r}")
    if isinstance(err, errors.RepositoryNotFoundError) or status in (401, 404):
        if status == 401:
            return SdlensError(f"{repo} was not found, or it is private: a private repo needs a token "
                               f"(HF_TOKEN=hf_… sdlens fetch {repo}, or huggingface-cli login)")
        return SdlensError(f"{repo}: no such model repo on the Hub")
    if isinstance(err, errors.EntryNotFoundError):
        return SdlensError(f"{repo}: {what} is listed but the Hub did not serve it")
    return SdlensError(f"{repo}: {what} could not be downloaded ({type(err).__name__}: {err})")


def _git_oid(path: Path) -> str:
    """The id git gives a file's contents (sha1 of "blob <size>\\0" + bytes): what the Hub lists
    for files too small for LFS."""
    digest = hashlib.sha1(f"blob {path.stat().st_size}\0".encode())
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def check_file(path: Path, entry: dict, repo: str) -> str:
    """Size and checksum against the listing; the file's sha256. A file that fails is deleted."""
    problem = None
    if path.stat().st_size != entry["bytes"]:
        problem = f"is {path.stat().st_size} bytes, but the Hub lists {entry['bytes']}"
    else:
        sha256 = _sha256(path)
        if entry.get("sha256") and sha256 != entry["sha256"]:
            problem = "does not match the sha256 the Hub lists for it"
        elif not entry.get("sha256") and entry.get("git_oid") and _git_oid(path) != entry["git_oid"]:
            problem = "does not match the git blob id the Hub lists for it"
    if problem:
        path.unlink()
        raise SdlensError(f"{repo}: {entry['path']} {problem}; the file was deleted, run the fetch again")
    return sha256


def graph_io(path: Path) -> dict:
    """A graph's inputs and outputs ({name, dtype, shape}) and its precision (fp16 when most of its
    weights are float16), read without loading external data."""
    import onnx

    graph = onnx.load(os.fspath(path), load_external_data=False).graph
    weights = {i.name for i in graph.initializer}

    def value(v):
        t = v.type.tensor_type
        return {"name": v.name, "dtype": ONNX_DTYPES.get(t.elem_type, str(t.elem_type)),
                "shape": [d.dim_value if d.HasField("dim_value") else (d.dim_param or None) for d in t.shape.dim]}

    counts = {1: 0, 10: 0}
    for init in graph.initializer:
        if init.data_type in counts:
            n = 1
            for d in init.dims:
                n *= d
            counts[init.data_type] += n
    return {"inputs": [value(v) for v in graph.input if v.name not in weights],
            "outputs": [value(v) for v in graph.output],
            "precision": "fp16" if counts[10] > counts[1] else "fp32"}


def fetch(repo: str, out: Path, revision: str | None = None, endpoint: str | None = None, name: str | None = None,
          force: bool = False, log=print) -> dict:
    hf = _hub()
    endpoint = endpoint_from(endpoint)
    out = Path(out)
    if out.exists() and not force:
        raise SdlensError(f"{out} already exists; pass --force to replace it")
    api = hf.HfApi(endpoint=endpoint)
    try:
        info = api.model_info(repo, revision=revision)
        files = listing([_tree_entry(e) for e in api.list_repo_tree(repo, revision=info.sha, recursive=True)])
    except Exception as err:  # noqa: BLE001 (every Hub error gets its message)
        raise _explain(err, repo, revision or "main") from None
    commit = info.sha
    layout = read_layout(repo, files)
    by_path = {f["path"]: f for f in files}
    partial = out.with_name(out.name + ".partial")
    partial.mkdir(parents=True, exist_ok=True)

    def download(source_repo: str, path: str, at: str, entry: dict, dest: str | None = None) -> Path:
        """`path` of `source_repo` at commit `at` into OUT.partial/ (at `dest`, else its own path),
        checked against its listing `entry`, which then holds the file's sha256."""
        for attempt in range(RETRIES + 1):
            try:
                local = Path(hf.hf_hub_download(source_repo, path, revision=at, local_dir=partial, endpoint=endpoint))
                break
            except Exception as err:  # noqa: BLE001
                # A connection lost mid-file leaves the bytes so far in OUT.partial/.cache; the next
                # call asks for the rest with Range (huggingface_hub resumes only some of these itself).
                if attempt < RETRIES and _lost_connection(err):
                    log(f"  {path}: the connection was lost ({type(err).__name__}); resuming")
                    continue
                raise _explain(err, source_repo, path) from None
        if dest and dest != path:
            target = partial / dest
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(local, target)
            local = target
        entry["sha256"] = check_file(local, {**entry, "path": path}, source_repo)
        return local

    configs = {}
    for key, path in layout.configs.items():
        configs[key] = json.loads(download(repo, path, commit, by_path[path]).read_text(encoding="utf-8"))
    if "config" in layout.tokenizer:
        path = layout.tokenizer["config"]
        configs["tokenizer"] = json.loads(download(repo, path, commit, by_path[path]).read_text("utf-8"))
    card = info.card_data.to_dict() if getattr(info, "card_data", None) else {}
    plan = hub_describe.summary(repo, files, layout, configs, card)
    log(f"{repo} at {commit[:12]}: {plan['bytes'] / 1e6:.1f} MB, {plan['precision']} "
        f"(needs {plan['needs']} in a browser), licence: {plan['licence'] or 'see the repo'}")
    graphs = {}
    for component, paths in layout.graphs.items():
        for path in paths:
            log(f"  {path} ({by_path[path]['bytes'] / 1e6:.1f} MB)")
            download(repo, path, commit, by_path[path])
        graphs[component] = graph_io(partial / paths[0])
    tokenizer_files = None
    source = known(repo).get("tokenizer")
    if source:  # the layout has no tokenizer: the repo it was made with has it (the known table)
        tokenizer_files = _fetch_tokenizer(api, source, download)
    else:
        for key, path in layout.tokenizer.items():
            if key != "config":
                download(repo, path, commit, by_path[path])
    manifest = hub_describe.describe(repo, commit, files, layout, configs, graphs, tokenizer_files,
                                     name=name or out.name, card=card)
    manifest["hub"]["endpoint"] = endpoint
    (partial / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    shutil.rmtree(partial / ".cache", ignore_errors=True)  # huggingface_hub's download bookkeeping
    if out.exists():
        shutil.rmtree(out)
    os.replace(partial, out)
    from ..model import Model

    Model.from_dir(os.fspath(out), variant=next(iter(manifest["components"]["unet"]["variants"])))  # all there, all checked
    return manifest


def _tree_entry(item) -> dict:
    """huggingface_hub's RepoFile/RepoFolder → the tree API's JSON shape."""
    if not hasattr(item, "size"):
        return {"type": "directory", "path": item.path}
    lfs = getattr(item, "lfs", None)
    return {"type": "file", "path": item.path, "size": item.size, "oid": getattr(item, "blob_id", None),
            "lfs": {"oid": lfs.sha256, "size": lfs.size} if lfs else None}


def _fetch_tokenizer(api, source: dict, download) -> dict:
    """The tokenizer from the repo the known table names (`source`), into the folder's tokenizer/."""
    repo, folder = source["repo"], source["folder"]
    try:
        info = api.model_info(repo)
        files = listing([_tree_entry(e) for e in api.list_repo_tree(repo, path_in_repo=folder, revision=info.sha,
                                                                      recursive=True)])
    except Exception as err:  # noqa: BLE001
        raise _explain(err, repo, folder) from None
    entries = tokenizer_entries(repo, files, folder)
    for entry in entries.values():
        download(repo, entry["source"], info.sha, entry, dest=entry["path"])
    return {key: {k: v for k, v in entry.items() if k in ("path", "bytes", "sha256", "git_oid")}
            for key, entry in entries.items()}
