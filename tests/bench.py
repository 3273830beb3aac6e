"""Benchmarks (not tests): `python -m tests.bench {pipeline,browser,serve,attention,full-size,op-profile} [--steps 20] [--repeats 5]`.

pipeline: on the tiny model, sdlens' per-step time (onnxruntime + pure-Python schedulers) against
diffusers' StableDiffusionPipeline (PyTorch) with the same scheduler, steps and guidance, and the
share of each sdlens step spent in Python outside the UNet's ONNX run.

browser: on the tiny model in headless Chromium (WASM backend), the per-step time against native
onnxruntime (`sdlens generate`'s runtime), the share of a browser step spent in Pyodide's Python,
cold start (page open → first image), warm start (a second generation), and the cost of keeping
every step's tensors for the explainer; then a first visit on the default model (models/shapes): page
open → the first picture the page draws by itself, with when each part of the start-up ended
(median of --visits fresh browsers).

serve: a classroom at once: 30 concurrent clients (each from its own loopback address where the
system has them) download the default model's browser files (what the page fetches on WASM: the
tokenizer and the fp32 graphs) from `python serve.py` over loopback, on http and on https
(`--lan`); the aggregate MB/s and the server's resident memory before and after (and its peak).
Then one client misbehaves (700 stalled sockets, slowloris, a 1 kB/s reader of a 24 MB file) while
another opens `/`: its median and slowest answer (tests/bench_serve_attacks.py).

attention: on the default model (or --model), a UNet call with and without the attention-map
output, a CPython step with and without reading the maps, and a browser step plain vs explain mode.
`unet_attention_overhead(model_dir)` measures the first on any model folder (e.g. full size).
full-size: a random-weight SD-Turbo (or another family) at its real size, see tests/bench_full_size.py.
op-profile: one UNet call natively and in onnxruntime-web's WASM under Node, by op type
(tests/bench_op_profile.py).
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


# The start-up's parts, in the order they end (web/first_visit.js's startupMarks). Pyodide boots
# while the model files download and their sessions are created, so the parts overlap: each is
# reported as the time it ended, from page open.
STARTUP_PARTS = [
    ("module", "HTML + the page's modules run"),
    ("worker", "worker started"),
    ("files", "model files (download, sha256, Cache Storage)"),
    ("sessions", "onnxruntime sessions created"),
    ("python", "Pyodide booted, py/sdlens imported"),
    ("loaded", "model ready (Python session)"),
    ("mounted", "explainer views loaded and mounted"),
    ("firstImage", "first image drawn"),
    ("pictures", "each step's x̂₀ picture decoded (after it)"),
]


def first_visits(args) -> None:
    """Page open → first image on the default model, as a first visit sees it: a fresh browser
    profile, no link, the page runs the first starter prompt by itself (explained, as by default)."""
    import threading

    from playwright.sync_api import sync_playwright

    import serve

    from .test_browser import CHROMIUM, FLAGS

    httpd = serve.make_server("127.0.0.1", 0, serve.ROOT / "models", quiet=True)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    visits, reloads = [], []

    def measure(page, open_page):
        opened = time.perf_counter()
        open_page()
        page.wait_for_function("window.sdlens?.startup?.firstImage", timeout=300_000, polling=20)
        outer = time.perf_counter() - opened
        run = page.evaluate("window.sdlens.ready.then(() => window.sdlens.store.main.timings)")
        marks = page.evaluate("window.sdlens.startup")
        boot = page.evaluate("window.sdlens.debug?.boot?.mode ?? 'unrecorded'")
        return {**marks, "outer_s": outer, "run_ms": run["wall_ms"], "boot": boot,
                **{f"part:{part['label']}": part["ms"] for part in run["parts"]}}

    with sync_playwright() as p:
        for _ in range(args.visits):
            browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=FLAGS)
            page = browser.new_context().new_page()
            visits.append(measure(page, lambda: page.goto(f"http://localhost:{httpd.server_address[1]}/?backend={args.backend}")))
            # the same browser profile opens the page again: its caches (HTTP, Cache Storage) are warm
            reloads.append(measure(page, page.reload))
            browser.close()
    firefox = firefox_visits(httpd.server_address[1], args.visits) if args.firefox else None
    floor = first_visit_floor(httpd.server_address[1], args.visits)
    httpd.shutdown()
    for name, measured in (("first visit", visits), ("reload", reloads)):
        report_visits(name, measured, args)
    for name, measured in (firefox or {}).items():
        boots = ", ".join(sorted({v["boot"] for v in measured}))
        print(f"Firefox ESR {name}, median of {len(measured)} (Python booted from: {boots}): " + ", ".join(
            f"{label} {statistics.median(v[key] for v in measured):.2f} s" for key, label in
            (("python", "Pyodide booted"), ("sessions", "sessions"), ("run", "first run"), ("firstImage", "first image")))
            + f" (each: {', '.join(format(v['firstImage'], '.2f') for v in measured)})")
    print(f"the floor (a page that only boots Pyodide in a worker, then makes the model's three WASM sessions; "
          f"median of {len(floor['each'])} fresh browsers): Pyodide booted {floor['pyodide']:.2f} s, "
          f"sessions created {floor['sessions']:.2f} s")


def report_visits(name: str, visits: list[dict], args) -> None:
    median = {key: statistics.median(v[key] for v in visits) for key in visits[0]
              if key not in ("firstRun", "boot") and all(key in v for v in visits)}
    boots = ", ".join(sorted({v["boot"] for v in visits}))
    print(f"{name}, default model, {args.backend.upper()}, {os.cpu_count()} cores, median of {len(visits)} "
          f"browsers, Python booted from: {boots} (each part: when it ended, from page open; they overlap):")
    for key, label in STARTUP_PARTS:
        if key in median:
            print(f"  {label:<48} {median[key] / 1000:6.2f} s")
    print(f"  the first run itself (explained), from the page's first run call: {median['run_ms'] / 1000:6.2f} s, of it:")
    for key in median:
        if key.startswith("part:"):
            print(f"    {key[5:]:<60} {median[key] / 1000:6.2f} s")
    each = ", ".join(f"{v['outer_s']:.2f}" for v in visits)
    print(f"  page open → first image (as the test driver saw it): {median['outer_s']:6.2f} s (each: {each})")


def firefox_visits(port: int, visits: int) -> dict[str, list[dict]]:
    """Firefox ESR's first visit and reload (fresh profile each; tests/web/firefox_boot.mjs), in seconds."""
    import json
    import subprocess

    import serve

    found = {"first visit": [], "reload": []}
    for _ in range(visits):
        out = subprocess.run(["node", str(serve.ROOT / "tests" / "web" / "firefox_boot.mjs"), f"http://localhost:{port}",
                              "reload"], capture_output=True, text=True, timeout=600, check=True, cwd=serve.ROOT)
        result = json.loads(out.stdout.strip().splitlines()[-1])
        for name, key in (("first visit", "first"), ("reload", "reload")):
            visit = result[key]
            found[name].append({**{k: visit["startup"][k] / 1000 for k in ("python", "sessions", "firstImage")},
                                "run": visit["run_ms"] / 1000, "boot": (visit.get("boot") or {}).get("mode", "unrecorded")})
    return found


