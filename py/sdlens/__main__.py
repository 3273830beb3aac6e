"""python -m sdlens {tokenize,generate,fetch,serve,site,snapshot} …: the sdlens pipeline from the command line (CPython),
and serving the browser app (`sdlens serve`, `sdlens site OUT`)."""

from __future__ import annotations

import argparse
import difflib
import json
import sys
from dataclasses import replace
from pathlib import Path

from .errors import SdlensError
from .model import Model, resolve_model_dir
from .schedulers import KARRAS_SCHEDULERS, SCHEDULERS


def _model_arg(parser):
    parser.add_argument("--model", help="model folder with a manifest.json (default: the embedded default model)")


def cmd_tokenize(args) -> int:
    model = Model.from_dir(resolve_model_dir(args.model), verify=False)
    tokenizer = model.load_tokenizer()
    enc = tokenizer.encode(args.prompt)
    if args.json:
        print(json.dumps({"ids": enc.ids, "tokens": enc.tokens, "length": enc.length,
                          "max_length": enc.max_length, "dropped_words": enc.dropped_words}, ensure_ascii=False))
        return 0
    print(f"{enc.length} tokens (BOS and EOS included), {enc.max_length - enc.length} padding, max {enc.max_length}")
    for position, (token_id, token) in enumerate(zip(enc.ids, enc.tokens)):
        if position >= enc.length:
            print(f"{position:>4}-{enc.max_length - 1:<4} {token_id:>6}  {token}  (padding)")
            break
        print(f"{position:>4}      {token_id:>6}  {token}")
    if enc.dropped_words:
        print(enc.dropped_note())
    return 0


def _only_variant(folder: str) -> str:
    """fp32, unless the model has one variant only (a Hub model published in fp16, say)."""
    try:
        with open(Path(folder) / "manifest.json", encoding="utf-8") as f:
            variants = json.load(f)["components"]["unet"]["variants"]
    except (OSError, ValueError, KeyError, TypeError):
        return "fp32"  # Model.from_dir says what is wrong with the folder
    return "fp32" if "fp32" in variants or len(variants) != 1 else next(iter(variants))


def cmd_fetch(args) -> int:
    from .cpython.fetch import fetch

    out = Path(args.out) if args.out else Path("models") / args.repo.split("@")[0].split("/")[-1]
    repo, _, revision = args.repo.partition("@")
    manifest = fetch(repo, out, revision=args.revision or revision or None, endpoint=args.hub_endpoint,
                     force=args.force)
    table = manifest["hub"]["from_table"]
    print(f"{out}: {repo} at {manifest['hub']['commit'][:12]}, ready for sdlens generate --model {out} "
          f"and serve.py --models {out.parent}"
          + (f"; taken from sdlens' table of known repos, not from the repo's files: {', '.join(table)}" if table else ""))
    return 0


