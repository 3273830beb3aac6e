"""python -m export {tiny,family,convert,import,attention,train-tiny,judge,judge-objects,objects-snapshot} …: build and convert models for sdlens (CPython only)."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from sdlens.errors import SdlensError

from .sliced_attention import CHOICES as SLICE_ATTENTION_CHOICES

# diffusers and transformers log warnings at import time (e.g. that optimum and optimum-onnx share
# a top-level package); users of this command should see only its progress and its errors.
os.environ.setdefault("DIFFUSERS_VERBOSITY", "error")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")


def _float_or_none(text):
    return None if text is None else float(text)


def curve_scores(results: dict) -> dict:
    """judge-objects' results → the learning curve's (and a snapshot's) four scores."""
    return {f"{split}_{k}": round(results[split]["all"][k], 4) for split in ("objects", "heldout") for k in ("object", "place")}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m export", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    tiny = commands.add_parser("tiny", help="write a small random-weight SD pipeline (diffusers format)")
    tiny.add_argument("out", type=Path)
    tiny.add_argument("--seed", type=int, default=0)
    tiny.add_argument("--force", action="store_true", help="replace OUT if it exists")

    family = commands.add_parser("family", help="write a random-weight pipeline of a real SD family (diffusers format)")
    family.add_argument("name", help="sd-turbo, sd2.1-base, sd2.1 or sd1.5")
    family.add_argument("out", type=Path)
    family.add_argument("--reduced", action="store_true", help="reduced width and image size (as the tests use)")
    family.add_argument("--seed", type=int, default=0)
    family.add_argument("--force", action="store_true", help="replace OUT if it exists")

    convert = commands.add_parser("convert", help="convert a diffusers SD pipeline to an sdlens ONNX model folder")
    convert.add_argument("src", help="a diffusers pipeline folder, or a hub id such as stabilityai/sd-turbo (online only)")
    convert.add_argument("--out", type=Path, required=True)
    convert.add_argument("--variants", default="fp32", help="comma-separated: fp32, fp16, int8, q4 (default fp32)")
    convert.add_argument("--name", help="model name shown to users (default: OUT's folder name)")
    convert.add_argument("--force", action="store_true", help="replace OUT if it exists")
    convert.add_argument("--default-steps", type=int)
    convert.add_argument("--default-guidance", type=float)
    convert.add_argument("--default-scheduler")
    convert.add_argument("--default", action="store_true", help="mark as the model used when none is named")
    convert.add_argument("--max-file-mib", type=float, default=None,
                         help="largest file written, in MiB (default 512: what a browser can hash and cache "
                              "as one piece); bigger graphs are split over several external-data files")
    convert.add_argument("--preview-decoder", metavar="HUB_ID_OR_DIR",
                         help="also export a TAESD (diffusers AutoencoderTiny) decoder for fast per-step previews, "
                              "e.g. madebyollin/taesd (online) or a local folder")
    convert.add_argument("--slice-attention", choices=SLICE_ATTENTION_CHOICES, default="auto",
                         help="export the UNet's self-attention one head at a time, which needs a fraction of the "
                              "memory; auto: where the whole would not fit (SD 2.1 at 768²)")
    convert.add_argument("--quiet", action="store_true")

    attention = commands.add_parser("attention", help="add the per-word attention-map output to a model folder's UNet "
                                                      "graphs (weights unchanged)")
    attention.add_argument("model", type=Path, help="an exported model folder (manifest.json)")
    imp = commands.add_parser("import", help="turn an ONNX SD export (optimum-cli export onnx layout) into an "
                                             "sdlens model folder, without PyTorch")
    imp.add_argument("src", type=Path, help="the exported folder (model_index.json, text_encoder/model.onnx, …)")
    imp.add_argument("--out", type=Path, help="the model folder to write (default: models/<SRC's name>)")
    imp.add_argument("--variants", default="fp32", help="comma-separated: fp32, fp16, int8, q4 (default fp32)")
    imp.add_argument("--name", help="model name shown to users (default: OUT's folder name)")
    imp.add_argument("--force", action="store_true", help="replace OUT if it exists")
    imp.add_argument("--default-steps", type=int)
    imp.add_argument("--default-guidance", type=float)
    imp.add_argument("--default-scheduler")
    imp.add_argument("--max-file-mib", type=float, default=None, help="largest file written, in MiB (default 512)")
    imp.add_argument("--quiet", action="store_true")

    commands.add_parser("web-ops", help="rewrite the small tensor-math graphs of the browser runtime (web/runtime/ops)")

    train = commands.add_parser("train-tiny", help="train a small SD from scratch on a rendered world (CPU)")
    train.add_argument("out", type=Path)
    train.add_argument("--world", default="shapes", choices=("shapes", "objects"),
                       help="shapes (the default model's world) or objects (everyday-object emoji)")
    train.add_argument("--curve", type=Path, help="append the learning curve (JSON lines) to this file")
    train.add_argument("--minutes", type=float, default=60.0, help="wall-time budget for the whole run (default 60)")
    train.add_argument("--config",
                       help="the world's recipe (default full). shapes: full (the classroom recipe), sharp-vae (full "
                            "plus a VAE edge loss: the committed model), uniform-t (the first recipe) or reduced "
                            "(tests); objects: full or reduced")
    train.add_argument("--seed", type=int, default=0)
    train.add_argument("--threads", type=int, help="torch CPU threads (default: torch's choice)")
    train.add_argument("--vae-steps", type=int, help="fix the VAE iterations instead of planning them from --minutes")
    train.add_argument("--unet-steps", type=int, help="fix the UNet iterations instead of planning them from --minutes")
    train.add_argument("--vae-crop-steps", type=int, help="how many of the VAE steps see crops (default: 80 %%)")
    train.add_argument("--force", action="store_true", help="discard OUT (and any checkpoint in it) and start over")
    train.add_argument("--quiet", action="store_true")

    judge = commands.add_parser("judge", help="score a model's pictures against its prompts, from pixels alone")
    judge.add_argument("model", help="an exported model folder (manifest.json)")
    judge.add_argument("--prompts", type=int, default=200, help="prompts per set (training pairs, held-out pairs)")
    judge.add_argument("--steps", type=int, default=25)
    judge.add_argument("--guidances", default="1,3,7.5", help="comma-separated guidance scales")
    judge.add_argument("--scheduler", default="ddim")
    judge.add_argument("--variant", default="fp32")
    judge.add_argument("--threads", type=int, default=1, help="onnxruntime threads (default 1)")
    judge.add_argument("--grid", type=Path, help="save a PNG of the first 8 pictures per set and guidance")
    judge.add_argument("--json", type=Path, help="also write the accuracies as JSON")

    judge_objects = commands.add_parser("judge-objects",
                                        help="score an objects model (or a run's mid-run checkpoint) from pixels alone")
    judge_objects.add_argument("model", type=Path, help="a trained objects pipeline, or a train-tiny OUT with a checkpoint")
    judge_objects.add_argument("--seeds", type=int, default=4, help="pictures per object and per held-out pair")
    judge_objects.add_argument("--steps", type=int, default=25)
    judge_objects.add_argument("--guidance", type=float, default=7.5)
    judge_objects.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    judge_objects.add_argument("--grid", type=Path, help="save a PNG: one row per object, one column per seed")
    judge_objects.add_argument("--json", type=Path, help="also write the scores as JSON")
    judge_objects.add_argument("--curve", type=Path, help="append the scores to this learning-curve file")

    snapshot = commands.add_parser("objects-snapshot",
                                   help="judge an objects run and, when clearly better than the kept one, write its "
                                        "fp16 weights to export/objects/snapshot.safetensors")
    snapshot.add_argument("run", type=Path, help="a train-tiny --world objects OUT with a checkpoint at the UNet stage")
    snapshot.add_argument("--out", type=Path, help="the snapshot file (default export/objects/snapshot.safetensors)")
    snapshot.add_argument("--force", action="store_true", help="write it even if the judge has not clearly improved")
    snapshot.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")

    args = parser.parse_args(argv)
    try:
        if args.command == "tiny":
            from .tiny import write_tiny_pipeline

            if args.out.exists() and not args.force:
                raise SdlensError(f"{args.out} already exists; pass --force to replace it")
            write_tiny_pipeline(args.out, seed=args.seed)
            print(f"wrote {args.out}")
        elif args.command == "family":
            import shutil

            from .families import FAMILIES, reduced, write_pipeline

            if args.name not in FAMILIES:
                raise SdlensError(f"unknown family {args.name}; choose from {', '.join(FAMILIES)}")
            if args.out.exists() and not args.force:
                raise SdlensError(f"{args.out} already exists; pass --force to replace it")
            shutil.rmtree(args.out, ignore_errors=True)
            chosen = reduced(FAMILIES[args.name]) if args.reduced else FAMILIES[args.name]
            write_pipeline(chosen, args.out, seed=args.seed)
            print(f"wrote {args.out} ({chosen.name}, {chosen.image_size}²)")
        elif args.command == "convert":
            from .convert import convert as run_convert, parse_variants

            variants = parse_variants(args.variants)
            defaults = {"steps": args.default_steps, "guidance": args.default_guidance,
                        "scheduler": args.default_scheduler}
            from .variants import MAX_FILE_BYTES

            limit = MAX_FILE_BYTES if args.max_file_mib is None else int(args.max_file_mib * 2**20)
            run_convert(args.src, args.out, variants, force=args.force, name=args.name,
                        defaults=defaults, quiet=args.quiet, default_model=args.default, max_file_bytes=limit,
                        preview_decoder=args.preview_decoder, slice_attention=args.slice_attention)
            print(f"wrote {args.out}/manifest.json")
        elif args.command == "import":
            from sdlens.model import find_models_root

            from .convert import parse_variants
            from .importer import import_folder
            from .variants import MAX_FILE_BYTES

            out = args.out or Path(find_models_root()) / args.src.resolve().name
            limit = MAX_FILE_BYTES if args.max_file_mib is None else int(args.max_file_mib * 2**20)
            import_folder(str(args.src), out, parse_variants(args.variants), force=args.force, name=args.name,
                          defaults={"steps": args.default_steps, "guidance": args.default_guidance,
                                    "scheduler": args.default_scheduler},
                          quiet=args.quiet, max_file_bytes=limit)
            print(f"wrote {out}/manifest.json")
        elif args.command == "train-tiny":
            from .shapes.train import train_tiny

            report = train_tiny(args.out, minutes=args.minutes, config=args.config, seed=args.seed,
                                threads=args.threads, force=args.force, vae_steps=args.vae_steps,
                                unet_steps=args.unet_steps, vae_crop_steps=args.vae_crop_steps, quiet=args.quiet,
                                world=args.world, curve=args.curve)
            print(f"wrote {args.out}: VAE {report['vae']['steps']} steps (PSNR {report['vae']['psnr_db']} dB), "
                  f"UNet {report['unet']['steps']} steps at {report['unet']['steps_per_s']} it/s, "
                  f"{report['wall_seconds'] / 60:.1f} min")
        elif args.command == "attention":
            from .attention import add_to_model_dir

            changed = add_to_model_dir(args.model)
            print(f"added attention maps to {args.model}: {', '.join(changed)}" if changed
                  else f"{args.model} already has attention maps")
        elif args.command == "web-ops":
            from .web_ops import write

            for path in write():
                print(f"wrote {path}")
        elif args.command == "judge":
            import json

            from .shapes.judge import chance, format_table, judge_model

            guidances = [float(g) for g in args.guidances.split(",") if g.strip()]
            results = judge_model(args.model, prompts=args.prompts, steps=args.steps, guidances=guidances,
                                  scheduler=args.scheduler, variant=args.variant, threads=args.threads, grid=args.grid)
            print(f"{args.model}: {args.prompts} prompts per set, {args.steps} {args.scheduler} steps, {args.variant}")
            print(format_table(results))
            print("chance: " + ", ".join(f"{k} {100 * v:.0f}%" for k, v in chance().items()))
            if args.json:
                args.json.write_text(json.dumps({s: {str(g): a for g, a in r.items()} for s, r in results.items()},
                                                indent=2) + "\n")
        elif args.command == "judge-objects":
            import json

            import torch

            from .objects.judge import chance, format_table, judge

            torch.set_num_threads(args.threads)
            results = judge(args.model, seeds=args.seeds, steps=args.steps, guidance=args.guidance, grid=args.grid)
            print(f"{args.model} (step {results['checkpoint_step']}): {args.seeds} seeds, {args.steps} DDIM steps, "
                  f"guidance {args.guidance:g}")
            print(format_table(results))
            print("chance: " + ", ".join(f"{k} {100 * v:.0f}%" for k, v in chance().items()))
            if args.json:
                args.json.write_text(json.dumps(results, indent=2) + "\n")
            if args.curve:
                line = {"stage": "judge", "step": results["checkpoint_step"], "guidance": args.guidance,
                        "seeds": args.seeds, **curve_scores(results)}
                with args.curve.open("a", encoding="utf-8") as f:
                    f.write(json.dumps(line) + "\n")
        elif args.command == "objects-snapshot":
            import torch

            from .objects.judge import judge
            from .objects.snapshot import SNAPSHOT, write_snapshot

            torch.set_num_threads(args.threads)
            results = judge(args.run, seeds=4)
            print(write_snapshot(args.run, {"step": results["checkpoint_step"], "seeds": 4, **curve_scores(results)},
                                 args.out or SNAPSHOT, force=args.force))
    except SdlensError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted" + ("; run the same command again to resume" if args.command == "train-tiny"
                                else "; nothing was written"), file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