# The floor under a first visit: a page whose only work is a worker booting Pyodide (the runtime the
# pipeline's Python needs), then creating onnxruntime-web's WASM sessions for the default model's
# three graphs. Nothing of sdlens' own runs, so no change to sdlens can make its first image sooner.
FLOOR_WORKER = """
const marks = {};
const started = performance.timeOrigin + performance.now();
const { loadPyodide } = await import(`${ORIGIN}/vendor/pyodide/pyodide.mjs`);
await loadPyodide({ indexURL: `${ORIGIN}/vendor/pyodide/` });
marks.pyodide = performance.timeOrigin + performance.now();
const ort = await import(`${ORIGIN}/vendor/ort/ort.wasm.min.mjs`);
ort.env.wasm.wasmPaths = `${ORIGIN}/vendor/ort/`;
ort.env.wasm.numThreads = 1;
for (const path of PATHS) {
  const bytes = new Uint8Array(await (await fetch(`${ORIGIN}/models/${path}`)).arrayBuffer());
  await ort.InferenceSession.create(bytes, { executionProviders: ["wasm"] });
}
marks.sessions = performance.timeOrigin + performance.now();
postMessage({ started, ...marks });
"""


def first_visit_floor(port: int, visits: int) -> dict:
    """Median seconds from page open to (a) Pyodide booted in a worker, (b) then the default model's
    three WASM sessions created, on a page that does nothing else (FLOOR_WORKER)."""
    import json

    from playwright.sync_api import sync_playwright

    from sdlens.model import Model, resolve_model_dir

    from .test_browser import CHROMIUM, FLAGS

    model_dir = Path(resolve_model_dir(None))
    model = Model.from_dir(str(model_dir), verify=False)
    paths = [f"{model_dir.name}/{model.graph(c)['files'][0]['path']}" for c in ("text_encoder", "unet", "vae_decoder")]
    origin = f"http://localhost:{port}"
    worker = FLOOR_WORKER.replace("ORIGIN", json.dumps(origin)).replace("PATHS", json.dumps(paths))
    html = ("<!doctype html><script type=module>const w = new Worker(URL.createObjectURL(new Blob([" + json.dumps(worker)
            + "], {type: 'text/javascript'})), {type: 'module'}); w.onmessage = (e) => { window.floor = e.data; };"
            "</script>")
    results = []
    with sync_playwright() as p:
        for _ in range(visits):
            browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=FLAGS)
            page = browser.new_context().new_page()
            page.route(f"{origin}/__floor.html", lambda route: route.fulfill(body=html, content_type="text/html"))
            page.goto(f"{origin}/__floor.html")
            page.wait_for_function("window.floor", timeout=120_000, polling=20)
            floor = page.evaluate("window.floor")
            origin_ms = page.evaluate("performance.timeOrigin")
            results.append({"pyodide": (floor["pyodide"] - origin_ms) / 1000, "sessions": (floor["sessions"] - origin_ms) / 1000})
            browser.close()
    return {key: statistics.median(r[key] for r in results) for key in results[0]} | {"each": results}


