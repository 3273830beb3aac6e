"""`python -m export objects-snapshot RUN`: the objects run's weights, kept in the repo.

The resumable training state (weights, optimizers, data position: 137 MB) lives outside the repo,
on a machine that may not be handed on. What a lost machine must not take with it is kept here
instead: the EMA weights of the VAE, the text encoder and the UNet, in fp16, in one safetensors
file (about 21 MB), with the run's step, config and judge scores in its metadata. It is written
only when the judge has improved clearly since the file in the repo (a few points of the
object score), and it replaces that file, so the repository grows by one snapshot per real step
forward, not by a checkpoint a day.

`pipeline(file)` turns a snapshot back into a diffusers pipeline (the weights cast to fp32), which
`judge-objects` scores and `export convert` converts like any trained folder. It is the model as of
its step, not a way to resume: without the optimizers' state a lost run would train again.
"""

from __future__ import annotations

import json
from pathlib import Path

from sdlens.errors import SdlensError

SNAPSHOT = Path(__file__).with_name("snapshot.safetensors")
#: How much the judge's object score must have risen since the kept snapshot to replace it.
CLEARLY_BETTER = 0.05
PARTS = ("vae", "text_encoder", "unet")


def kept_scores(path: Path = SNAPSHOT) -> dict | None:
    """The judge scores a snapshot was written with, or None where there is none."""
    if not Path(path).is_file():
        return None
    from safetensors import safe_open

    with safe_open(str(path), "pt") as f:
        return json.loads(f.metadata()["sdlens"])["scores"]


def write_snapshot(run: Path, scores: dict, out: Path = SNAPSHOT, force: bool = False) -> str:
    """The run's checkpoint (its EMA weights) → `out`, when `scores` (judge-objects' JSON) beat the
    kept snapshot's object score by CLEARLY_BETTER (or `force`). Returns what was done, in words."""
    import torch
    from safetensors.torch import save_file

    from .judge import load_pipeline

    before = kept_scores(out)
    now = scores["objects_object"]
    if before is not None and not force and now < before["objects_object"] + CLEARLY_BETTER:
        return (f"kept {out.name}: the judge's object score {now:.0%} is not clearly above the kept snapshot's "
                f"{before['objects_object']:.0%} (it needs {CLEARLY_BETTER:.0%} more)")
    pipe = load_pipeline(Path(run))
    tensors = {f"{part}.{name}": value.detach().to(torch.float16).contiguous()
               for part in PARTS for name, value in getattr(pipe, part).state_dict().items()}
    identity = json.loads((Path(run) / "checkpoint" / "config.json").read_text())
    meta = {"step": pipe.sdlens_step, "config": identity["config"]["name"], "world": "objects",
            "scaling_factor": pipe.vae.config.scaling_factor, "scores": scores}
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.with_name(out.name + ".partial")
    save_file(tensors, str(partial), metadata={"sdlens": json.dumps(meta)})
    partial.replace(out)
    return f"wrote {out} ({out.stat().st_size / 1e6:.1f} MB): step {meta['step']}, object {now:.0%}"


def pipeline(path: Path = SNAPSHOT):
    """A diffusers pipeline from a snapshot (fp16 weights, computed in fp32)."""
    import torch
    from diffusers import DDIMScheduler, StableDiffusionPipeline
    from safetensors import safe_open
    from transformers import CLIPTokenizer

    from ..clip_vocab import write_clip_tokenizer
    from ..shapes.model import build_text_encoder, build_unet, build_vae
    from ..tiny import SD_SCHEDULER_CONFIG
    from .model import CONFIGS

    path = Path(path)
    if not path.is_file():
        raise SdlensError(f"{path} does not exist: no objects snapshot has been written")
    with safe_open(str(path), "pt") as f:
        meta = json.loads(f.metadata()["sdlens"])
        weights = {key: f.get_tensor(key).to(torch.float32) for key in f.keys()}
    cfg = CONFIGS[meta["config"]]
    parts = {"vae": build_vae(cfg), "text_encoder": build_text_encoder(cfg), "unet": build_unet(cfg)}
    for name, module in parts.items():
        prefix = name + "."
        module.load_state_dict({k[len(prefix):]: v for k, v in weights.items() if k.startswith(prefix)})
        module.eval()
    parts["vae"].register_to_config(scaling_factor=meta["scaling_factor"])
    import tempfile

    with tempfile.TemporaryDirectory() as folder:
        write_clip_tokenizer(Path(folder))
        tokenizer = CLIPTokenizer.from_pretrained(folder)
    pipe = StableDiffusionPipeline(**parts, tokenizer=tokenizer, scheduler=DDIMScheduler.from_config(SD_SCHEDULER_CONFIG),
                                   safety_checker=None, feature_extractor=None, requires_safety_checker=False)
    pipe.sdlens_step = meta["step"]
    return pipe


def write_pipeline(path: Path, out: Path) -> Path:
    """A snapshot → a diffusers folder with the world's `sdlens_extras.json`, as a finished run
    writes it: what `python -m export convert OUT models/objects` takes."""
    from .world import FULL, extras

    out = Path(out)
    if out.exists():
        raise SdlensError(f"{out} already exists")
    pipe = pipeline(path)
    pipe.save_pretrained(out, safe_serialization=True)
    (out / "sdlens_extras.json").write_text(json.dumps(extras(FULL.scenes), indent=2) + "\n")
    return out
