"""`manifest.json`: the one file that describes an exported model to every sdlens runtime.

Runtimes read nothing else up front: which files to fetch (with sizes and sha256, so the browser
can show progress and verify), each graph's inputs and outputs, which browser backends each
precision variant suits, and the numbers the pipeline needs (latent shape, VAE scaling factor,
scheduler config, defaults such as SD-Turbo's 1 step at guidance 0).

Files. `components.<name>.variants.<variant>.files` is `[graph, data0, data1, …]`: the graph file
(`model_<variant>.onnx`) first, then, for a graph too big for one file, the external-data files
its tensors point into (`model_<variant>-00.onnx_data`, `-01`, …), each entry with its own
`path`, `bytes` and `sha256`. No file is over `max_file_bytes` (default 512 MiB, see
`export.variants.MAX_FILE_BYTES`), so the browser hashes, caches and hands to onnxruntime-web one
file at a time; runtimes pass `files[1:]` as external data under their base names, which is how
the graph names them. The folder holds nothing else but `manifest.json`.

Preview decoder (optional, `export convert --preview-decoder TAESD`). `components.preview_decoder`
has the shape of every component (`variants` → `files`, `inputs`, `outputs`, `backends`,
`parity`), one input `latent_sample` [batch, 4, h, w] and one output `sample` [batch, 3, 8h, 8w]
(the model's `vae_scale_factor`), plus:
- `scaling_factor`: divide the pipeline's latents by it before the graph. TAESD for SD: 1.0, it
  takes SD's scaled latents as they are (the VAE instead gets latents / `vae_scaling_factor`).
- `output_range`: [-1, 1], as the VAE's: pixels are `clamp(x / 2 + 0.5, 0, 1)`.
- `architecture`, `source`: what it is and where it came from.
It is for per-step previews only; the final image always comes from `vae_decoder`. Runtimes that
need only the four SD graphs ignore it (`sdlens.model.COMPONENTS` does not list it).

UNet. `components.unet.self_attention` (written by `export convert`): `per-head` where the
self-attention was exported one head at a time to fit in memory (`export.sliced_attention`),
`whole` otherwise. The graph computes the same either way; it is there to say how it was made.

Scheduler. `scheduler_config` is the model's own (its diffusers `_class_name` included);
`defaults.scheduler` is what runs by default. When sdlens lacks the model's own scheduler a
stand-in runs on the same config and the top-level `scheduler_note` says so.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import onnx

from sdlens.model import MANIFEST_FORMAT
from sdlens.schedulers import DIFFUSERS_CLASSES, SCHEDULERS, as_bool

from .variants import BACKENDS

# CLIP's vocabulary and merges take 3.6 MB as JSON and 0.6 MB gzipped. The browser downloads the
# tokenizer with the model, so it is stored gzipped (deterministically: no name, no time stamp);
# DecompressionStream in the browser and Python's gzip read it back.
TOKENIZER_FILE = "tokenizer.json.gz"


def gzip_file(src: Path, dst: Path) -> None:
    import gzip

    with open(dst, "wb") as raw, gzip.GzipFile(filename="", mode="wb", compresslevel=9, fileobj=raw, mtime=0) as out:
        out.write(Path(src).read_bytes())

_DTYPES = {onnx.TensorProto.FLOAT: "float32", onnx.TensorProto.FLOAT16: "float16", onnx.TensorProto.INT64: "int64",
           onnx.TensorProto.INT32: "int32", onnx.TensorProto.UINT8: "uint8", onnx.TensorProto.INT8: "int8"}

# diffusers' class names → sdlens scheduler ids, so the model's own scheduler is the default
SCHEDULER_NAMES = DIFFUSERS_CLASSES
# What to run by default when the model's own scheduler is not (yet) in sdlens: same config,
# a deterministic sampler of the same family of noise schedules.
SCHEDULER_STAND_IN = "ddim"


def file_entry(path: Path, root: Path) -> dict:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return {"path": path.relative_to(root).as_posix(), "bytes": path.stat().st_size, "sha256": digest.hexdigest()}


def _value_info(values) -> list[dict]:
    out = []
    for v in values:
        t = v.type.tensor_type
        shape = [d.dim_value if d.HasField("dim_value") else (d.dim_param or "?") for d in t.shape.dim]
        out.append({"name": v.name, "dtype": _DTYPES.get(t.elem_type, str(t.elem_type)), "shape": shape})
    return out


def graph_io(path: Path) -> tuple[list[dict], list[dict]]:
    model = onnx.load(str(path), load_external_data=False)
    return _value_info(model.graph.input), _value_info(model.graph.output)


def default_settings(src: str, scheduler_config: dict) -> dict:
    """What a user gets before touching a control. Turbo models are distilled for 1 step, no guidance.

    The model's own scheduler is the default when sdlens has it; otherwise a stand-in runs on the
    same config, and `scheduler_note` (moved to the manifest's top level) says so (e.g. SD 1.5
    ships PNDM)."""
    from sdlens.schedulers import SCHEDULERS

    if "turbo" in src.lower():
        return {"steps": 1, "guidance": 0.0, "scheduler": "euler", "karras": False}
    own_class = scheduler_config.get("_class_name", "")
    own = SCHEDULER_NAMES.get(own_class)
    if own in SCHEDULERS:
        # Karras sigmas as the config says, where the class has them (diffusers ignores the key elsewhere)
        karras = SCHEDULERS[own].supports_karras and as_bool(scheduler_config.get("use_karras_sigmas", False))
        return {"steps": 25, "guidance": 7.5, "scheduler": own, "karras": karras}
    return {"steps": 25, "guidance": 7.5, "scheduler": SCHEDULER_STAND_IN, "karras": False,
            "scheduler_note": f"the model ships {own_class or 'no scheduler'}, which sdlens does not have; "
                              f"{SCHEDULER_STAND_IN} runs on the same config instead"}


def describe(pipe, src: str) -> dict:
    """Everything the manifest needs from the PyTorch pipeline, taken before its modules are freed."""
    from .latent_rgb import fit_latent_rgb

    vae, unet, text_encoder = pipe.vae, pipe.unet, pipe.text_encoder
    vae_scale = 2 ** (len(vae.config.block_out_channels) - 1)
    sample_size = unet.config.sample_size
    sample_size = sample_size if isinstance(sample_size, int) else sample_size[0]
    scheduler_config = {k: v for k, v in dict(pipe.scheduler.config).items() if not k.startswith("_")}
    scheduler_config["_class_name"] = type(pipe.scheduler).__name__
    return {
        "source": src,
        "sample_size": sample_size,
        "tokenizer_max_length": pipe.tokenizer.model_max_length,
        "latent_channels": unet.config.in_channels,
        "vae_scale_factor": vae_scale,
        "vae_scaling_factor": float(vae.config.scaling_factor),
        "latent_rgb": fit_latent_rgb(vae, sample_size * vae_scale),
        "text_hidden_size": int(text_encoder.config.hidden_size),
        "prediction_type": scheduler_config.get("prediction_type", "epsilon"),
        "scheduler_config": scheduler_config,
    }


def build(description: dict, name: str, root: Path, files: dict, parity: dict, defaults: dict) -> dict:
    d = description
    settings = default_settings(d["source"], d["scheduler_config"])
    note = settings.pop("scheduler_note", None)
    settings.update({k: v for k, v in defaults.items() if v is not None})
    if defaults.get("scheduler") is not None:
        note = None  # the user chose the scheduler
    settings.setdefault("width", d["sample_size"] * d["vae_scale_factor"])
    settings.setdefault("height", d["sample_size"] * d["vae_scale_factor"])
    settings.setdefault("negative", "")

    components = {}
    for component, per_variant in files.items():
        variants = {}
        for variant, paths in per_variant.items():
            inputs, outputs = graph_io(paths[0])
            variants[variant] = {
                "files": [file_entry(p, root) for p in paths],
                "inputs": inputs,
                "outputs": outputs,
                "backends": BACKENDS[variant],
                "parity": parity[component][variant],
            }
        components[component] = {"variants": variants}

    return {
        "format": MANIFEST_FORMAT,
        "name": name,
        "source": d["source"],
        "pipeline": "StableDiffusionPipeline",
        "tokenizer": {"file": file_entry(root / TOKENIZER_FILE, root), "max_length": d["tokenizer_max_length"]},
        "components": components,
        **{k: d[k] for k in ("latent_channels", "vae_scale_factor", "vae_scaling_factor", "latent_rgb",
                             "text_hidden_size", "prediction_type", "scheduler_config")},
        "defaults": settings,
        **({"scheduler_note": note} if note else {}),
    }


def write(root: Path, manifest: dict) -> None:
    (root / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
