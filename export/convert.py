"""`python -m export convert SRC --out DIR --variants fp32,fp16`: diffusers SD → ONNX model folder.

Each component (text encoder, UNet, VAE decoder and encoder) goes through optimum's ONNX
exporter, then into the requested precision variants, each checked against PyTorch. The folder
gets a `manifest.json` that tells the runtimes everything they need (see `export.manifest`).

The export is atomic: it is built in a hidden sibling folder (`.NAME.tmp-*`) and renamed into
place only when complete, so an error or Ctrl-C never leaves a half-written model behind. A run
that was killed outright cannot clean up after itself; the next run removes its folder (see
`remove_stale_work`). No file is over the browser's file size limit (`variants.MAX_FILE_BYTES`),
the folder holds only what the manifest lists, and everything in it is world-readable.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

from sdlens.errors import SdlensError

from . import attention, sliced_attention
from . import manifest as manifest_mod
from .sources import hub_or_folder
from .variants import MAX_FILE_BYTES, VARIANTS, check_file_limit, release_memory, write_variant

COMPONENTS = ("text_encoder", "unet", "vae_decoder", "vae_encoder")


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

    local = hub_or_folder(src, marker="model_index.json", what="a diffusers pipeline folder")
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


# Torch modules are exported smallest first and each freed once exported, so that the UNet (3.5 GB
# of fp32 weights at SD size) is traced with little else in memory; the variants are made after
# PyTorch holds nothing, from the fp32 graphs on disk.
EXPORT_ORDER = ("text_encoder", "vae_decoder", "vae_encoder", "unet")


def convert(src: str, out: Path, variants: list[str], force: bool = False, name: str | None = None,
            defaults: dict | None = None, quiet: bool = False, default_model: bool = False,
            max_file_bytes: int = MAX_FILE_BYTES, preview_decoder: str | None = None,
            preview_pool: int | None = None, slice_attention: str = "auto") -> dict:
    """Convert SRC into the model folder OUT. Returns the manifest.

    A source folder may hold `sdlens_extras.json` (written by the models this repo trains) with
    "starter_prompts", "prompt_pairs", "held_out_pairs", "text_encoder_training", "description",
    "model_card" and "defaults"; they are carried into the manifest.
    `default_model` marks the model that runs when the user names none. `max_file_bytes` lowers
    the largest file written (tests use it to make small models span several files).
    `preview_decoder` (a folder or hub id of a diffusers AutoencoderTiny, i.e. TAESD) adds the
    fast decoder the browser uses for per-step previews (see `export.preview`); `preview_pool`
    overrides how far its input is averaged down (tests use it at small sizes). `slice_attention`
    (auto, yes, no) exports the UNet's self-attention head by head (see `export.sliced_attention`);
    auto does so where the whole would not fit (SD 2.1 at 768²)."""
    import optimum.exporters.onnx.model_configs  # noqa: F401  (registers the ONNX export configs)
    from optimum.exporters.utils import get_diffusion_models_for_export
    from tqdm.auto import tqdm

    from . import parity, preview
    from .clip_vocab import write_tokenizer_json

    out = Path(out)
    max_file_bytes = check_file_limit(max_file_bytes)
    if slice_attention not in sliced_attention.CHOICES:
        raise SdlensError(f"slice-attention must be one of {', '.join(sliced_attention.CHOICES)}, not {slice_attention!r}")
    if out.exists() and not force:
        raise SdlensError(f"{out} already exists; pass --force to replace it")
    pipe = load_pipeline(src)
    taesd = preview.load_preview_decoder(preview_decoder) if preview_decoder else None
    description = manifest_mod.describe(pipe, src)
    if taesd is not None:
        preview.check_fits(taesd, description["latent_channels"], description["vae_scale_factor"])
    out.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_work(out, quiet=quiet)
    work = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=out.parent))
    (work / OWNER_FILE).write_text(f"{os.getpid()}\n")
    try:
        staging = work / "_staging"
        final = work / "model"
        final.mkdir()
        pipe.tokenizer.save_pretrained(staging / "tokenizer")
        write_tokenizer_json(staging / "tokenizer", staging / "tokenizer.json")
        manifest_mod.gzip_file(staging / "tokenizer.json", final / manifest_mod.TOKENIZER_FILE)
        tokenizer, sample_size = pipe.tokenizer, description["sample_size"]
        exportable = get_diffusion_models_for_export(pipe, int_dtype="int64", float_dtype="fp32", exporter="onnx")
        del pipe  # from here on each torch module lives only in `exportable`, until it is exported
        references = {}
        self_attention = "whole"
        components = list(COMPONENTS)
        staged: dict[str, Path] = {}
        with tqdm(total=len(EXPORT_ORDER) + (taesd is not None), desc=f"{'onnx export':>15}", unit="graph",
                  disable=quiet, file=sys.stderr) as bar:
            for component in EXPORT_ORDER:
                bar.set_postfix_str(component)
                module, onnx_config = exportable.pop(component)
                # Each reference just before its export: a module's weights become resident only at its turn.
                references[component] = parity.torch_reference(component, module, sample_size, tokenizer)
                if component == "unet" and sliced_attention.wanted(module, sample_size, slice_attention):
                    # after the reference, which stays diffusers' own attention: parity checks the slicing too
                    sliced_attention.slice_self_attention(module)
                    self_attention = "per-head"
                staged[component] = export_fp32(module, onnx_config, staging / component / "model.onnx")
                del module, onnx_config
                if component == "unet":
                    attention.add_to_file(staged[component])  # per-word attention maps as a second output
                release_memory()
                bar.update(1)
            if taesd is not None:
                bar.set_postfix_str(PREVIEW)
                latent_size = description["sample_size"]
                pool = preview.preview_pool(latent_size * description["vae_scale_factor"]) if preview_pool is None \
                    else preview_pool
                references[PREVIEW] = preview.reference(taesd, latent_size)
                staged[PREVIEW] = preview.export_fp32(taesd, latent_size, staging / PREVIEW / "model.onnx")
                preview_info = preview.describe(taesd, preview_decoder, pool)
                components.append(PREVIEW)
                del taesd
                bar.update(1)
        del exportable
        release_memory()

        files: dict[str, dict[str, list[Path]]] = {}
        report: dict[str, dict[str, dict]] = {}
        for component in components:
            files[component], report[component] = write_component_variants(
                component, staged[component], final / component, variants, references[component], max_file_bytes, quiet)
            shutil.rmtree(staged[component].parent)  # the fp32 export, no longer needed: disk back

        extras = _source_extras(src)
        manifest = manifest_mod.build(
            description, name=name or out.name, root=final, files=files, parity=report,
            defaults={**extras.pop("defaults", {}), **{k: v for k, v in (defaults or {}).items() if v is not None}},
        )
        manifest["components"]["unet"]["self_attention"] = self_attention
        if PREVIEW in files:
            manifest["components"][PREVIEW].update(preview_info)
        manifest.update(extras)
        manifest["max_file_bytes"] = max_file_bytes
        if default_model:
            manifest["default"] = True
        manifest_mod.write(final, manifest)
        check_folder(final, manifest, max_file_bytes)
        make_world_readable(final)
        if not quiet:
            print(parity.format_report(report))
        _move_into_place(final, out)
        return manifest
    finally:
        shutil.rmtree(work, ignore_errors=True)


PREVIEW = "preview_decoder"


def write_component_variants(component: str, fp32_path: Path, folder: Path, variants: list[str], reference,
                             max_file_bytes: int, quiet: bool, after_write=None) -> tuple[dict, dict]:
    """Every variant of one component's fp32 graph into `folder`, each checked against its
    reference: ({variant: files written, graph first}, {variant: parity}). `after_write(graph)`
    runs on each variant's graph file before its check (import adds the attention maps there)."""
    from tqdm.auto import tqdm

    from . import parity

    folder.mkdir()
    files, report = {}, {}
    with tqdm(total=len(variants), desc=f"{component:>15}", unit="variant", disable=quiet, file=sys.stderr) as bar:
        for variant in variants:
            bar.set_postfix_str(variant)
            written = write_variant(variant, fp32_path, folder / f"model_{variant}.onnx", max_file_bytes,
                                    fp16_path=files.get("fp16", [None])[0])
            if after_write is not None:
                after_write(written[0])
            release_memory()
            files[variant] = written
            report[variant] = parity.check(written[0], reference)
            release_memory()
            bar.update(1)
    return files, report


