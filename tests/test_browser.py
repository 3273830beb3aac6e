"""The browser app end to end, in real headless Chromium (Playwright's Python package driving
/usr/bin/chromium): same pixels as CPython on WASM and WebGPU, Stop, bad input, a corrupted model
file, offline reloads, and no request ever leaves the server's origin."""

from __future__ import annotations

import shutil
import threading
from urllib.parse import urlsplit

import numpy as np
import pytest

import serve
from sdlens.cpython.runtime import OnnxRuntime
from sdlens.model import Model
from sdlens.pipeline import Pipeline, Settings

CHROMIUM = "/usr/bin/chromium"
FLAGS = ["--no-sandbox", "--no-first-run", "--disable-background-networking", "--disable-component-update",
         "--disable-sync", "--disable-quic", "--enable-unsafe-webgpu"]
TOLERANCE = {"wasm": 2, "webgpu": 4}  # max abs pixel difference (of 255) from `sdlens generate`

pytestmark = pytest.mark.skipif(not shutil.which(CHROMIUM), reason="needs Debian's chromium (scripts/install)")


class Server:
    def __init__(self, models_dir):
        self.httpd = serve.make_server("127.0.0.1", 0, models_dir, quiet=True)
        self.url = f"http://localhost:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def stop(self):
        self.httpd.shutdown()
        self.httpd.server_close()


class Page:
    """A page with its console errors and the origins it contacted recorded."""

    def __init__(self, context, server, query=""):
        self.page = context.new_page()
        self.errors, self.origins = [], set()
        self.page.on("console", lambda m: m.type == "error" and self.errors.append(m.text))
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        self.page.on("request", lambda r: self.origins.add(_origin(r.url)))
        context.on("request", lambda r: self.origins.add(_origin(r.url)))  # the worker's and SW's too
        self.page.goto(f"{server.url}/{query}")

    def ready(self):
        self.page.evaluate("window.sdlens.ready")
        return self

    def generate(self, **settings):
        return self.page.evaluate(
            """async (s) => { const r = await window.sdlens.generate(s);
                return {...r, rgba: Array.from(r.rgba)}; }""", settings)


def _origin(url):
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}" if parts.scheme in ("http", "https", "ws", "wss") else parts.scheme


@pytest.fixture(scope="module")
def models_dir(tiny_model_dir, tiny_pipeline_dir, tmp_path_factory):
    """The tiny model, and the same weights exported as graphs + external data files."""
    from export import variants
    from export.convert import convert

    folder = tmp_path_factory.mktemp("browser-models")
    shutil.copytree(tiny_model_dir, folder / "tiny-random")
    threshold = variants.EXTERNAL_DATA_BYTES
    variants.EXTERNAL_DATA_BYTES = 100_000
    try:
        convert(str(tiny_pipeline_dir), folder / "tiny-split", ["fp32"], quiet=True)
    finally:
        variants.EXTERNAL_DATA_BYTES = threshold
    return folder


@pytest.fixture(scope="module")
def server(models_dir):
    srv = Server(models_dir)
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=FLAGS)
        yield b
        b.close()


@pytest.fixture
def context(browser):
    ctx = browser.new_context(viewport={"width": 1280, "height": 800})
    yield ctx
    ctx.close()


@pytest.fixture(scope="module")
def wasm_page(browser, server):
    """One page on WASM shared by the UI tests: each must leave it working (nothing is lost)."""
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    page = Page(context, server, "?backend=wasm").ready()
    yield page
    context.close()


@pytest.fixture(scope="module")
def cpython(models_dir):
    return Pipeline(Model.from_dir(str(models_dir / "tiny-random")), OnnxRuntime())


def cpython_pixels(cpython, settings):
    result = cpython.generate(Settings(**settings))
    return np.frombuffer(result.rgb, np.uint8).reshape(result.height, result.width, 3).astype(int)


@pytest.mark.parametrize("backend", ["wasm", "webgpu"])
def test_pixels_equal_cpython(browser, server, cpython, backend):
    context = browser.new_context()
    try:
        page = Page(context, server, f"?backend={backend}").ready()
        expected_label = "WASM: chosen by you" if backend == "wasm" else "WebGPU fp32"
        for scheduler in ("ddim", "euler_a"):
            for guidance in (1.0, 7.5):
                settings = dict(prompt="a red circle on the left", negative="", seed=7, steps=3,
                                guidance=guidance, scheduler=scheduler)
                result = page.generate(**settings)
                assert result["backend"] == expected_label
                got = np.array(result["rgba"], np.uint8).reshape(result["height"], result["width"], 4)[..., :3]
                diff = np.abs(got.astype(int) - cpython_pixels(cpython, settings)).max()
                assert diff <= TOLERANCE[backend], (scheduler, guidance, diff)
        assert page.errors == []
        assert page.origins == {server.url}
    finally:
        context.close()