def bench_browser(args) -> None:
    if args.first_visit_only:
        return first_visits(args)
    import threading

    from playwright.sync_api import sync_playwright

    import serve
    from sdlens.cpython.runtime import OnnxRuntime
    from sdlens.model import Model
    from sdlens.pipeline import Pipeline, Settings

    from .test_browser import CHROMIUM, FLAGS

    with tempfile.TemporaryDirectory() as tmp:
        _, model_dir = build_tiny(Path(tmp) / "models")
        native = Pipeline(Model.from_dir(str(model_dir)), OnnxRuntime())
        settings = Settings("a big red circle on the left", "", 42, args.steps, args.guidance, args.scheduler)
        native.generate(settings)
        native_steps = []
        for _ in range(args.repeats):
            native_steps += native.generate(settings).timings["step_seconds"]

        httpd = serve.make_server("127.0.0.1", 0, model_dir.parent, quiet=True)
        threading.Thread(target=httpd.serve_forever, daemon=True).start()
        request = {"prompt": settings.prompt, "seed": 42, "steps": args.steps, "guidance": args.guidance,
                   "scheduler": args.scheduler}
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=FLAGS)
            page = browser.new_context().new_page()
            opened = time.perf_counter()
            page.goto(f"http://localhost:{httpd.server_address[1]}/?backend={args.backend}")
            first = page.evaluate("(s) => window.sdlens.generate(s).then((r) => r.timings)", request)
            cold = time.perf_counter() - opened
            runs = []
            for _ in range(args.repeats):
                started = time.perf_counter()
                runs.append(page.evaluate("(s) => window.sdlens.generate(s).then((r) => r.timings)", request))
                runs[-1]["outer_s"] = time.perf_counter() - started
            explained = []
            for _ in range(args.repeats):
                started = time.perf_counter()
                explained.append(page.evaluate("(s) => window.sdlens.explain(s).then((r) => r.timings)", request))
                explained[-1]["outer_s"] = time.perf_counter() - started
            backend = page.evaluate("window.sdlens.backend.label")
            browser.close()
        httpd.shutdown()

    first_visits(args)
    browser_steps = [ms / 1000 for r in runs for ms in r["step_ms"]]
    python_share = [py / ms for r in runs for py, ms in zip(r["step_python_ms"], r["step_ms"])]
    ours, ref = statistics.median(browser_steps) * 1000, statistics.median(native_steps) * 1000
    print(f"tiny model, {args.scheduler}, {args.steps} steps, guidance {args.guidance}, {args.repeats} runs; "
          f"browser backend: {backend}")
    print(f"  browser median step:              {ours:8.2f} ms")
    print(f"  native onnxruntime median step:   {ref:8.2f} ms")
    print(f"  ratio browser / native:           {ours / ref:8.2f}")
    print(f"  share of a browser step in Pyodide Python: median {statistics.median(python_share) * 100:.1f}%, "
          f"max {max(python_share) * 100:.1f}%")
    print(f"  cold start (page open → first image): {cold:6.2f} s  (first generation itself "
          f"{first['wall_ms'] / 1000:.2f} s)")
    plain = statistics.median(r["outer_s"] for r in runs)
    explain = statistics.median(r["outer_s"] for r in explained)
    print(f"  warm start (a second generation):     {plain:6.2f} s median")
    print(f"  with the explainer (every step's tensors read back): {explain:6.2f} s median, "
          f"{explain / plain:.2f}× a plain generation")


