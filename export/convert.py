"""`python -m export convert SRC --out DIR --variants fp32,fp16`: diffusers SD → ONNX model folder.

Each component (text encoder, UNet, VAE decoder and encoder) goes through optimum's ONNX
exporter, then into the requested precision variants, each checked against PyTorch. The folder
gets a `manifest.json` that tells the runtimes everything they need (see `export.manifest`).

The export is atomic: it is built in a hidden sibling folder and renamed into place only when
complete, so an error or Ctrl-C never leaves a half-written model behind.
"""

from __future__ import annotations

import json
import re
import shutil
import sys
import tempfile
from pathlib import Path

from sdlens.errors import SdlensError

from . import attention
from . import manifest as manifest_mod
from .variants import VARIANTS, write_variant

COMPONENTS = ("text_encoder", "unet", "vae_decoder", "vae_encoder")
HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


def parse_variants(text: str) -> list[str]:
    names = [v.strip() for v in text.split(",") if v.strip()]
    unknown = [v for v in names if v not in VARIANTS]
    if unknown or not names:
        raise SdlensError(f"unknown variant {', '.join(unknown) or '(none)'}; choose from {', '.join(VARIANTS)}")
    return list(dict.fromkeys(names))


def load_pipeline(src: str):
    """A diffusers StableDiffusionPipeline from a local folder, or from the hub when online."""
    from diffusers import StableDiffusionPipeline
    from diffusers.utils import logging as diffusers_logging

    diffusers_logging.set_verbosity_error()
    diffusers_logging.disable_progress_bar()

    path = Path(src)
    if path.exists():
        if not (path / "model_index.json").is_file():
            raise SdlensError(f"{src} is not a diffusers pipeline folder (no model_index.json)")
        local = True
    elif HUB_ID.match(src):
        local = False
    else:
        raise SdlensError(f"{src}: no such folder, and not a hub id like 'owner/name'")
    try:
        pipe = StableDiffusionPipeline.from_pretrained(src, local_files_only=local, safety_checker=None, feature_extractor=None, requires_safety_checker=False)
    except SdlensError:
        raise
    except Exception as err:  # diffusers raises many kinds; the user needs one line
        where = "folder" if local else "hub id (is this machine online?)"
        first_line = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise SdlensError(f"could not load {src} as a Stable Diffusion {where}: {first_line}") from err
    if pipe.tokenizer is None:
        raise SdlensError(f"{src} has no tokenizer")
    return pipe


def export_fp32(model, onnx_config, out: Path) -> Path:
    """One component through optimum's ONNX exporter, at its default opset."""
    import warnings

    import torch
    from optimum.exporters.onnx.convert import export

    out.parent.mkdir(parents=True, exist_ok=True)
    with warnings.catch_warnings():
        # Tracing warns about every shape check in diffusers/transformers; none applies to SD's fixed graphs.
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        warnings.simplefilter("ignore", UserWarning)
        export(model=model, config=onnx_config, output=out, opset=onnx_config.DEFAULT_ONNX_OPSET)
    return out


def convert(src: str, out: Path, variants: list[str], force: bool = False, name: str | None = None,
            defaults: dict | None = None, quiet: bool = False, default_model: bool = False) -> dict:
    """Convert SRC into the model folder OUT. Returns the manifest.

    A source folder may hold `sdlens_extras.json` (written by the models this repo trains) with
    "starter_prompts", "prompt_pairs", "held_out_pairs", "text_encoder_training", "description",
    "model_card" and "defaults"; they are carried into the manifest.
    `default_model` marks the model that runs when the user names none."""
    import optimum.exporters.onnx.model_configs  # noqa: F401  (registers the ONNX export configs)
    from optimum.exporters.utils import get_diffusion_models_for_export
    from tqdm.auto import tqdm

    from . import parity
    from .clip_vocab import write_tokenizer_json

    out = Path(out)
    if out.exists() and not force:
        raise SdlensError(f"{out} already exists; pass --force to replace it")
    pipe = load_pipeline(src)
    out.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=out.parent))
    try:
        staging = work / "_staging"
        final = work / "model"
        final.mkdir()
        pipe.tokenizer.save_pretrained(staging / "tokenizer")
        write_tokenizer_json(staging / "tokenizer", staging / "tokenizer.json")
        manifest_mod.gzip_file(staging / "tokenizer.json", final / manifest_mod.TOKENIZER_FILE)
        references = parity.torch_references(pipe)

        exportable = get_diffusion_models_for_export(pipe, int_dtype="int64", float_dtype="fp32", exporter="onnx")
        files: dict[str, dict[str, list[Path]]] = {c: {} for c in COMPONENTS}
        report: dict[str, dict[str, dict]] = {c: {} for c in COMPONENTS}
        for component in COMPONENTS:
            with tqdm(total=1 + len(variants), desc=f"{component:>12}", unit="step", disable=quiet,
                      file=sys.stderr) as bar:
                bar.set_postfix_str("onnx export")
                fp32 = export_fp32(*exportable[component], staging / component / "model.onnx")
                if component == "unet":
                    attention.add_to_file(fp32)  # per-word attention maps as a second output
                bar.update(1)
                (final / component).mkdir()
                for variant in variants:
                    bar.set_postfix_str(variant)
                    written = write_variant(variant, fp32, final / component / f"model_{variant}.onnx")
                    files[component][variant] = written
                    report[component][variant] = parity.check(written[0], references[component])
                    bar.update(1)

        extras = _source_extras(src)
        manifest = manifest_mod.build(
            pipe, src=src, name=name or out.name, root=final, files=files, parity=report,
            defaults={**extras.pop("defaults", {}), **{k: v for k, v in (defaults or {}).items() if v is not None}},
        )
        manifest.update(extras)
        if default_model:
            manifest["default"] = True
        (final / "parity.json").write_text(json.dumps(report, indent=2) + "\n")
        manifest_mod.write(final, manifest)
        if not quiet:
            print(parity.format_report(report))
        _move_into_place(final, out)
        return manifest
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _source_extras(src: str) -> dict:
    path = Path(src) / "sdlens_extras.json"
    if not path.is_file():
        return {}
    extras = json.loads(path.read_text())
    carried = ("starter_prompts", "prompt_pairs", "held_out_pairs", "text_encoder_training", "defaults", "description",
               "model_card")
    return {k: extras[k] for k in carried if k in extras}


def _move_into_place(built: Path, out: Path) -> None:
    if out.exists():
        old = out.with_name(f".{out.name}.old-{built.parent.name}")
        out.rename(old)
        built.rename(out)
        shutil.rmtree(old, ignore_errors=True)
    else:
        built.rename(out)
