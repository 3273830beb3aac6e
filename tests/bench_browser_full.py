"""The browser half of `python -m tests.bench full-size`: a full-size model in headless Chromium
on WASM, against native onnxruntime on the same variant.

`bench_full_size_browser(model_dir)` measures, for each thread count (and variant) asked for:
download + verify + cache, session creation, text encoding, the UNet step, the per-step preview,
the VAE decode, the page's memory (PSS of all Chromium processes, peak), a reload that reads
everything from Cache Storage, and the per-step ratio browser / native onnxruntime.

A full-size run takes minutes and ~5 GB, so it holds /tmp/sdlens-bigmem.lock while it runs (the
machine's memory is shared). Standalone: `python -m tests.bench_browser_full MODEL_DIR
[--threads 1,2] [--variants int8,q4] [--steps 1] [--explain]`.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import gc
import os
import statistics
import tempfile
import threading
import time
from pathlib import Path

LOCK = "/tmp/sdlens-bigmem.lock"


@contextlib.contextmanager
def big_memory_lock():
    with open(LOCK, "w") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def _children(pid: int) -> list[int]:
    found, frontier = [pid], [pid]
    while frontier:
        parent = frontier.pop()
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            try:
                with open(f"/proc/{entry}/stat") as f:
                    ppid = int(f.read().rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                continue
            if ppid == parent:
                found.append(int(entry))
                frontier.append(int(entry))
    return found


def _pss_bytes(pids) -> int:
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/smaps_rollup") as f:
                for line in f:
                    if line.startswith("Pss:"):
                        total += int(line.split()[1]) * 1024
                        break
        except OSError:
            pass
    return total


class MemorySampler:
    """Peak PSS of a process tree, sampled twice a second."""

    def __init__(self, root_pid: int):
        self.root, self.peak, self._stop = root_pid, 0, threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self):
        while not self._stop.wait(0.5):
            self.peak = max(self.peak, _pss_bytes(_children(self.root)))

    def stop(self) -> int:
        self._stop.set()
        self._thread.join()
        return self.peak


def _browser_pid(user_data_dir: str) -> int:
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                cmdline = Path(f"/proc/{entry}/cmdline").read_bytes().decode(errors="replace")
            except OSError:
                continue
            if user_data_dir in cmdline and "--type=" not in cmdline:
                return int(entry)
    raise RuntimeError("cannot find Chromium's browser process")


def native_step(model_dir: Path, variant: str, request: dict, repeats: int = 2) -> dict:
    """The same run in native onnxruntime (`sdlens generate`'s runtime), same variant."""
    from sdlens.cpython.runtime import OnnxRuntime
    from sdlens.model import Model
    from sdlens.pipeline import Pipeline, Settings

    pipeline = Pipeline(Model.from_dir(str(model_dir), variant=variant, verify=False), OnnxRuntime())
    settings = Settings.from_request(request, pipeline.model.defaults)
    pipeline.generate(settings)  # sessions, first-run allocations
    steps, decodes = [], []
    for _ in range(repeats):
        timings = pipeline.generate(settings).timings
        steps += timings["step_seconds"]
        decodes.append(timings["decode_seconds"])
    del pipeline
    gc.collect()
    return {"step_ms": statistics.median(steps) * 1000, "decode_ms": statistics.median(decodes) * 1000}


def measured_natively(model_dir: Path, variant: str) -> dict | None:
    """The step `python -m tests.bench full-size` measured for this variant in its own process
    (build/full-size/<family>-bench.json), so the native run need not be repeated here."""
    import json

    path = model_dir.parent / f"{model_dir.name}-bench.json"
    if not path.is_file():
        return None
    for row in json.loads(path.read_text()).get("rows", []):
        if row.get("variant") == variant:
            return {"step_ms": row["step_s"] * 1000, "decode_ms": row["vae_decode_s"] * 1000}
    return None


RECORD_STEPS = """
    window.benchSteps = [];
    window.addEventListener('sdlens:step', (e) => window.benchSteps.push(
        {ms: e.detail.ms, preview_ms: e.detail.preview_ms, source: e.detail.preview.source}));
"""


def typed_run(page, words: str, pause_s: float = 1.0) -> float:
    """Type `words` into the prompt, wait `pause_s` (the page encodes them once typing rests:
    web/prepare_text.js), click Generate; the page's own Generate → image seconds."""
    page.fill("#prompt", "")
    page.locator("#prompt").type(words)
    page.wait_for_timeout(pause_s * 1000)
    page.click("#generate")
    page.wait_for_function("!document.getElementById('generate').disabled")
    run = page.evaluate("(() => { const t = window.sdlens.store.runs.get('main').timings; "
                        "return { wall: t.wall_ms, reused: t.text_reused }; })()")
    assert run["reused"], "the typed words were not encoded ahead of the run"
    return run["wall"] / 1000


def browser_run(url: str, query: str, request: dict, repeats: int, explain: bool = False) -> dict:
    """Cold load (downloads into an empty cache), runs, then a reload served from the cache. With
    `explain`, each plain run is followed by an explained one (every step's tensors and attention
    maps read back), for the cost of Explain mode."""
    from playwright.sync_api import sync_playwright

    from .test_browser import CHROMIUM, FLAGS

    with tempfile.TemporaryDirectory(prefix="sdlens-bench-profile-") as profile, sync_playwright() as p:
        context = p.chromium.launch_persistent_context(profile, executable_path=CHROMIUM, headless=True, args=FLAGS)
        sampler = MemorySampler(_browser_pid(profile))
        try:
            context.add_init_script(RECORD_STEPS)
            page = context.new_page()
            page.set_default_timeout(1_800_000)
            started = time.perf_counter()
            page.goto(f"{url}/{query}")
            page.evaluate("window.sdlens.ready")
            ready_s = time.perf_counter() - started
            load = page.evaluate("window.sdlens.loadTimings")
            backend = page.evaluate("window.sdlens.backend")
            # The decoder the page picks for this model and backend (the menu's value after loading).
            default_decoder = page.evaluate("document.getElementById('decoder').value")
            # First the final picture by the fast decoder (TAESD at full size), where the model has
            # one: a user's first Generate after loading, on a full-size model on WASM.
            extra = {"default_decoder": default_decoder}
            # (a model without a full-size TAESD, or without an encoder, says so: the message is kept)
            try:
                # new words each time (the page keeps the last prompts' embeddings), then the last
                # words again with another seed: the text encoder is skipped, as it is for words
                # the page encoded while they were typed (web/prepare_text.js)
                fast = [page.evaluate("(s) => window.sdlens.generate({...s, decoder: 'fast'}).then((r) => r.timings)",
                                      {**request, "prompt": f"{request['prompt']}, photo {i + 1}"}) for i in range(repeats)]
                extra["fast_decode_ms"] = statistics.median(f["decode_ms"] for f in fast)
                extra["fast_wall_s"] = [f["wall_ms"] / 1000 for f in fast]
                extra["fast_step_s"] = [sum(f["step_ms"]) / 1000 for f in fast]
                again = page.evaluate("(s) => window.sdlens.generate({...s, decoder: 'fast'}).then((r) => r.timings)",
                                      {**request, "prompt": f"{request['prompt']}, photo {repeats}", "seed": 8})
                assert again["text_reused"], "the same words were encoded again"
                extra["fast_same_words_s"] = again["wall_ms"] / 1000
                # as a person does it: new words typed, a moment, then Generate clicked
                extra["fast_typed_s"] = [typed_run(page, f"{request['prompt']}, sketch {i + 1}") for i in range(repeats)]
            except Exception as err:
                extra["fast_error"] = str(err).splitlines()[0][:200]
            runs, explained = [], []
            for i in range(repeats):
                page.evaluate("window.benchSteps = []")
                timings = page.evaluate("(s) => window.sdlens.generate({...s, decoder: 'vae'}).then((r) => r.timings)",
                                        {**request, "prompt": f"{request['prompt']}, painting {i + 1}"})  # (new words)
                runs.append({**timings, "steps": page.evaluate("window.benchSteps")})
                if explain:
                    explained.append(page.evaluate("(s) => window.sdlens.explain({...s, decoder: 'vae'}).then((r) => r.timings)", request))
            # A run from a picture (the VAE encoder at full size): 2 steps at strength 0.5 run one.
            try:
                img2img = page.evaluate("""async (s) => { const r = await window.sdlens.generate(s);
                    return (await window.sdlens.generate({...s, steps: 2, strength: 0.5,
                        init_image: {width: r.width, height: r.height, rgba: r.rgba}})).timings; }""", request)
                extra["encode_ms"], extra["img2img_wall_s"] = img2img["encode_ms"], img2img["wall_ms"] / 1000
            except Exception as err:
                extra["img2img_error"] = str(err).splitlines()[0][:200]
            peak = sampler.peak
            started = time.perf_counter()
            page.reload()
            page.evaluate("window.sdlens.ready")
            reload_s = time.perf_counter() - started
            reload = page.evaluate("window.sdlens.loadTimings")
        finally:
            peak = max(sampler.stop(), locals().get("peak", 0))
            context.close()
    steps = [s for r in runs for s in r["steps"]]
    return {
        "backend": backend, "ready_s": ready_s, "download_s": load["download_ms"] / 1000,
        "sessions_s": load["sessions_ms"] / 1000, "text_ms": statistics.median(r["text_ms"] for r in runs),
        "step_ms": statistics.median(s["ms"] for s in steps),
        "preview_ms": statistics.median(s["preview_ms"] for s in steps), "preview": steps[0]["source"],
        "decode_ms": statistics.median(r["decode_ms"] for r in runs), "peak_pss_gib": peak / 2**30,
        "reload_s": reload_s, "reload_download_s": reload["download_ms"] / 1000,
        "plain_wall_s": [r["wall_ms"] / 1000 for r in runs], "explain_wall_s": [r["wall_ms"] / 1000 for r in explained],
        **extra,
    }


def bench_full_size_browser(model_dir, threads=(1, 2), variants=(None,), steps=None, repeats=2,
                            explain=False) -> list[dict]:
    """Measure and print; returns one dict per (variant, threads)."""
    import json

    import serve

    model_dir = Path(model_dir).resolve()
    manifest = json.loads((model_dir / "manifest.json").read_text())
    request = {"prompt": "a photo of a red fox in the snow", "seed": 7}
    if steps:
        request["steps"] = steps
    httpd = serve.make_server("127.0.0.1", 0, model_dir.parent, quiet=True)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    url = f"http://localhost:{httpd.server_address[1]}"
    results = []
    try:
        with big_memory_lock():
            for variant in variants:
                for n in threads:
                    # the page starts on the model the query names (not on the folder's default one);
                    # autorun=0: `ready` is the load alone, with no first-visit run in it
                    query = (f"?backend=wasm&threads={n}&model={model_dir.name}&autorun=0"
                             + (f"&variant={variant}" if variant else ""))
                    b = browser_run(url, query, {**request, "model": model_dir.name}, repeats, explain)
                    results.append({"threads": n, **b})
                    print(_line(b, n), flush=True)
                    if explain:
                        plain, explained = statistics.median(b["plain_wall_s"]), statistics.median(b["explain_wall_s"])
                        print(f"  Explain mode: a run takes {explained:.1f} s explained against {plain:.1f} s plain "
                              f"({explained / plain:.2f}×; runs {b['explain_wall_s']} vs {b['plain_wall_s']})", flush=True)
                # the same variant natively (the browser's choice when none was asked for)
                chosen = variant or results[-1]["backend"]["variant"]
                native = measured_natively(model_dir, chosen) or native_step(model_dir, chosen, request, repeats)
                for r in results:
                    if r["backend"]["variant"] == chosen:
                        r["native_step_ms"], r["ratio"] = native["step_ms"], r["step_ms"] / native["step_ms"]
                print(f"  native onnxruntime, {chosen}: step {native['step_ms'] / 1000:.2f} s, "
                      f"VAE decode {native['decode_ms'] / 1000:.2f} s", flush=True)
                for r in results:
                    if r["backend"]["variant"] == chosen:
                        print(f"  ratio browser ({r['threads']} thread) / native, per step: {r['ratio']:.2f}×")
    finally:
        httpd.shutdown()
    return results


def _line(b: dict, n: int) -> str:
    return (f"browser WASM {b['backend']['variant']}, {n} thread(s) [{b['backend']['label']}]: "
            f"download+verify+cache {b['download_s']:.1f} s, sessions {b['sessions_s']:.1f} s, ready {b['ready_s']:.1f} s; "
            f"text {b['text_ms'] / 1000:.2f} s, UNet step {b['step_ms'] / 1000:.2f} s, preview ({b['preview']}) "
            f"{b['preview_ms'] / 1000:.3f} s = {b['preview_ms'] / b['step_ms'] * 100:.1f} % of a step, "
            f"VAE decode {b['decode_ms'] / 1000:.2f} s; page memory peak {b['peak_pss_gib']:.2f} GiB PSS; "
            f"reload from cache: ready {b['reload_s']:.1f} s (files {b['reload_download_s']:.1f} s); "
            f"Generate → image with the VAE {statistics.median(b['plain_wall_s']):.1f} s"
            + (f"; with the fast decoder (TAESD): decode {b['fast_decode_ms'] / 1000:.2f} s, Generate → image "
               f"{statistics.median(b['fast_wall_s']):.1f} s (runs {', '.join(f'{s:.1f}' for s in b['fast_wall_s'])}; "
               f"UNet steps {', '.join(f'{s:.1f}' for s in b['fast_step_s'])}), "
               f"the same words again with another seed {b['fast_same_words_s']:.1f} s, "
               f"typed then clicked {statistics.median(b['fast_typed_s']):.1f} s "
               f"(runs {', '.join(f'{s:.1f}' for s in b['fast_typed_s'])})"
               if "fast_decode_ms" in b else f"; fast decoder: {b.get('fast_error', '-')}")
            + f"; the page's default final decoder here: {b['default_decoder']}"
            + (f"; from a picture: VAE encoder {b['encode_ms'] / 1000:.2f} s, 1 step run, Generate → image "
               f"{b['img2img_wall_s']:.1f} s" if "encode_ms" in b else f"; from a picture: {b.get('img2img_error', '-')}"))


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m tests.bench_browser_full")
    parser.add_argument("model_dir")
    parser.add_argument("--threads", default="1,2")
    parser.add_argument("--variants", default="", help="e.g. int8,q4 (default: the browser's own choice)")
    parser.add_argument("--steps", type=int, default=None)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--explain", action="store_true", help="also time an explained run after each plain one")
    args = parser.parse_args()
    variants = [v for v in args.variants.split(",") if v] or [None]
    bench_full_size_browser(args.model_dir, [int(t) for t in args.threads.split(",")], variants, args.steps, args.repeats,
                            args.explain)


if __name__ == "__main__":
    main()