def cmd_generate(args) -> int:
    from .cpython.images import save_npy, save_png
    from .cpython.runtime import OnnxRuntime
    from .pipeline import Pipeline, Settings
    from .schedulers import display_name

    folder = resolve_model_dir(args.model)
    model = Model.from_dir(folder, variant=args.variant or _only_variant(folder))
    request = {k: getattr(args, k) for k in ("prompt", "negative", "seed", "steps", "guidance", "scheduler", "karras",
                                              "formula_below_one", "strength", "decoder")}
    settings = Settings.from_request(request, model.defaults)
    # The settings' own errors first (a bad seed, a strength without a picture), before any file is read
    replace(settings, init_image=args.init_image).checked()
    runtime = OnnxRuntime(threads=args.threads)
    pipeline = Pipeline(model, runtime)
    if args.init_image is not None:
        from .cpython.images import load_init_image

        if not pipeline.has_encoder():  # before reading the picture: nothing it holds would help
            raise SdlensError(f"model {model.name} has no VAE encoder, so it cannot start from a picture "
                              "(--init-image); choose a model that has one")
        settings.init_image, notes = load_init_image(args.init_image, model.defaults["width"], model.defaults["height"])
        for note in notes:
            print(note)
    settings = pipeline.checked(settings)

    for label, text in (("prompt", settings.prompt), ("negative prompt", settings.negative)):
        note = pipeline.tokenizer.encode(text).dropped_note(label)
        if note:
            print(f"warning: {note}", file=sys.stderr)

    scheduler = pipeline.scheduler(settings)  # a bad scheduler, Karras setting or step count fails here
    print(f"model {model.name} ({args.variant}), backend {runtime.backend}")
    calls = len(scheduler.timesteps)
    runs = settings.steps
    if settings.init_image is not None:
        from .img2img import first_step

        skipped = first_step(settings.steps, settings.strength)
        runs -= skipped
        calls -= skipped * scheduler.order
        print(f"starting from {args.init_image}: strength {settings.strength} → the last "
              f"{runs} of {settings.steps} steps run")
    print(f"{display_name(settings.scheduler, scheduler.karras)}, {settings.steps} steps"
          + (f" ({calls} UNet calls)" if calls != runs else "")
          + f", guidance {settings.guidance}, seed {settings.seed}")
    frames = Path(args.frames) if args.frames else None
    attention_maps = []  # one (tokens, h, w) array per step
    if args.save_attention and not pipeline.has_attention():
        raise SdlensError(f"model {model.name} has no attention output, so --save-attention cannot be used; "
                          f"add it with `python -m export attention {resolve_model_dir(args.model)}`")
    width, height = model.defaults["width"], model.defaults["height"]

    def on_step(trace):
        call = trace.call
        part = f" call {call.part + 1}/{call.parts}" if call.parts > 1 else ""
        line = (f"step {call.step + 1:>3}/{settings.steps}{part}  t={trace.timestep:7.2f}  "
                f"{trace.seconds * 1000:8.1f} ms")
        if frames is not None:
            preview = runtime.to_rgb8(pipeline.decode(trace.pred_original))
            suffix = f"_{call.part + 1}" if call.parts > 1 else ""
            save_png(preview, width, height, frames / f"step_{call.step + 1:03d}{suffix}.png")
        if args.save_attention:
            attention_maps.append(trace.attention[0])
        print(line, flush=True)

    result = pipeline.generate(settings, on_step=on_step, attention=bool(args.save_attention))
    save_png(result.rgb, result.width, result.height, Path(args.out))
    if args.save_latents:
        save_npy(result.latents, Path(args.save_latents))
    if args.save_attention:
        import numpy as np

        save_npy(np.stack(attention_maps), Path(args.save_attention))
        print(f"wrote {args.save_attention}: attention maps (steps, tokens, h, w) = {np.stack(attention_maps).shape}")
    t = result.timings
    mean_step = sum(t["step_seconds"]) / len(t["step_seconds"])
    encode = f"encode {t['encode_seconds'] * 1000:.1f} ms, " if result.start is not None else ""
    by = " (the fast decoder, TAESD)" if result.decoder == "fast" else ""
    print(f"text {t['text_seconds'] * 1000:.1f} ms, {encode}mean step {mean_step * 1000:.1f} ms, "
          f"decode{by} {t['decode_seconds'] * 1000:.1f} ms, total {t['total_seconds']:.2f} s")
    print(f"wrote {args.out}" + (f" and {len(t['step_seconds'])} frames in {frames}" if frames else ""))
    return 0