def test_visible_controls_generate(wasm_page, server):
    page = wasm_page
    p = page.page
    p.fill("#prompt", "a blue square")
    p.fill("#steps", "2")
    p.click("#generate")
    p.wait_for_function("document.getElementById('progress-text').textContent.startsWith('Done')", timeout=60_000)
    assert p.locator("#previews canvas").count() == 2
    assert p.locator("#backend-badge").text_content() == "WASM: chosen by you"
    assert page.errors == [] and page.origins == {server.url}


def test_stop_button_cancels_then_generate_again(wasm_page):
    p = wasm_page.page
    p.evaluate("() => { window.longRun = window.sdlens.generate({prompt: 'x', steps: 400, guidance: 7.5}); }")
    p.wait_for_function("document.getElementById('progress-text').textContent.startsWith('Step 2 ')", timeout=60_000)
    p.click("#stop")
    assert p.evaluate("window.longRun") == {"cancelled": True}
    assert p.locator("#previews canvas").count() < 400
    result = wasm_page.generate(prompt="x", steps=2, guidance=1.0)
    assert len(result["timings"]["step_ms"]) == 2
    assert wasm_page.errors == []


def test_stop_takes_effect_within_a_step(wasm_page):
    # Stop from inside the page the moment step 2 is reported, then count the steps that follow:
    # only the step already under way may finish (and its report may still be in flight).
    after = wasm_page.page.evaluate("""async () => {
        let stoppedAt = null, last = -1;
        const listener = ({ detail }) => {
            last = detail.index;
            if (detail.index === 1 && stoppedAt === null) { stoppedAt = 1; window.sdlens.stop(); }
        };
        window.addEventListener('sdlens:step', listener);
        const result = await window.sdlens.generate({prompt: 'x', steps: 400, guidance: 7.5});
        window.removeEventListener('sdlens:step', listener);
        return {cancelled: result.cancelled, extra: last - stoppedAt};
    }""")
    assert after["cancelled"] is True and after["extra"] <= 2


@pytest.mark.parametrize("field, value, message", [
    ("steps", 0, "steps must be"),
    ("steps", 5000, "steps must be"),
    ("seed", "abc", "seed must be a whole number"),
    ("guidance", "nan", "guidance must be a finite number"),
    ("scheduler", "pndm", "unknown scheduler"),
])
def test_bad_input_shows_a_message_by_the_field(wasm_page, field, value, message):
    p = wasm_page.page
    error = p.evaluate("(s) => window.sdlens.generate(s).then(() => null, (e) => e.message)", {field: value})
    assert message in error
    assert message in p.locator(f"#{field}-message").text_content()
    # Nothing is lost: the page still works.
    assert len(wasm_page.generate(prompt="ok", steps=1)["timings"]["step_ms"]) == 1


def test_long_prompt_names_dropped_words(wasm_page):
    prompt = " ".join(f"word{i}" for i in range(90))
    wasm_page.generate(prompt=prompt, steps=1)
    text = wasm_page.page.locator("#prompt-message").text_content()
    assert "dropped: word28 word29" in text and text.rstrip().endswith("word89")


def test_model_picker_and_external_data(wasm_page, models_dir, cpython):
    manifest = (models_dir / "tiny-split" / "manifest.json").read_text()
    assert "model_fp32.onnx_data" in manifest
    p = wasm_page.page
    assert p.locator("#model option").all_text_contents() == ["tiny-random", "tiny-split"]
    settings = dict(prompt="a green heart", negative="", seed=11, steps=2, guidance=7.5, scheduler="euler")
    result = wasm_page.generate(model="tiny-split", **settings)
    assert p.locator("#model").input_value() == "tiny-split"
    got = np.array(result["rgba"], np.uint8).reshape(result["height"], result["width"], 4)[..., :3]
    assert np.abs(got.astype(int) - cpython_pixels(cpython, settings)).max() <= TOLERANCE["wasm"]
    wasm_page.generate(model="tiny-random", prompt="back", steps=1)
    assert wasm_page.errors == []