def unet_attention_overhead(model_dir: Path, variant: str = "fp32", repeats: int = 50, threads: int = 1) -> dict:
    """One UNet call (batch 2, the model's latent size) with the attention_maps output against the
    same graph without it (as exported before maps existed): median seconds of each, interleaved.
    Usable on any model folder, e.g. the full-size one."""
    import json

    import onnx
    import onnxruntime as ort

    from export.attention import remove_attention_output

    from .bench_op_profile import unet_feeds

    manifest = json.loads((Path(model_dir) / "manifest.json").read_text())
    entry = manifest["components"]["unet"]["variants"][variant]
    path = Path(model_dir) / entry["files"][0]["path"]
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.log_severity_level = 3
    with_maps = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    # The graph without the output, in the same folder (onnxruntime resolves external data beside the
    # graph file and refuses links), removed once its session holds the weights.
    plain_path = path.with_name(f".plain-{path.name}")
    try:
        onnx.save(remove_attention_output(onnx.load(str(path), load_external_data=False)), str(plain_path))
        plain = ort.InferenceSession(str(plain_path), options, providers=["CPUExecutionProvider"])
    finally:
        plain_path.unlink(missing_ok=True)
    feeds = unet_feeds(manifest, batch=2)
    times = {"plain": [], "with_maps": []}
    for session in (plain, with_maps):
        session.run(None, feeds)
    for _ in range(repeats):
        for name, session in (("plain", plain), ("with_maps", with_maps)):
            started = time.perf_counter()
            session.run(None, feeds)
            times[name].append(time.perf_counter() - started)
    return {name: statistics.median(t) for name, t in times.items()}


