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


def component_feeds(manifest: dict, component: str, seed: int = 0) -> dict:
    """Fixed random inputs for one component at the model's size, as a run feeds it (batch 1):
    the UNet's (unet_feeds), 77 token ids, a latent to decode, a picture to encode; the preview
    decoder ("preview_decoder") gets the whole latent, as the fast final decoder does."""
    import numpy as np

    if component == "unet":
        return unet_feeds(manifest, seed=seed)
    rng = np.random.default_rng(seed)
    factor = manifest["vae_scale_factor"]
    height, width = manifest["defaults"]["height"], manifest["defaults"]["width"]
    if component == "text_encoder":
        ids = np.full((1, 77), 49407, np.int64)
        ids[0, :8] = [49406, 320, 1125, 539, 320, 736, 3240, 49407]  # "a photo of a red fox"-like ids
        return {"input_ids": ids}
    if component in ("vae_decoder", "preview_decoder"):
        return {"latent_sample": rng.standard_normal((1, manifest["latent_channels"], height // factor, width // factor),
                                                     dtype=np.float32)}
    if component == "vae_encoder":
        return {"sample": rng.uniform(-1, 1, (1, 3, height, width)).astype(np.float32)}
    raise ValueError(f"no feeds for {component}")


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


def wasm_run(graph: Path, external_data: list[str], feeds: dict, threads: int, runs: int,
             profile: bool = True) -> dict:
    """The graph in onnxruntime-web's WASM backend under Node: {seconds: [per run], session_seconds,
    output (the first output of the last run, numpy), events (the profile trace, with `profile`)}.
    `external_data`: the graph's weight files beside it, as the manifest lists them."""
    import numpy as np

    with tempfile.TemporaryDirectory() as folder:
        described = {}
        for name, array in feeds.items():
            (Path(folder) / f"{name}.bin").write_bytes(np.ascontiguousarray(array).tobytes())
            described[name] = {"shape": list(array.shape), "file": f"{name}.bin", "dtype": str(array.dtype)}
        (Path(folder) / "inputs.json").write_text(json.dumps({"inputs": described, "external_data": external_data}))
        out = subprocess.run(["node", "--max-old-space-size=8192", str(ROOT / "tests" / "bench_wasm_profile.mjs"),
                              str(graph), folder, str(threads), str(runs), "1" if profile else "0"],
                             capture_output=True, text=True, check=True, cwd=ROOT).stdout
        lines = out.splitlines()
        result = json.loads(next(line for line in lines if line.startswith('{"seconds"')))
        result["output"] = np.fromfile(Path(folder) / "output.f32", np.float32).reshape(result["output_shape"])
    if profile:
        trace = "\n".join(lines[lines.index("BEGIN-PROFILE") + 1:lines.index("END-PROFILE")])
        result["events"] = json.loads(trace[trace.index("["):trace.rindex("]") + 1])
    return result


def wasm_profile(graph: Path, external_data: list[str], feeds: dict, threads: int,
                 runs: int) -> tuple[list[float], list[dict]]:
    result = wasm_run(graph, external_data, feeds, threads, runs)
    return result["seconds"], result["events"]


def bench_op_profile(model_dir: str, variant: str = "int8", threads: int = 1, runs: int = 2,
                     component: str = "unet") -> None:
    import statistics

    model_dir = Path(model_dir)
    manifest = json.loads((model_dir / "manifest.json").read_text())
    files = [model_dir / f["path"] for f in manifest["components"][component]["variants"][variant]["files"]]
    graph = files[0]
    feeds = component_feeds(manifest, component)
    native_s, native_events = native_profile(graph, feeds, threads, runs)
    wasm_s, wasm_events = wasm_profile(graph, [f.name for f in files[1:]], feeds, threads, runs)
    native_run, native_ops = by_op_type(native_events)
    wasm_run, wasm_ops = by_op_type(wasm_events)
    print(f"{component} {variant}, batch 1 at {manifest['defaults']['width']}², {threads} thread(s), {runs} warm runs: "
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
