"""`python -m tests.bench full-size [--family sd-turbo]`: a real-size Stable Diffusion, end to end.

It builds the family's random-weight pipeline from its real configs (`export.families`, no hub),
a random-weight TAESD preview decoder, exports both (`export convert`, fp32/fp16/int8, time and
peak RSS from /usr/bin/time -v), then for each variant runs sdlens' CPython pipeline in a fresh
process (session creation, text encoder, one UNet step = native onnxruntime's per-step time, VAE
decode, preview decode, peak RSS), and checks the fp32 latents against diffusers' own pipeline at
a few steps. Everything lives under build/full-size/ and is reused by the next run (pass
--rebuild to start over); the exported model is build/full-size/<family>.

Runs that take more than 4 GB hold /tmp/sdlens-bigmem.lock, so two never overlap on a shared
machine (so do not wrap the benchmark itself in that flock). The browser measurements come from
`tests/bench_browser_full.py`'s `bench_full_size_browser(model_dir)`, when that module exists;
the native numbers it compares against are in build/full-size/<family>-bench.json.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BUILD = ROOT / "build" / "full-size"
LOCK = "/tmp/sdlens-bigmem.lock"
PROMPT = "a photograph of an astronaut riding a horse"
SEED = 42


def _timed(cmd: list[str]) -> dict:
    """Run under the big-memory lock and /usr/bin/time -v: wall seconds and peak RSS."""
    proc = subprocess.run(["flock", LOCK, "/usr/bin/time", "-v", *cmd], cwd=ROOT, capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{proc.stderr[-3000:]}")
    wall = re.search(r"Elapsed \(wall clock\) time \(h:mm:ss or m:ss\): (\S+)", proc.stderr).group(1)
    seconds = sum(float(x) * 60 ** i for i, x in enumerate(reversed(wall.split(":"))))
    rss_kib = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", proc.stderr).group(1))
    return {"seconds": seconds, "max_rss_gib": rss_kib / 2**20, "stdout": proc.stdout}


def _cached(path: Path, make) -> dict:
    if path.is_file():
        return json.loads(path.read_text())
    result = make()
    path.write_text(json.dumps(result, indent=2) + "\n")
    return result


def build_and_export(family: str, variants: str, rebuild: bool) -> dict:
    src, model, taesd = BUILD / f"{family}-diffusers", BUILD / family, BUILD / "taesd"
    if rebuild:
        for p in (src, model, BUILD / f"{family}-build.json", BUILD / f"{family}-export.json"):
            shutil.rmtree(p, ignore_errors=True) if p.is_dir() else p.unlink(missing_ok=True)
    BUILD.mkdir(parents=True, exist_ok=True)
    py = sys.executable
    build = _cached(BUILD / f"{family}-build.json", lambda: _timed(
        [py, "-m", "export", "family", family, str(src), "--force"]))
    if not (taesd / "config.json").is_file():
        subprocess.run([py, "-c", "import sys; from diffusers import AutoencoderTiny; "
                        "AutoencoderTiny().save_pretrained(sys.argv[1])", str(taesd)], check=True, cwd=ROOT)
    export = _cached(BUILD / f"{family}-export.json", lambda: _timed(
        [py, "-m", "export", "convert", str(src), "--out", str(model), "--name", family, "--variants", variants,
         "--preview-decoder", str(taesd), "--force"]))
    return {"build": build, "export": export}


def run_variant(model_dir: str, variant: str) -> dict:
    """One process per variant (its peak RSS is its own): sdlens' CPython pipeline at 512²."""
    import resource
    import time

    import numpy as np
    import onnxruntime as ort

    from sdlens.cpython.runtime import OnnxRuntime
    from sdlens.model import Model
    from sdlens.pipeline import Pipeline, Settings

    model = Model.from_dir(model_dir, variant=variant, verify=False)
    pipe = Pipeline(model, OnnxRuntime())
    started = time.perf_counter()
    for component in ("text_encoder", "unet", "vae_decoder"):
        pipe.graph(component)
    sessions = time.perf_counter() - started
    defaults = model.defaults
    settings = Settings(prompt=PROMPT, seed=SEED, steps=1, guidance=defaults["guidance"],
                        scheduler=defaults["scheduler"])
    runs = [pipe.generate(settings).timings for _ in range(2)]  # the second one is warm
    timings = runs[-1]
    from sdlens.browser.preview import choose

    # the preview decoder's variant the browser takes beside this one, on the backend that takes it at full size
    plan = choose(model.manifest, variant, "wasm" if variant in ("int8", "q4") else "webgpu")
    preview_seconds = fast_seconds = None
    latent = np.zeros(model.latent_shape(defaults["width"], defaults["height"]), np.float32)

    def timed(session, feeds):
        session.run(None, feeds)  # the first run sets up; the second is timed
        t = time.perf_counter()
        session.run(None, feeds)
        return time.perf_counter() - t

    if plan["kind"] == "preview_decoder":
        from sdlens.fast_decoder import draws_full_size

        session = ort.InferenceSession(str(Path(model_dir) / plan["entry"]["files"][0]["path"]),
                                       providers=["CPUExecutionProvider"])
        pool = int(model.manifest["components"]["preview_decoder"].get("preview_pool", 1))
        small = latent[:, :, ::pool, ::pool].copy()
        preview_seconds = timed(session, {"latent_sample": small})
        if draws_full_size(model.manifest):  # the same graph as the final picture's fast decoder
            fast_seconds = timed(session, {"latent_sample": latent})
    encoder_seconds = None
    if model.has("vae_encoder"):  # img2img: a 512² picture through the VAE encoder
        session = ort.InferenceSession(str(Path(model_dir) / model.graph("vae_encoder")["files"][0]["path"]),
                                       providers=["CPUExecutionProvider"])
        picture = np.zeros((1, 3, defaults["height"], defaults["width"]), np.float32)
        encoder_seconds = timed(session, {"sample": picture})
    return {"variant": variant, "sessions_s": sessions, "text_s": timings["text_seconds"],
            "unet_step_s": timings["step_onnx_seconds"][0], "step_s": timings["step_seconds"][0],
            "vae_decode_s": timings["decode_seconds"], "preview_s": preview_seconds,
            "preview_px": plan["width"] if plan["kind"] == "preview_decoder" else None,
            "fast_decode_s": fast_seconds, "vae_encode_s": encoder_seconds,
            "max_rss_gib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20}


def parity_latents(which: str, src: str, model_dir: str, steps: int, out: str) -> None:
    """Latents after `steps` steps at the model's default scheduler and guidance, from diffusers
    (`which` = diffusers) or sdlens fp32 (`which` = sdlens), saved to OUT (.npy)."""
    import numpy as np

    from sdlens.model import Model

    model = Model.from_dir(model_dir, verify=False)
    defaults = model.defaults
    if which == "sdlens":
        from sdlens.cpython.runtime import OnnxRuntime
        from sdlens.pipeline import Pipeline, Settings

        result = Pipeline(model, OnnxRuntime()).generate(Settings(
            prompt=PROMPT, seed=SEED, steps=steps, guidance=defaults["guidance"], scheduler=defaults["scheduler"]))
        np.save(out, np.asarray(result.latents))
        return
    import diffusers
    import torch
    from transformers import CLIPTokenizerFast

    from .test_families import DIFFUSERS_SCHEDULERS

    pipe = diffusers.StableDiffusionPipeline.from_pretrained(src, safety_checker=None, feature_extractor=None,
                                                             requires_safety_checker=False)
    pipe.tokenizer = CLIPTokenizerFast.from_pretrained(Path(src) / "tokenizer")
    pipe.set_progress_bar_config(disable=True)
    pipe.scheduler = getattr(diffusers, DIFFUSERS_SCHEDULERS[defaults["scheduler"]]).from_config(pipe.scheduler.config)
    with torch.no_grad():
        latents = pipe(PROMPT, num_inference_steps=steps, guidance_scale=defaults["guidance"],
                       generator=torch.Generator("cpu").manual_seed(SEED), output_type="latent").images
    np.save(out, latents.numpy())


def _subprocess_json(*args) -> dict:
    result = _timed([sys.executable, "-m", "tests.bench_full_size", *args])
    return json.loads(result["stdout"].strip().splitlines()[-1])


def bench_full_size(args) -> None:
    import numpy as np

    family = args.family
    model_dir = BUILD / family
    made = build_and_export(family, args.variants, args.rebuild)
    manifest = json.loads((model_dir / "manifest.json").read_text())
    sizes = {v: sum(f["bytes"] for c in ("text_encoder", "unet", "vae_decoder")
                    for f in manifest["components"][c]["variants"][v]["files"])
             for v in manifest["components"]["unet"]["variants"]}
    largest = max(f["bytes"] for c in manifest["components"].values() for v in c["variants"].values()
                  for f in v["files"])
    rows = [_subprocess_json("variant", str(model_dir), v) for v in args.variants.split(",")]

    steps = args.parity_steps or (1 if manifest["defaults"]["steps"] == 1 else 3)
    tmp = BUILD / "parity"
    tmp.mkdir(exist_ok=True)
    for which in ("diffusers", "sdlens"):
        _timed([sys.executable, "-m", "tests.bench_full_size", "parity", which, str(BUILD / f"{family}-diffusers"),
                str(model_dir), str(steps), str(tmp / f"{family}-{which}.npy")])
    ref, got = np.load(tmp / f"{family}-diffusers.npy"), np.load(tmp / f"{family}-sdlens.npy")
    parity = float(np.abs(got - ref).max() / np.abs(ref).max())

    lines = [f"full-size {family} (random weights from its real configs), {manifest['defaults']['width']}², "
             f"onnxruntime CPU on this machine",
             f"- build the diffusers pipeline: {made['build']['seconds']:.0f} s, peak RSS {made['build']['max_rss_gib']:.2f} GiB",
             f"- export convert --variants {args.variants} --preview-decoder: {made['export']['seconds'] / 60:.1f} min, "
             f"peak RSS {made['export']['max_rss_gib']:.2f} GiB (/usr/bin/time -v)",
             f"- largest file {largest / 2**20:.0f} MiB; download (text+UNet+VAE dec) "
             + ", ".join(f"{v} {b / 2**20:,.0f} MiB" for v, b in sizes.items()),
             f"- parity with diffusers, fp32, {steps} {manifest['defaults']['scheduler']} step(s) at guidance "
             f"{manifest['defaults']['guidance']}: max |Δlatents| / max |latents| = {parity:.1e}",
             "",
             "| variant | sessions | text | UNet step (native ORT) | VAE decode | fast decode (TAESD, full size) "
             "| preview (TAESD) | VAE encode (img2img) | peak RSS |",
             "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        preview = f"{r['preview_s']:.2f} s at {r.get('preview_px')}² ({100 * r['preview_s'] / r['unet_step_s']:.0f} % of a step)" \
            if r["preview_s"] is not None else "-"
        seconds = lambda key: f"{r[key]:.2f} s" if r.get(key) is not None else "-"  # noqa: E731
        lines.append(f"| {r['variant']} | {r['sessions_s']:.1f} s | {r['text_s']:.2f} s | {r['unet_step_s']:.2f} s | "
                     f"{r['vae_decode_s']:.2f} s | {seconds('fast_decode_s')} | {preview} | {seconds('vae_encode_s')} "
                     f"| {r['max_rss_gib']:.1f} GiB |")
    print("\n".join(lines))
    (BUILD / f"{family}-bench.json").write_text(json.dumps({"made": made, "rows": rows, "parity": parity}, indent=2))

    if not args.skip_browser:
        from .bench_browser_full import bench_full_size_browser

        bench_full_size_browser(model_dir)


if __name__ == "__main__":
    if sys.argv[1] == "variant":
        print(json.dumps(run_variant(sys.argv[2], sys.argv[3])))
    elif sys.argv[1] == "parity":
        parity_latents(sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5]), sys.argv[6])
        print("{}")