OWNER_FILE = ".owner-pid"


def remove_stale_work(out: Path, quiet: bool = False) -> None:
    """Remove what killed runs for OUT left beside it: `.NAME.tmp-*` and `.NAME.old-*` folders.

    A folder whose owning process (its `.owner-pid`) is still running is another export in
    progress: it is left alone, and its size reported."""
    for folder in sorted(out.parent.glob(f".{out.name}.tmp-*")) + sorted(out.parent.glob(f".{out.name}.old-*")):
        if not folder.is_dir():
            continue
        size = sum(f.stat().st_size for f in folder.rglob("*") if f.is_file())
        if _owner_alive(folder):
            print(f"note: {folder} ({size / 2**20:.0f} MiB) belongs to an export still running; left alone",
                  file=sys.stderr)
            continue
        shutil.rmtree(folder, ignore_errors=True)
        if not quiet:
            print(f"removed {folder} ({size / 2**20:.0f} MiB) left by an earlier run that did not finish",
                  file=sys.stderr)


def _owner_alive(folder: Path) -> bool:
    try:
        pid = int((folder / OWNER_FILE).read_text().strip())
    except (OSError, ValueError):
        return False
    if pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def listed_files(manifest: dict) -> list[str]:
    """Every file path a manifest lists, relative to the model folder."""
    paths = [manifest["tokenizer"]["file"]["path"]]
    for component in manifest["components"].values():
        for variant in component["variants"].values():
            paths += [f["path"] for f in variant["files"]]
    return paths


