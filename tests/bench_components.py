"""`python -m tests.bench components MODEL_DIR [--threads 1,2] [--components …] [--variants fp32,int8,q4]`:
each component's variants at the model's full size, natively and in the browser's WASM runtime.

For every component (text encoder, UNet, VAE decoder, VAE encoder, and the preview decoder TAESD at
full size, as the fast final decoder runs it) and every variant the manifest has, one graph is timed
on fixed random inputs (tests/bench_op_profile.component_feeds): native onnxruntime (CPU) and
onnxruntime-web's WASM backend under Node (the same .wasm the page runs, tests/bench_wasm_profile.mjs),
at each thread count. Beside the times: the variant's error against PyTorch that the export measured
(manifest "parity"), and the WASM output against native onnxruntime's on the same inputs, for the same
variant and for fp32. This is the measurement behind the per-component WASM choice (web/runtime/backend.js).
The table is printed and written to MODEL_DIR/../<name>-components.json.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import time
from pathlib import Path

from .bench_op_profile import component_feeds, wasm_run


def native_run(graph: Path, feeds: dict, threads: int, runs: int) -> dict:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 3
    options.intra_op_num_threads = threads
    created = time.perf_counter()
    session = ort.InferenceSession(str(graph), options, providers=["CPUExecutionProvider"])
    session_seconds = time.perf_counter() - created
    outputs = session.run(None, feeds)  # first-run allocations
    seconds = []
    for _ in range(runs):
        t = time.perf_counter()
        outputs = session.run(None, feeds)
        seconds.append(time.perf_counter() - t)
    return {"seconds": seconds, "session_seconds": session_seconds, "output": outputs[0]}


def relative_error(got, want) -> float:
    import numpy as np

    return float(np.abs(got.astype(np.float64) - want).max() / max(np.abs(want).max(), 1e-12))


def bench_components(model_dir: str, threads=(1, 2), components=None, variants=("fp32", "int8", "q4"),
                     runs: int = 2) -> list[dict]:
    model_dir = Path(model_dir).resolve()
    manifest = json.loads((model_dir / "manifest.json").read_text())
    components = components or ["text_encoder", "unet", "vae_decoder", "vae_encoder", "preview_decoder"]
    rows = []
    print(f"{manifest['name']} at {manifest['defaults']['width']}², batch 1, median of {runs} warm runs; "
          "WASM = onnxruntime-web under Node")
    print("| component | variant | MiB | native " + " | native ".join(f"{t} thr" for t in threads)
          + " | WASM " + " | WASM ".join(f"{t} thr" for t in threads)
          + " | WASM session | vs PyTorch (export) | WASM vs native | WASM vs native fp32 |")
    print("|---" * (6 + 2 * len(threads)) + "|---|")
    for component in components:
        entry = manifest["components"].get(component)
        if not entry:
            continue
        feeds = component_feeds(manifest, component)
        reference = None  # native fp32's output: what every variant is compared with
        for variant in variants:
            if variant not in entry["variants"]:
                continue
            files = [model_dir / f["path"] for f in entry["variants"][variant]["files"]]
            size = sum(f["bytes"] for f in entry["variants"][variant]["files"]) / 2**20
            row = {"component": component, "variant": variant, "mib": size, "native": {}, "wasm": {},
                   "export_rel_err": entry["variants"][variant].get("parity", {}).get("rel_err")}
            native_out = None
            for n in threads:
                native = native_run(files[0], feeds, n, runs)
                row["native"][n] = statistics.median(native["seconds"])
                native_out = native["output"]
            if variant == "fp32":
                reference = native_out
            for n in threads:
                try:
                    wasm = wasm_run(files[0], [f.name for f in files[1:]], feeds, n, runs, profile=False)
                except subprocess.CalledProcessError as err:
                    lines = (err.stderr or "").strip().splitlines()
                    row["wasm"][n] = None
                    row["wasm_error"] = lines[-1][:160] if lines else f"exit {err.returncode}"
                    continue
                row["wasm"][n] = statistics.median(wasm["seconds"])
                row["wasm_session_s"] = wasm["session_seconds"]
                row["wasm_vs_native"] = relative_error(wasm["output"], native_out)
                if reference is not None:
                    row["wasm_vs_fp32"] = relative_error(wasm["output"], reference)
            rows.append(row)
            print(_row(row, threads), flush=True)
    out = model_dir.parent / f"{model_dir.name}-components.json"
    out.write_text(json.dumps(rows, indent=2, default=str) + "\n")
    print(f"(written to {out})")
    return rows


def _row(row: dict, threads) -> str:
    seconds = lambda v: "-" if v is None else f"{v:.2f} s"  # noqa: E731
    err = lambda v: "-" if v is None else f"{v:.1e}"  # noqa: E731
    wasm = [seconds(row["wasm"].get(n)) for n in threads]
    if row.get("wasm_error"):
        wasm[-1] += f" ({row['wasm_error']})"
    return (f"| {row['component']} | {row['variant']} | {row['mib']:.0f} | "
            + " | ".join(seconds(row["native"][n]) for n in threads) + " | " + " | ".join(wasm)
            + f" | {seconds(row.get('wasm_session_s'))} | {err(row['export_rel_err'])} | "
              f"{err(row.get('wasm_vs_native'))} | {err(row.get('wasm_vs_fp32'))} |")
