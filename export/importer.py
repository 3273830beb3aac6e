"""`python -m export import DIR`: an already-exported ONNX Stable Diffusion folder → an sdlens model.

Many models are published already converted, in the layout `optimum-cli export onnx --task
text-to-image` writes: `text_encoder/`, `unet/`, `vae_decoder/`, `vae_encoder/` (each a
`model.onnx`, maybe with `model.onnx_data`, and the component's `config.json`), `tokenizer/`,
`scheduler/scheduler_config.json` and `model_index.json`. This turns such a folder into an sdlens
model folder (manifest, sha256 of every file, the precision variants, the gzipped tokenizer, files
split under the browser's size limit) with onnx and onnxruntime alone: no PyTorch, no diffusers
model code. Each variant's parity is measured against the source graph on the same inputs.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np

from sdlens.errors import SdlensError

from . import manifest as manifest_mod
from . import attention
from .convert import (COMPONENTS, OWNER_FILE, _move_into_place, check_folder, make_world_readable,
                      release_memory, remove_stale_work, write_component_variants)
from .variants import MAX_FILE_BYTES, check_file_limit

REQUIRED = [
    "model_index.json",
    "text_encoder/model.onnx",
    "unet/model.onnx", "unet/config.json",
    "vae_decoder/model.onnx", "vae_decoder/config.json",
    "vae_encoder/model.onnx",
    "text_encoder/config.json",
    "tokenizer/vocab.json", "tokenizer/merges.txt",
    "scheduler/scheduler_config.json",
]
# The graph inputs sdlens feeds (optimum's names).
INPUTS = {"text_encoder": ["input_ids"], "unet": ["sample", "timestep", "encoder_hidden_states"],
          "vae_decoder": ["latent_sample"], "vae_encoder": ["sample"]}


def check_source(src: Path) -> None:
    """A clear message naming everything that makes SRC not an optimum ONNX SD export."""
    if not src.is_dir():
        raise SdlensError(f"{src}: no such folder")
    missing = [p for p in REQUIRED if not (src / p).is_file()]
    if missing:
        hint = (" (it looks like a diffusers PyTorch folder: use python -m export convert)"
                if (src / "unet" / "config.json").is_file() and not (src / "unet" / "model.onnx").is_file() else "")
        raise SdlensError(f"{src} is not an ONNX Stable Diffusion export (optimum-cli export onnx layout): "
                          f"missing {', '.join(missing)}{hint}")
    import onnx

    for component, names in INPUTS.items():
        graph = onnx.load(os.fspath(src / component / "model.onnx"), load_external_data=False).graph
        have = {i.name: i.type.tensor_type.elem_type for i in graph.input}
        absent = [n for n in names if n not in have]
        if absent:
            raise SdlensError(f"{src}/{component}/model.onnx has no input {', '.join(absent)} "
                              f"(it has: {', '.join(have)})")
        floats = [n for n in names if have[n] == onnx.TensorProto.FLOAT16]
        if floats:
            raise SdlensError(f"{src}/{component}/model.onnx takes float16 inputs ({', '.join(floats)}); "
                              "import needs an fp32 export (sdlens makes the fp16 variant itself)")


def _json(path: Path) -> dict:
    return json.loads(path.read_text())


def describe(src: Path, sessions: dict) -> dict:
    """The manifest's model numbers, from the components' config files (and the ONNX VAE encoder
    for the latent→RGB preview map)."""
    from .latent_rgb import fit

    unet, vae = _json(src / "unet" / "config.json"), _json(src / "vae_decoder" / "config.json")
    text = _json(src / "text_encoder" / "config.json")
    scheduler = {k: v for k, v in _json(src / "scheduler" / "scheduler_config.json").items()
                 if not k.startswith("_") or k == "_class_name"}
    tokenizer_config = src / "tokenizer" / "tokenizer_config.json"
    max_length = _json(tokenizer_config).get("model_max_length", 77) if tokenizer_config.is_file() else 77
    sample_size = unet.get("sample_size", 64)
    sample_size = sample_size if isinstance(sample_size, int) else sample_size[0]
    scale = 2 ** (len(vae.get("block_out_channels", [1, 1, 1, 1])) - 1)
    scaling = float(vae.get("scaling_factor", 0.18215))
    channels = int(unet.get("in_channels", 4))
    encoder = sessions["vae_encoder"]

    def encode(image):
        (params,) = encoder.run(None, {"sample": image})
        return params[:, :channels] * scaling  # latent_parameters = mean ‖ logvar

    return {
        "source": os.fspath(src),
        "sample_size": sample_size,
        "tokenizer_max_length": min(int(max_length), 77),
        "latent_channels": channels,
        "vae_scale_factor": scale,
        "vae_scaling_factor": scaling,
        "latent_rgb": fit(encode, sample_size * scale, scale),
        "text_hidden_size": int(text["hidden_size"]),
        "prediction_type": scheduler.get("prediction_type", "epsilon"),
        "scheduler_config": scheduler,
    }


def reference(session, component: str, d: dict, tokenizer_json: Path, seed: int = 0):
    """(feeds, the source graph's output) on fixed inputs of the model's native size: what each
    variant of `component` is checked against."""
    from sdlens.tokenizer import ClipTokenizer

    rng = np.random.default_rng([seed, COMPONENTS.index(component)])
    s, scale, c = d["sample_size"], d["vae_scale_factor"], d["latent_channels"]
    if component == "text_encoder":
        ids = ClipTokenizer.from_file(os.fspath(tokenizer_json)).encode("a photo of a red circle").ids
        feed = {"input_ids": np.array([ids], np.int64)}
    elif component == "unet":
        feed = {"sample": rng.standard_normal((2, c, s, s), np.float32), "timestep": np.array(500.0, np.float32),
                "encoder_hidden_states": rng.standard_normal((2, d["tokenizer_max_length"], d["text_hidden_size"]),
                                                             np.float32)}
    elif component == "vae_decoder":
        feed = {"latent_sample": rng.standard_normal((1, c, s, s), np.float32)}
    else:
        feed = {"sample": rng.random((1, 3, s * scale, s * scale), np.float32) * 2 - 1}
    feed = _adapt(session, feed)
    (expected,) = session.run([session.get_outputs()[0].name], feed)
    return feed, expected


def _adapt(session, feed: dict) -> dict:
    """Give each input the dtype and rank the source graph declares (older exports take e.g. an
    int64 timestep of shape [1])."""
    types = {"tensor(float)": np.float32, "tensor(int64)": np.int64, "tensor(int32)": np.int32,
             "tensor(double)": np.float64}
    adapted = {}
    for spec in session.get_inputs():
        value = np.asarray(feed[spec.name]).astype(types.get(spec.type, np.float32))
        if len(spec.shape) != value.ndim:
            value = value.reshape([1] * len(spec.shape)) if value.size == 1 else value
        adapted[spec.name] = value
    return adapted


def import_folder(src: str, out: Path, variants: list[str], force: bool = False, name: str | None = None,
                  defaults: dict | None = None, quiet: bool = False, max_file_bytes: int = MAX_FILE_BYTES) -> dict:
    """Import the ONNX export at SRC into the sdlens model folder OUT. Returns the manifest."""
    import onnxruntime as ort

    from . import parity
    from .clip_vocab import write_tokenizer_json

    source = Path(src)
    out = Path(out)
    max_file_bytes = check_file_limit(max_file_bytes)
    check_source(source)
    if out.exists() and not force:
        raise SdlensError(f"{out} already exists; pass --force to replace it")
    if out.resolve() == source.resolve():
        raise SdlensError("the output folder must differ from the source folder")
    out.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_work(out, quiet=quiet)
    work = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=out.parent))
    (work / OWNER_FILE).write_text(f"{os.getpid()}\n")
    try:
        staging, final = work / "_staging", work / "model"
        final.mkdir()
        write_tokenizer_json(source / "tokenizer", staging / "tokenizer.json")
        manifest_mod.gzip_file(staging / "tokenizer.json", final / manifest_mod.TOKENIZER_FILE)

        options = ort.SessionOptions()
        options.log_severity_level = 3

        def session(component):
            return ort.InferenceSession(os.fspath(source / component / "model.onnx"), options,
                                        providers=["CPUExecutionProvider"])

        description = describe(source, {"vae_encoder": session("vae_encoder")})
        refs = {}
        for component in COMPONENTS:  # one source session at a time: a full-size UNet is 3.5 GB
            one = session(component)
            refs[component] = reference(one, component, description, staging / "tokenizer.json")
            del one
            release_memory()

        files: dict = {}
        report: dict = {}
        for component in COMPONENTS:
            files[component], report[component] = write_component_variants(
                component, source / component / "model.onnx", final / component, variants, refs[component],
                max_file_bytes, quiet,
                # per-word attention maps, as convert adds them
                after_write=attention.add_to_file if component == "unet" else None)

        manifest = manifest_mod.build(description, name=name or out.name, root=final, files=files, parity=report,
                                      defaults={k: v for k, v in (defaults or {}).items() if v is not None})
        manifest["imported_from"] = "onnx (optimum layout); parity is against the source graphs"
        manifest["max_file_bytes"] = max_file_bytes
        manifest_mod.write(final, manifest)
        check_folder(final, manifest, max_file_bytes)
        make_world_readable(final)
        if not quiet:
            print(parity.format_report(report).replace("vs PyTorch", "vs the source ONNX graphs"))
        _move_into_place(final, out)
        return manifest
    finally:
        shutil.rmtree(work, ignore_errors=True)