def bench_attention(args) -> None:
    """The cost of attention maps on a model (default: the committed default model)."""
    import threading

    import numpy as np

    from playwright.sync_api import sync_playwright

    import serve
    from sdlens.cpython.runtime import OnnxRuntime
    from sdlens.model import Model
    from sdlens.pipeline import Pipeline, Settings

    from .test_browser import CHROMIUM, FLAGS

    model_dir = Path(args.model)
    unet = unet_attention_overhead(model_dir, repeats=args.repeats * 20)
    print(f"{model_dir}: UNet call, batch 2, onnxruntime CPU 1 thread, median of {args.repeats * 20}:")
    print(f"  without the attention output: {unet['plain'] * 1000:8.2f} ms")
    print(f"  with it:                      {unet['with_maps'] * 1000:8.2f} ms  "
          f"({unet['with_maps'] / unet['plain']:.3f}×)")

    pipeline = Pipeline(Model.from_dir(str(model_dir)), OnnxRuntime(threads=1))
    settings = Settings("a big red star on the left, light blue background", "", 1, args.steps, 7.5, "ddim")
    steps = {False: [], True: []}
    pipeline.generate(settings)
    for _ in range(args.repeats):
        for attention in (False, True):
            maps = []
            timings = pipeline.generate(settings, attention=attention,
                                        on_step=lambda t: maps.append(np.asarray(t.attention) if attention else None)).timings
            steps[attention] += timings["step_seconds"]
    plain_ms, maps_ms = (statistics.median(steps[a]) * 1000 for a in (False, True))
    print(f"  CPython pipeline step: plain {plain_ms:.2f} ms, reading the maps {maps_ms:.2f} ms "
          f"({maps_ms / plain_ms:.3f}×)")

    httpd = serve.make_server("127.0.0.1", 0, model_dir.parent, quiet=True)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    request = {"model": model_dir.name, "prompt": settings.prompt, "seed": 1, "steps": args.steps, "guidance": 7.5,
               "scheduler": "ddim"}
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=FLAGS)
        page = browser.new_context().new_page()
        page.goto(f"http://localhost:{httpd.server_address[1]}/?backend={args.backend}")
        page.evaluate("window.sdlens.ready")
        runs = {"generate": [], "explain": []}
        for kind in runs:  # warm-up
            page.evaluate(f"(s) => window.sdlens.{kind}(s).then(() => null)", request)
        for _ in range(args.repeats):
            for kind in runs:
                timings = page.evaluate(f"(s) => window.sdlens.{kind}(s).then((r) => r.timings)", request)
                runs[kind] += [{"step": ms, "wall": timings["wall_ms"] / len(timings["step_ms"])} for ms in timings["step_ms"]]
        backend = page.evaluate("window.sdlens.backend.label")
        browser.close()
    httpd.shutdown()
    plain = statistics.median(r["step"] for r in runs["generate"])
    explain = statistics.median(r["step"] for r in runs["explain"])
    plain_wall = statistics.median(r["wall"] for r in runs["generate"])
    explain_wall = statistics.median(r["wall"] for r in runs["explain"])
    print(f"  browser ({backend}), {args.steps} steps × {args.repeats} runs, median step:")
    print(f"    plain generation:                          {plain:8.2f} ms   (wall per step {plain_wall:.2f} ms)")
    print(f"    explain mode (every tensor and the maps):  {explain:8.2f} ms   (wall per step {explain_wall:.2f} ms)")
    print(f"    explain / plain: {explain / plain:.2f}× per step, {explain_wall / plain_wall:.2f}× wall")


def _rss_mb(pid: int) -> tuple[float, float]:
    """(resident, peak resident) memory of a process in MB, from /proc (Linux)."""
    fields = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines() if ":" in line)
    return int(fields["VmRSS"].split()[0]) / 1024, int(fields["VmHWM"].split()[0]) / 1024


