"""Benchmarks (not tests): `python -m tests.bench pipeline [--steps 20] [--repeats 5]`.

pipeline: on the tiny model, sdlens' per-step time (onnxruntime + pure-Python schedulers) against
diffusers' StableDiffusionPipeline (PyTorch) with the same scheduler, steps and guidance, and the
share of each sdlens step spent in Python outside the UNet's ONNX run.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path


def build_tiny(workdir: Path) -> tuple[Path, Path]:
    from export.convert import convert
    from export.tiny import write_tiny_pipeline

    pipeline_dir, model_dir = workdir / "tiny-sd", workdir / "tiny-random"
    write_tiny_pipeline(pipeline_dir)
    convert(str(pipeline_dir), model_dir, ["fp32"], quiet=True)
    return pipeline_dir, model_dir


def bench_pipeline(args) -> None:
    import diffusers
    import torch

    from sdlens.cpython.runtime import OnnxRuntime
    from sdlens.model import Model
    from sdlens.pipeline import Pipeline, Settings

    from .test_generate_parity import DIFFUSERS_SCHEDULERS

    with tempfile.TemporaryDirectory() as tmp:
        pipeline_dir, model_dir = build_tiny(Path(tmp))
        ours = Pipeline(Model.from_dir(str(model_dir)), OnnxRuntime())
        ref = diffusers.StableDiffusionPipeline.from_pretrained(
            pipeline_dir, safety_checker=None, feature_extractor=None, requires_safety_checker=False)
        ref.set_progress_bar_config(disable=True)
        ref.scheduler = getattr(diffusers, DIFFUSERS_SCHEDULERS[args.scheduler]).from_config(ref.scheduler.config)

        settings = Settings("a big red circle on the left", "", 42, args.steps, args.guidance, args.scheduler)
        ours.generate(settings)  # warm-up: session creation, first-run allocations
        our_steps, python_share = [], []
        for _ in range(args.repeats):
            timings = ours.generate(settings).timings
            our_steps += timings["step_seconds"]
            python_share += [(s - o) / s for s, o in zip(timings["step_seconds"], timings["step_onnx_seconds"])]

        ref_steps = []
        last = [time.perf_counter()]

        def on_step_end(pipe, i, t, kwargs):
            now = time.perf_counter()
            ref_steps.append(now - last[0])
            last[0] = now
            return kwargs

        def ref_run():
            with torch.no_grad():
                ref("a big red circle on the left", num_inference_steps=args.steps, guidance_scale=args.guidance,
                    generator=torch.Generator().manual_seed(42), output_type="latent",
                    callback_on_step_end=on_step_end)

        ref_run()
        ref_steps.clear()
        for _ in range(args.repeats):
            # The first interval of a run also holds prompt encoding and noise: drop it, as sdlens' steps do.
            last[0] = time.perf_counter()
            ref_run()
            ref_steps.pop(-args.steps)

    ours_ms = statistics.median(our_steps) * 1000
    ref_ms = statistics.median(ref_steps) * 1000
    print(f"tiny model, {args.scheduler}, {args.steps} steps, guidance {args.guidance}, {args.repeats} runs, "
          f"torch threads {torch.get_num_threads()}")
    print(f"  sdlens (onnxruntime) median step: {ours_ms:8.2f} ms")
    print(f"  diffusers (PyTorch)  median step: {ref_ms:8.2f} ms   (over {len(ref_steps)} steps)")
    print(f"  ratio sdlens / diffusers:         {ours_ms / ref_ms:8.2f}")
    print(f"  share of an sdlens step outside the UNet's ONNX run (Python + tensor combines): "
          f"median {statistics.median(python_share) * 100:.1f}%, max {max(python_share) * 100:.1f}%")


def main() -> None:
    os.environ.setdefault("DIFFUSERS_VERBOSITY", "error")
    parser = argparse.ArgumentParser(prog="python -m tests.bench")
    commands = parser.add_subparsers(dest="command", required=True)
    p = commands.add_parser("pipeline", help="sdlens vs diffusers per-step time on the tiny model")
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--guidance", type=float, default=7.5)
    p.add_argument("--scheduler", default="ddim")
    args = parser.parse_args()
    {"pipeline": bench_pipeline}[args.command](args)


if __name__ == "__main__":
    main()