def test_corrupted_model_file_is_named(browser, models_dir, tmp_path):
    broken_models = tmp_path / "models"
    shutil.copytree(models_dir, broken_models)
    unet = broken_models / "tiny-random" / "unet" / "model_fp32.onnx"
    data = bytearray(unet.read_bytes())
    data[len(data) // 3] ^= 0x01
    unet.write_bytes(bytes(data))
    srv = Server(broken_models)
    context = browser.new_context()
    try:
        page = Page(context, srv, "?backend=wasm")
        page.page.wait_for_function("!document.getElementById('error').hidden", timeout=60_000)
        message = page.page.locator("#error").text_content()
        assert "unet/model_fp32.onnx" in message and "checksum" in message
        assert page.page.evaluate("typeof window.sdlens.generate") == "function"  # no dead page
    finally:
        context.close()
        srv.stop()


def test_second_visit_works_with_the_server_stopped(browser, models_dir, tmp_path):
    srv = Server(models_dir)
    context = browser.new_context()
    try:
        page = Page(context, srv, "?backend=wasm").ready()
        first = page.generate(prompt="a star", seed=3, steps=2)
        srv.stop()
        page.page.reload()
        page.ready()
        # The address bar held the run (it follows the current run), so the reload reproduces it.
        page.page.wait_for_function("window.sdlens.store.main?.final && !document.getElementById('generate').disabled",
                                    timeout=60_000)
        assert page.page.evaluate("Array.from(window.sdlens.store.main.final.rgba)") == first["rgba"]
        second = page.generate(prompt="a star", seed=3, steps=2)
        assert second["rgba"] == first["rgba"]
    finally:
        context.close()


def test_backend_choice(context, server):
    page = Page(context, server).ready()  # no ?backend: the automatic choice
    choices = page.page.evaluate("""async () => {
        const { chooseBackend } = await import('/backend.js');
        const v = (backends, bytes) => ({files: [{bytes}], backends});
        const manifest = (variants) => ({components: Object.fromEntries(
            ['text_encoder', 'unet', 'vae_decoder'].map((c) => [c, {variants}]))});
        const small = manifest({fp32: v(['webgpu', 'wasm'], 1e6), fp16: v(['webgpu-f16'], 5e5),
                                int8: v(['wasm'], 2.5e5)});
        const big = manifest({fp32: v(['webgpu', 'wasm'], 1e9), fp16: v(['webgpu-f16'], 5e8),
                              int8: v(['wasm'], 2.5e8)});
        const f16 = {available: true, f16: true, adapter: 'gpu'};
        const noF16 = {available: true, f16: false, adapter: 'swiftshader'};
        const none = {available: false, reason: 'no WebGPU adapter'};
        const pick = (m, g, p) => { const b = chooseBackend(m, g, p); return [b.ep, b.variant, b.label]; };
        return [pick(small, f16), pick(small, noF16), pick(big, noF16), pick(small, none),
                pick(big, none), pick(small, f16, 'wasm')];
    }""")
    assert choices == [
        ["webgpu", "fp16", "WebGPU (shader-f16)"],
        ["webgpu", "fp32", "WebGPU fp32"],
        ["wasm", "int8", "WASM: model variant needs shader-f16"],
        ["wasm", "fp32", "WASM: no WebGPU adapter"],
        ["wasm", "int8", "WASM: no WebGPU adapter"],
        ["wasm", "fp32", "WASM: chosen by you"],
    ]
    # This headless Chromium has SwiftShader's WebGPU without shader-f16: the badge says so.
    assert page.page.evaluate("window.sdlens.backend.label") == "WebGPU fp32"


DEFAULT_MODEL = serve.ROOT / "models" / "shapes"


@pytest.mark.skipif(not (DEFAULT_MODEL / "manifest.json").is_file(), reason="models/shapes is not built")
def test_the_embedded_default_model_runs_in_the_browser(browser):
    """What `python serve.py` serves on a fresh clone: the committed default model, preselected."""
    srv = Server(serve.ROOT / "models")
    context = browser.new_context()
    try:
        page = Page(context, srv, "?backend=wasm").ready()
        assert page.page.locator("#model").input_value() == "shapes"
        settings = dict(prompt="a big red circle on the left, light blue background", negative="", seed=1,
                        steps=4, guidance=7.5, scheduler="ddim")
        result = page.generate(**settings)
        got = np.array(result["rgba"], np.uint8).reshape(result["height"], result["width"], 4)[..., :3]
        native = Pipeline(Model.from_dir(str(DEFAULT_MODEL)), OnnxRuntime())
        assert np.abs(got.astype(int) - cpython_pixels(native, settings)).max() <= TOLERANCE["wasm"]
        assert page.page.locator("#starters button").count() > 0
        assert page.errors == [] and page.origins == {srv.url}
    finally:
        context.close()
        srv.stop()