def _parse(parser, commands, argv):
    """argparse's parse_args, but an unknown option says which known one it resembles."""
    args, unknown = parser.parse_known_args(argv)
    if unknown:
        # "--strenght 0.6": the value after an unknown option is not worth naming on its own
        unknown = [u for u in unknown if u.startswith("-")] or unknown
        known = [o for o in commands.choices[args.command]._option_string_actions if o.startswith("--")]
        hints = []
        for option in unknown:
            close = difflib.get_close_matches(option.split("=")[0], known, n=1) if option.startswith("-") else []
            hints.append(f"{option!r}" + (f" (did you mean {close[0]}?)" if close else ""))
        commands.choices[args.command].error(f"unknown option{'s' if len(unknown) > 1 else ''} "
                                             f"or argument{'s' if len(unknown) > 1 else ''}: {', '.join(hints)}")
    return args


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sdlens", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    tok = commands.add_parser("tokenize", help="show how CLIP's tokenizer splits a prompt")
    tok.add_argument("prompt")
    _model_arg(tok)
    tok.add_argument("--json", action="store_true", help="print one JSON object")

    gen = commands.add_parser("generate", help="generate an image")
    gen.add_argument("prompt")
    _model_arg(gen)
    gen.add_argument("--negative", help='negative prompt (default: "")')
    gen.add_argument("--seed", default="0", help="0 … 2**64-1, as torch.Generator().manual_seed")
    gen.add_argument("--steps", help="denoising steps, 1 … 1000 (default: the model's)")
    gen.add_argument("--guidance", help="classifier-free guidance scale ≥ 0; ≤ 1 turns it off (default: the model's)")
    gen.add_argument("--scheduler", help=f"{', '.join(SCHEDULERS)} (default: the model's own)")
    gen.add_argument("--karras", action=argparse.BooleanOptionalAction, default=None,
                     help=f"Karras sigmas, for {', '.join(KARRAS_SCHEDULERS)} (default: as the model's "
                          "scheduler config says); e.g. --scheduler dpmpp_2m --karras is DPM++ 2M Karras")
    gen.add_argument("--formula-below-one", action="store_true",
                     help="use ε_uncond + g·(ε_cond − ε_uncond) at g < 1 too (g = 0 ignores the prompt); "
                          "diffusers, and the default, turn guidance off at g ≤ 1")
    gen.add_argument("--init-image", metavar="PATH",
                     help="start from this picture (img2img): centre-cropped to the model's shape and resized "
                          "to its size; PNG, JPEG, WebP, …")
    gen.add_argument("--strength", help="with --init-image: how much of the run is redone, above 0 and at most 1; "
                                        "int(steps × strength) of the steps run (default 0.8)")
    gen.add_argument("--decoder", help="what draws the final picture: vae (the model's own, the default) or fast "
                                       "(TAESD, the model's preview decoder at full size: much quicker, close)")
    gen.add_argument("--variant", help="precision variant of every component (default fp32, or a Hub model's one)")
    gen.add_argument("--out", default="out.png", help="PNG file for the final image")
    gen.add_argument("--frames", help="folder for a PNG of the predicted clean image at every step")
    gen.add_argument("--save-latents", help="write the final latents (before VAE decoding) as float32 .npy")
    gen.add_argument("--save-attention", help="write each step's per-token cross-attention maps, (steps, tokens, h, w) "
                                              "float32 .npy (the model needs the attention output)")
    gen.add_argument("--threads", type=int, help="onnxruntime intra-op threads")

    fetch = commands.add_parser("fetch", help="a Stable Diffusion ONNX repo from the Hugging Face Hub → a model folder")
    fetch.add_argument("repo", help="OWNER/REPO (or OWNER/REPO@REVISION), e.g. schmuell/sd-turbo-ort-web")
    fetch.add_argument("--revision", help="branch, tag or commit (default: main); pinned to its commit")
    fetch.add_argument("--out", help="the model folder to write (default: models/REPO)")
    fetch.add_argument("--hub-endpoint", help="where the Hub is (default: $HF_ENDPOINT, else https://huggingface.co)")
    fetch.add_argument("--force", action="store_true", help="replace OUT if it exists")

    from .serving import cli as serving
    from .serving.app_files import Layout

    layout = Layout.find()
    srv = commands.add_parser("serve", help="serve the browser app (python serve.py does the same)")
    serving.add_serve_arguments(srv, layout)
    site = commands.add_parser("site", help="write the app as a folder any static file server serves")
    serving.add_site_arguments(site)
    from .serving import snapshot

    snap = commands.add_parser("snapshot", help="make the built boot files (the .pyc standard library and the "
                                                "Python snapshot) in headless Chromium: a 2 s start")
    snapshot.add_arguments(snap)

    args = _parse(parser, commands, argv)
    if args.command == "serve":
        return serving.serve(args, layout)
    if args.command == "site":
        return serving.site(args, layout)
    if args.command == "snapshot":
        return snapshot.run(args, layout)
    try:
        return {"tokenize": cmd_tokenize, "generate": cmd_generate, "fetch": cmd_fetch}[args.command](args)
    except SdlensError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