def check_folder(root: Path, manifest: dict, max_file_bytes: int) -> None:
    """The folder holds exactly manifest.json and what it lists, no graph file over the file limit
    (the gzipped tokenizer is a fixed 0.6 MB)."""
    present = {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()}
    listed = set(listed_files(manifest))
    strays = sorted(present - listed - {"manifest.json"})
    missing = sorted(listed - present)
    if strays or missing:
        raise RuntimeError(f"export wrote files the manifest does not list {strays} or lists missing files {missing}")
    tokenizer = manifest["tokenizer"]["file"]["path"]
    over = sorted(p for p in present if p != tokenizer and (root / p).stat().st_size > max_file_bytes)
    if over:
        raise RuntimeError(f"files over the {max_file_bytes}-byte limit: {over}")


def make_world_readable(root: Path) -> None:
    """mkdtemp makes 0700 folders and some writers 0600 files; a served model must be readable."""
    root.chmod(0o755)
    for path in root.rglob("*"):
        path.chmod(0o755 if path.is_dir() else 0o644)


def _source_extras(src: str) -> dict:
    path = Path(src) / "sdlens_extras.json"
    if not path.is_file():
        return {}
    extras = json.loads(path.read_text())
    carried = ("starter_prompts", "prompt_pairs", "held_out_pairs", "held_out_kind", "place_phrases",
               "text_encoder_training", "defaults", "description", "model_card")
    return {k: extras[k] for k in carried if k in extras}


def _move_into_place(built: Path, out: Path) -> None:
    if out.exists():
        old = out.with_name(f".{out.name}.old-{built.parent.name}")
        out.rename(old)
        built.rename(out)
        shutil.rmtree(old, ignore_errors=True)
    else:
        built.rename(out)
