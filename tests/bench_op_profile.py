"""`python -m tests.bench op-profile MODEL_DIR [--variant int8] [--threads 1]`: where a UNet step's
time goes, natively and in the browser's WASM runtime, by operator type.

One UNet call (batch 1 at the model's native latent size, fixed random inputs) is profiled in
native onnxruntime (`enable_profiling`) and in onnxruntime-web's WASM backend under Node
(`tests/bench_wasm_profile.mjs`: the same .wasm the page runs, at the same thread count), and the
kernel times of the last call are summed by op type. That is how the browser ÷ native ratio of a
full-size step was taken apart (README, Benchmarks).
"""

from __future__ import annotations

import collections
import json
import subprocess
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def unet_feeds(manifest: dict, batch: int = 1, seed: int = 0) -> dict:
    """Fixed random UNet inputs at the model's native latent size (the benchmarks' common feed)."""
    import numpy as np

    factor = manifest["vae_scale_factor"]
    size = manifest["defaults"]["height"] // factor, manifest["defaults"]["width"] // factor
    rng = np.random.default_rng(seed)
    return {"sample": rng.standard_normal((batch, manifest["latent_channels"], *size), dtype=np.float32),
            "timestep": np.array(500.0, np.float32),
            "encoder_hidden_states": rng.standard_normal((batch, 77, manifest["text_hidden_size"]), dtype=np.float32)}


def by_op_type(events: list[dict]) -> tuple[float, dict[str, float]]:
    """(ms of the last model_run, {op type: ms of its kernels}) from an onnxruntime profile trace."""
    last = [e for e in events if e.get("name") == "model_run"][-1]
    start, end = last["ts"], last["ts"] + last["dur"]
    per_op = collections.Counter()
    for e in events:
        if e.get("cat") == "Node" and e["name"].endswith("_kernel_time") and start <= e["ts"] <= end:
            per_op[e["args"]["op_name"]] += e["dur"] / 1000
    return last["dur"] / 1000, dict(per_op)


def native_profile(graph: Path, feeds: dict, threads: int, runs: int) -> tuple[list[float], list[dict]]:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 3
    options.intra_op_num_threads = threads
    options.enable_profiling = True
    options.profile_file_prefix = str(Path(tempfile.gettempdir()) / "sdlens-op-profile")
    session = ort.InferenceSession(str(graph), options, providers=["CPUExecutionProvider"])
    session.run(None, feeds)  # first-run allocations
    seconds = []
    for _ in range(runs):
        t = time.perf_counter()
        session.run(None, feeds)
        seconds.append(time.perf_counter() - t)
    trace = Path(session.end_profiling())
    events = json.loads(trace.read_text())
    trace.unlink()
    return seconds, events


def wasm_profile(graph: Path, external_data: list[str], feeds: dict, threads: int,
                 runs: int) -> tuple[list[float], list[dict]]:
    """`external_data`: the graph's weight files beside it, as the manifest lists them."""
    with tempfile.TemporaryDirectory() as folder:
        described = {}
        for name, array in feeds.items():
            (Path(folder) / f"{name}.f32").write_bytes(array.tobytes())
            described[name] = {"shape": list(array.shape), "file": f"{name}.f32"}
        (Path(folder) / "inputs.json").write_text(json.dumps({"inputs": described, "external_data": external_data}))
        out = subprocess.run(["node", "--max-old-space-size=8192", str(ROOT / "tests" / "bench_wasm_profile.mjs"),
                              str(graph), folder, str(threads), str(runs)],
                             capture_output=True, text=True, check=True, cwd=ROOT).stdout
    lines = out.splitlines()
    seconds = json.loads(next(line for line in lines if line.startswith('{"seconds"')))["seconds"]
    trace = "\n".join(lines[lines.index("BEGIN-PROFILE") + 1:lines.index("END-PROFILE")])
    return seconds, json.loads(trace[trace.index("["):trace.rindex("]") + 1])


def bench_op_profile(model_dir: str, variant: str = "int8", threads: int = 1, runs: int = 2) -> None:
    import statistics

    model_dir = Path(model_dir)
    manifest = json.loads((model_dir / "manifest.json").read_text())
    files = [model_dir / f["path"] for f in manifest["components"]["unet"]["variants"][variant]["files"]]
    graph = files[0]
    feeds = unet_feeds(manifest)
    native_s, native_events = native_profile(graph, feeds, threads, runs)
    wasm_s, wasm_events = wasm_profile(graph, [f.name for f in files[1:]], feeds, threads, runs)
    native_run, native_ops = by_op_type(native_events)
    wasm_run, wasm_ops = by_op_type(wasm_events)
    print(f"UNet {variant}, batch 1 at {manifest['defaults']['width']}², {threads} thread(s), {runs} warm runs: "
          f"native {statistics.median(native_s):.2f} s, WASM (Node) {statistics.median(wasm_s):.2f} s, "
          f"{statistics.median(wasm_s) / statistics.median(native_s):.2f}×")
    print(f"last run's kernels by op type (native {native_run:.0f} ms, WASM {wasm_run:.0f} ms):")
    print("| op type | native ms | WASM ms | WASM ÷ native | share of the difference |")
    print("|---|---|---|---|---|")
    gap = wasm_run - native_run
    for op in sorted(set(native_ops) | set(wasm_ops), key=lambda o: -wasm_ops.get(o, 0)):
        n, w = native_ops.get(op, 0.0), wasm_ops.get(op, 0.0)
        if max(n, w) < 0.005 * wasm_run:
            continue
        ratio = f"{w / n:.1f}×" if n else "-"
        print(f"| {op} | {n:.0f} | {w:.0f} | {ratio} | {100 * (w - n) / gap:.0f} % |")