def bench_serve(args) -> None:
    import http.client
    import json
    import re
    import ssl
    import subprocess
    import sys
    import threading

    from sdlens.serving import app_files

    root = Path(__file__).resolve().parent.parent
    layout = app_files.Layout.find()
    model = next(f for f in app_files.model_folders(layout.models) if app_files.read_manifest(f).get("default"))
    manifest = app_files.read_manifest(model)
    entries = [manifest["tokenizer"]["file"]] + [
        f for c in ("text_encoder", "unet", "vae_decoder") for f in manifest["components"][c]["variants"]["fp32"]["files"]]
    urls = [f"/models/{model.name}/{e['path']}" for e in entries]
    per_client = sum(e["bytes"] for e in entries)

    for scheme in filter(None, args.schemes.split(",")):
        with tempfile.TemporaryDirectory() as certs:
            command = [sys.executable, str(root / "serve.py"), "--port", "0", "--quiet"]
            if scheme == "https":
                command += ["--lan", "--host", "127.0.0.1", "--cert-dir", certs]
            server = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
            try:
                port = int(re.search(r":(\d+)", server.stdout.readline()).group(1))
                threading.Thread(target=server.stdout.read, daemon=True).start()  # drain the banner
                context = ssl._create_unverified_context() if scheme == "https" else None

                def connect(laptop=None):
                    source = (laptop, 0) if laptop else None
                    if context:
                        return http.client.HTTPSConnection("127.0.0.1", port, context=context, timeout=60,
                                                           source_address=source)
                    return http.client.HTTPConnection("127.0.0.1", port, timeout=60, source_address=source)

                probe = connect()
                probe.request("GET", "/api/models.json")  # the server is up
                probe.getresponse().read()
                probe.close()
                time.sleep(0.5)
                before = _rss_mb(server.pid)[0]
                received, failures = [0] * args.clients, []
                start_line = threading.Barrier(args.clients + 1)

                def client(index):
                    buffer = bytearray(1 << 20)
                    conn = connect(f"127.0.1.{index % 250 + 1}" if loopback_aliases() else None)
                    start_line.wait()
                    try:
                        for url in urls:  # one keep-alive connection, like a browser's
                            conn.request("GET", url)
                            response = conn.getresponse()
                            if response.status != 200:
                                raise RuntimeError(f"{url}: HTTP {response.status}")
                            while n := response.readinto(buffer):
                                received[index] += n
                    except Exception as err:  # noqa: BLE001 (reported below)
                        failures.append(repr(err))
                    finally:
                        conn.close()

                threads = [threading.Thread(target=client, args=(i,)) for i in range(args.clients)]
                for t in threads:
                    t.start()
                start_line.wait()
                started = time.perf_counter()
                for t in threads:
                    t.join()
                seconds = time.perf_counter() - started
                time.sleep(0.5)
                after, peak = _rss_mb(server.pid)
            finally:
                server.terminate()
                server.wait()
        total = sum(received)
        complete = sum(r == per_client for r in received)
        print(f"{scheme}: {args.clients} clients × {per_client / 1e6:.1f} MB ({model.name} fp32 + tokenizer) "
              f"over loopback: {total / 1e6 / seconds:.0f} MB/s aggregate ({seconds:.1f} s), "
              f"{complete}/{args.clients} complete; server memory {before:.0f} → {after:.0f} MB "
              f"(peak {peak:.0f} MB)" + (f"; failures: {failures[:3]}" if failures else ""))
    if args.attacks:
        from .bench_serve_attacks import bench_serve_attacks

        if not loopback_aliases():
            print("attacks: skipped (they need the loopback addresses 127.0.0.2 and .3, as Linux has)")
            return
        bench_serve_attacks(args.attacks.split(","), args.samples, _rss_mb)


def loopback_aliases() -> bool:
    from .test_classroom import loopback_aliases

    return loopback_aliases()


def main() -> None:
    os.environ.setdefault("DIFFUSERS_VERBOSITY", "error")
    parser = argparse.ArgumentParser(prog="python -m tests.bench")
    commands = parser.add_subparsers(dest="command", required=True)
    p = commands.add_parser("pipeline", help="sdlens vs diffusers per-step time on the tiny model")
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--guidance", type=float, default=7.5)
    p.add_argument("--scheduler", default="ddim")
    b = commands.add_parser("browser", help="the browser app vs native onnxruntime on the tiny model, and a "
                                            "first visit on the default model")
    b.add_argument("--steps", type=int, default=20)
    b.add_argument("--repeats", type=int, default=5)
    b.add_argument("--guidance", type=float, default=7.5)
    b.add_argument("--scheduler", default="ddim")
    b.add_argument("--backend", default="wasm", choices=["wasm", "webgpu"])
    b.add_argument("--visits", type=int, default=5, help="fresh browsers for the first-visit figures (median)")
    b.add_argument("--first-visit-only", action="store_true", help="only the first-visit figures")
    b.add_argument("--firefox", action="store_true", help="also Firefox ESR's first visit and reload (node, puppeteer-core)")
    s = commands.add_parser("serve", help="30 concurrent clients downloading the default model from serve.py")
    s.add_argument("--clients", type=int, default=30)
    s.add_argument("--schemes", default="http,https", help="http, https (--lan) or both (empty: neither)")
    s.add_argument("--attacks", default="none,stalled,slowloris,slow-reader",
                   help="the misbehaving clients to time a good client beside (empty: none)")
    s.add_argument("--samples", type=int, default=50, help="the good client's GET / per attack")
    a = commands.add_parser("attention", help="the cost of per-word attention maps (graph, pipeline, browser)")
    a.add_argument("--model", default=str(Path(__file__).resolve().parent.parent / "models" / "shapes"))
    a.add_argument("--steps", type=int, default=25)
    a.add_argument("--repeats", type=int, default=5)
    a.add_argument("--backend", default="wasm", choices=["wasm", "webgpu"])
    f = commands.add_parser("full-size", help="a real-size SD (random weights): export, CLI step per variant, "
                                              "parity with diffusers, browser (see tests/bench_full_size.py)")
    f.add_argument("--family", default="sd-turbo", help="sd-turbo (default), sd2.1-base, sd2.1 or sd1.5")
    f.add_argument("--variants", default="fp32,fp16,int8")
    f.add_argument("--parity-steps", type=int, help="steps for the diffusers parity check (default 1 for Turbo, else 3)")
    f.add_argument("--rebuild", action="store_true", help="rebuild and re-export instead of reusing build/full-size")
    f.add_argument("--skip-browser", action="store_true", help="export, CLI and parity only (e.g. an fp32-only "
                                                               "export for another family's parity)")
    c = commands.add_parser("components", help="each component's variants at full size: native onnxruntime and "
                                               "the browser's WASM runtime, per thread count, with parity "
                                               "(see tests/bench_components.py)")
    c.add_argument("model_dir")
    c.add_argument("--threads", default="1,2")
    c.add_argument("--components", default="text_encoder,unet,vae_decoder,vae_encoder,preview_decoder")
    c.add_argument("--variants", default="fp32,int8,q4")
    c.add_argument("--runs", type=int, default=2)
    o = commands.add_parser("op-profile", help="a UNet call's time by op type, native vs the browser's WASM "
                                               "runtime (see tests/bench_op_profile.py)")
    o.add_argument("model_dir")
    o.add_argument("--variant", default="int8")
    o.add_argument("--threads", type=int, default=1)
    o.add_argument("--runs", type=int, default=2)
    o.add_argument("--component", default="unet", help="unet (default), text_encoder, vae_decoder, vae_encoder, "
                                                       "preview_decoder")
    args = parser.parse_args()
    if args.command == "components":
        from .bench_components import bench_components

        return bench_components(args.model_dir, [int(t) for t in args.threads.split(",")],
                                args.components.split(","), args.variants.split(","), args.runs)
    if args.command == "op-profile":
        from .bench_op_profile import bench_op_profile

        return bench_op_profile(args.model_dir, args.variant, args.threads, args.runs, args.component)
    if args.command == "full-size":
        from .bench_full_size import bench_full_size

        return bench_full_size(args)
    {"pipeline": bench_pipeline, "browser": bench_browser, "serve": bench_serve,
     "attention": bench_attention}[args.command](args)


if __name__ == "__main__":
    main()
