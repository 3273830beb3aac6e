"""The browser app end to end, in real headless Chromium (Playwright's Python package driving
/usr/bin/chromium): same pixels as CPython on WASM and WebGPU, Stop, bad input, a corrupted model
file, offline reloads, and no request ever leaves the server's origin."""

from __future__ import annotations

import json
import shutil
import threading
from urllib.parse import urlsplit

import numpy as np
import pytest

import serve
from sdlens.cpython.runtime import OnnxRuntime
from sdlens.model import Model
from sdlens.pipeline import Pipeline, Settings
from sdlens.schedulers import SCHEDULERS

from .conftest import embedded_default

CHROMIUM = "/usr/bin/chromium"
FLAGS = ["--no-sandbox", "--no-first-run", "--disable-background-networking", "--disable-component-update",
         "--disable-sync", "--disable-quic", "--enable-unsafe-webgpu"]
TOLERANCE = {"wasm": 2, "webgpu": 4}  # max abs pixel difference (of 255) from `sdlens generate`
ARTIFACTS = serve.ROOT / "test-artifacts"

pytestmark = pytest.mark.skipif(not shutil.which(CHROMIUM), reason="needs Debian's chromium (scripts/install)")


class Server:
    def __init__(self, models_dir, **options):
        """serve.py on `models_dir`; `options` go to make_server (hub_endpoint, say)."""
        self.httpd = serve.make_server("127.0.0.1", 0, models_dir, quiet=True, **options)
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
        self.viewport = self.page.viewport_size  # the context's, which restore() puts back
        self.errors, self.origins = [], set()
        self.page.on("console", lambda m: m.type == "error" and self.errors.append(m.text))
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        self.page.on("request", lambda r: self.origins.add(_origin(r.url)))
        context.on("request", lambda r: self.origins.add(_origin(r.url)))  # the worker's and SW's too
        self.page.goto(f"{server.url}/{query}")

    def ready(self, unfold=True):
        """Wait for the page; with `unfold`, open what the stage folds away (More settings, the
        starter menu, the views under the stage), as a teacher who looked at everything would, so
        that tests reach every field. tests/test_stage.py checks the folded page itself."""
        self.page.evaluate("window.sdlens.ready")
        if unfold:
            self.page.evaluate("document.querySelectorAll('#more-settings, #starter-menu, details.fold').forEach((d) => (d.open = true))")
        return self

    def settled(self, selector):
        settled(self.page, selector)

    def restore(self):
        """What a test may leave behind on a shared page, failed or not, put back for the next one:
        an open guided tour (closing it gives back the learner's page) and a changed viewport."""
        self.page.evaluate("""async () => { const card = document.getElementById('tour-card');
            if (card && !card.hidden) await window.sdlens.debug.tour.end(); }""")
        if self.viewport and self.page.viewport_size != self.viewport:
            self.page.set_viewport_size(self.viewport)

    def generate(self, **settings):
        return self.page.evaluate(
            """async (s) => { const r = await window.sdlens.generate(s);
                return {...r, rgba: Array.from(r.rgba)}; }""", settings)


def settled(p, selector):
    """Wait until the element has stopped moving: the same box for a few frames, no finite
    animation running (the page's own test of it, web/explainer/settled.js)."""
    p.evaluate("""async (s) => { const { settled } = await import('./explainer/settled.js');
        await settled(document.querySelector(s)); }""", selector)


def _origin(url):
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}" if parts.scheme in ("http", "https", "ws", "wss") else parts.scheme


@pytest.fixture(scope="module")
def models_dir(tiny_model_dir, tiny_pipeline_dir, tmp_path_factory):
    """The tiny model, and the same weights exported as graphs + external data files."""
    from export.convert import convert

    folder = tmp_path_factory.mktemp("browser-models")
    shutil.copytree(tiny_model_dir, folder / "tiny-random")
    # 1 MiB files: every graph but the VAE's is a graph file plus several external-data files.
    convert(str(tiny_pipeline_dir), folder / "tiny-split", ["fp32"], quiet=True, max_file_bytes=1 << 20)
    return folder


@pytest.fixture(scope="module")
def served():
    """serve.py on the repo's own models/, as `python serve.py` serves a fresh clone."""
    srv = Server(serve.ROOT / "models")
    yield srv
    srv.stop()


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
        expected_label = "WASM: chosen by you" if backend == "wasm" else "WebGPU fp32 (software)"
        guided = backend == "wasm"
        runs = [dict(scheduler=scheduler, guidance=guidance, steps=3) for scheduler in ("ddim", "euler_a")
                for guidance in (1.0, 7.5) if guided or (scheduler == "ddim") == (guidance > 1)]
        # every other scheduler once, and Karras sigmas on a multistep solver. Software WebGPU is
        # ~100x slower than WASM here, so it gets the fewest UNet calls that still exercise each
        # scheduler's history (2 steps). PNDM's Runge-Kutta warm-up on this config needs 4 steps, 13
        # UNet calls: it runs on WASM only; its update is the same combine graph the others use on WebGPU.
        for name in SCHEDULERS:
            if name not in ("ddim", "euler_a") and (guided or name != "pndm"):
                steps = 4 if guided else 2
                runs.append(dict(scheduler=name, guidance=7.5 if guided else 1.0, steps=steps,
                                 negative="blurry" if guided else ""))
        runs.append(dict(scheduler="dpmpp_2m", guidance=7.5 if guided else 1.0, steps=4 if guided else 2, karras=True))
        if guided:
            runs.append(dict(scheduler="unipc", guidance=7.5, steps=4, karras=True))
        for run in runs:
            settings = {"prompt": "a red circle on the left", "negative": "", "seed": 7, **run}
            result = page.generate(**settings)
            assert result["backend"] == expected_label
            assert result["settings"]["karras"] is bool(run.get("karras"))
            got = np.array(result["rgba"], np.uint8).reshape(result["height"], result["width"], 4)[..., :3]
            diff = np.abs(got.astype(int) - cpython_pixels(cpython, settings)).max()
            assert diff <= TOLERANCE[backend], (run, diff)
        ARTIFACTS.mkdir(exist_ok=True)
        page.page.locator("header").screenshot(path=str(ARTIFACTS / f"badge-{backend}.png"))
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
    # Step 2 or any later one: a poll can miss a step's line when steps are quick.
    p.wait_for_function("Number((/^Step (\\d+) /.exec(document.getElementById('progress-text').textContent) || [])[1]) >= 2",
                        timeout=60_000)
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


STEPS_RULE = "steps must be a whole number from 1 to 1000"
SEED_RULE = "seed must be a whole number, 0 or more"
GUIDANCE_RULE = "guidance must be a number, 0 or more (7.5 is usual)"
# What a message may never show: Python's repr and special values, torch's 20-digit seed limit,
# class names.
INTERNALS = ("nan", "''", '""', "18446744073709551615", "None", "got ", "Error", "Scheduler", "Handle", "undefined")


@pytest.mark.parametrize("field, value, message", [
    ("steps", 0, f"{STEPS_RULE}, not “0”"),
    ("steps", 5000, f"{STEPS_RULE}, not “5000”"),
    ("steps", "abc", f"{STEPS_RULE}, not “abc”"),
    ("steps", "", f"{STEPS_RULE}, but it is empty"),
    ("steps", "2.5", f"{STEPS_RULE}, not “2.5”"),
    ("steps", "-3", f"{STEPS_RULE}, not “-3”"),
    ("seed", "abc", f"{SEED_RULE}, not “abc”"),
    ("seed", "", f"{SEED_RULE}, but it is empty"),
    ("seed", "-1", f"{SEED_RULE}, not “-1”"),
    ("seed", "4.5", f"{SEED_RULE}, not “4.5”"),
    ("seed", str(2**64), f"{SEED_RULE}, and this one is too large"),
    ("guidance", "abc", f"{GUIDANCE_RULE}, not “abc”"),
    ("guidance", "", f"{GUIDANCE_RULE}, but it is empty"),
    ("guidance", "-5", f"{GUIDANCE_RULE}, not “-5”"),
    ("guidance", "Infinity", f"{GUIDANCE_RULE}, not “Infinity”"),
    ("scheduler", "dpm++", "unknown scheduler “dpm++”; choose one of: "),
    ("karras", {"karras": True, "scheduler": "ddim"}, "karras sigmas are not available for DDIM"),
])
def test_bad_input_shows_a_message_by_the_field(wasm_page, field, value, message):
    p = wasm_page.page
    request = value if isinstance(value, dict) else {field: value}
    error = p.evaluate("(s) => window.sdlens.generate(s).then(() => null, (e) => e.message)", request)
    shown = p.locator(f"#{field}-message").text_content()
    assert error.startswith(message) and shown.startswith(message)
    assert "error" in p.locator(f"#{field}-message").get_attribute("class")
    assert not any(bad in shown for bad in INTERNALS), shown
    # Nothing is lost: the page still works.
    assert len(wasm_page.generate(prompt="ok", steps=1)["timings"]["step_ms"]) == 1


def test_a_corrected_value_clears_its_message_at_once(wasm_page):
    """Seed −1 corrected to 42: its message and the box by the form go as it is typed (29)."""
    p = wasm_page.page
    try:
        p.locator("#seed").fill("-1")
        p.evaluate("window.sdlens.generate({}).catch(() => null)")
        assert "error" in p.locator("#seed-message").get_attribute("class") and not p.locator("#error").is_hidden()
        p.locator("#seed").fill("42")
        p.wait_for_function("document.getElementById('seed-message').textContent === '' && document.getElementById('error').hidden")
        assert "error" not in p.locator("#seed-message").get_attribute("class")
    finally:
        p.locator("#seed").fill("42")


@pytest.mark.parametrize("typed, kind, words", [
    ("-5", "error", f"{GUIDANCE_RULE}, not “-5”"),
    ("abc", "error", f"{GUIDANCE_RULE}, not “abc”"),  # a type=number box reads "abc" as empty
    ("0.5", "warning", "g ≤ 1 switches guidance off"),
    ("7.5", "", ""),
])
def test_guidance_box_says_error_or_advice_as_typed(wasm_page, typed, kind, words):
    """An invalid value gets the error, never the g ≤ 1 advice as if it would run."""
    p = wasm_page.page
    p.locator("#guidance").fill("")
    p.locator("#guidance").press_sequentially(typed)
    message = p.locator("#guidance-message")
    text = message.text_content()
    if typed == "abc":
        assert text == f"{GUIDANCE_RULE}, but it is empty"
    else:
        assert text.startswith(words) and (words or text == "")
    assert ("g ≤ 1" in text) == (kind == "warning")
    assert (kind or "field-message") in message.get_attribute("class").split()
    assert not any(bad in text for bad in INTERNALS), text
    p.locator("#guidance").fill("7.5")


def test_scheduler_menu_karras_and_lcm_advice(wasm_page):
    p = wasm_page.page
    # the menu lists every scheduler by the name users know, from the Python classes
    options = p.eval_on_selector_all("#scheduler option", "os => os.map(o => [o.value, o.textContent])")
    assert options == [[name, cls.label] for name, cls in SCHEDULERS.items()]
    assert ("dpmpp_2m", "DPM++ 2M") in [tuple(o) for o in options]
    # Karras applies where diffusers has it; a script asking for it elsewhere gets the field's message
    p.select_option("#scheduler", "ddim")
    assert p.is_disabled("#karras")
    p.select_option("#scheduler", "dpmpp_2m")
    assert p.is_enabled("#karras")
    message = p.evaluate("window.sdlens.generate({prompt: 'x', steps: 2, scheduler: 'ddim', karras: true})"
                         ".then(() => 'ran', (e) => e.message)")
    assert message.startswith("karras sigmas are not available for DDIM")
    assert "not available for DDIM" in p.text_content("#karras-message")
    # an id in other capitalisation runs and shows the right entry instead of a blank menu
    result = wasm_page.generate(prompt="x", steps=2, scheduler="DPMPP_2M", karras=True)
    assert result["settings"]["scheduler"] == "dpmpp_2m" and result["scheduler_name"] == "DPM++ 2M Karras"
    assert p.input_value("#scheduler") == "dpmpp_2m" and p.is_checked("#karras")
    # Heun: two UNet calls per step but the last, each reported
    result = wasm_page.generate(prompt="x", steps=3, scheduler="heun", karras=False)
    assert result["unet_calls"] == 5 and len(result["timings"]["step_ms"]) == 5
    # LCM runs on a model that is not an LCM model, and says what it is meant for
    result = wasm_page.generate(prompt="x", steps=2, scheduler="lcm")
    assert "meant for latent-consistency" in result["warning"]
    assert "meant for latent-consistency" in p.text_content("#scheduler-message")
    message = p.evaluate("window.sdlens.generate({prompt: 'x', steps: 51, scheduler: 'lcm'})"
                         ".then(() => 'ran', (e) => e.message)")
    assert message.startswith("LCM allows at most 50 steps") and "LCM allows" in p.text_content("#steps-message")
    assert wasm_page.errors == []


def test_long_prompt_names_dropped_words(wasm_page):
    prompt = " ".join(f"word{i}" for i in range(90))
    wasm_page.generate(prompt=prompt, steps=1)
    text = wasm_page.page.locator("#prompt-message").text_content()
    # One line with a count and where the cut starts, not all 62 words.
    assert text == "The prompt is longer than 77 tokens: the last 62 words are dropped (from “word28 word29 word30 word31 …”)."


def test_model_picker_and_external_data(wasm_page, models_dir, cpython):
    manifest = json.loads((models_dir / "tiny-split" / "manifest.json").read_text())
    assert len(manifest["components"]["unet"]["variants"]["fp32"]["files"]) > 2  # graph + several data files
    p = wasm_page.page
    assert p.locator("#model > option").all_text_contents() == ["tiny-random", "tiny-split"]
    assert p.locator("#model optgroup option").all_text_contents() == ["Open a model from the Hub…"]  # (none opened yet)
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


def test_backend_choice_never_takes_the_software_adapter(context, server):
    """This headless Chromium has only SwiftShader's WebGPU (a fallback adapter, no shader-f16):
    the automatic choice is WASM, and the badge says why. (The other rules: tests/web/.)"""
    page = Page(context, server).ready()  # no ?backend: the automatic choice
    probe = page.page.evaluate("import('/runtime/backend.js').then((m) => m.probeWebGPU())")
    assert probe["available"] and probe["fallback"] and not probe["f16"]
    backend = page.page.evaluate("window.sdlens.backend")
    assert backend["ep"] == "wasm" and backend["variant"] == "fp32"
    badge = page.page.locator("#backend-badge")
    assert badge.text_content() == "WASM: the WebGPU adapter (google swiftshader) is software, slower than WASM"
    # Cross-origin isolated (serve.py sends COOP/COEP): one onnxruntime thread per core.
    cores = page.page.evaluate("navigator.hardwareConcurrency")
    assert backend["threads"] == cores and f"{cores} thread" in badge.get_attribute("title")
    ARTIFACTS.mkdir(exist_ok=True)
    for width in (1280, 390):
        page.page.set_viewport_size({"width": width, "height": 900})
        page.page.screenshot(path=str(ARTIFACTS / f"badge-auto-{width}.png"))
    # The fp16 self-check passes where fp16 is computed right (WASM) and fails on this adapter
    # (no shader-f16), so fp16 would never be trusted here.
    results = page.page.evaluate("""async () => {
        const ort = await import('/vendor/ort/ort.webgpu.min.mjs');
        ort.env.wasm.wasmPaths = '/vendor/ort/';
        const { runF16SelfCheck } = await import('/runtime/selfcheck.js');
        return [await runF16SelfCheck(ort, 'wasm'), await runF16SelfCheck(ort, 'webgpu')];
    }""")
    wasm, webgpu = results
    assert wasm["ok"] and wasm["maxError"] < 2e-3, wasm
    assert not webgpu["ok"] and "f16" in webgpu["reason"], webgpu


DEFAULT_MODEL = embedded_default()


@pytest.mark.skipif(not (DEFAULT_MODEL / "manifest.json").is_file(), reason="the embedded models are not built")
def test_the_embedded_default_model_runs_in_the_browser(browser):
    """What `python serve.py` serves on a fresh clone: the committed default model, preselected."""
    srv = Server(serve.ROOT / "models")
    context = browser.new_context()
    try:
        page = Page(context, srv, "?backend=wasm").ready()
        assert page.page.locator("#model").input_value() == "objects"
        settings = dict(prompt="a big cat on the left, light blue background", negative="", seed=1,
                        steps=4, guidance=7.5, scheduler="ddim")
        result = page.generate(**settings)
        got = np.array(result["rgba"], np.uint8).reshape(result["height"], result["width"], 4)[..., :3]
        native = Pipeline(Model.from_dir(str(DEFAULT_MODEL)), OnnxRuntime())
        assert np.abs(got.astype(int) - cpython_pixels(native, settings)).max() <= TOLERANCE["wasm"]
        # The step strip shows x̂0 through the VAE: its last picture is the final image, nearly
        # (DDIM's last step still adds sqrt(1 - ᾱ) ≈ 3 % of ε). Measured: mean |difference| per
        # channel, of 255, on the canvas as drawn.
        last = page.page.evaluate("""() => { const c = [...document.querySelectorAll('#previews canvas')].pop();
            return Array.from(c.getContext('2d').getImageData(0, 0, c.width, c.height).data); }""")
        strip = np.array(last, np.uint8).reshape(got.shape[0], got.shape[1], 4)[..., :3].astype(int)
        mad = np.abs(strip - got.astype(int)).mean(axis=(0, 1))
        print(f"last strip picture vs final image, mean |difference| per channel (of 255): {mad.round(2).tolist()}")
        assert (mad <= 1.0).all(), mad
        assert "decoded by the VAE" in page.page.locator("#previews-note").text_content()
        assert page.page.locator("#starters button").count() > 0
        assert page.errors == [] and page.origins == {srv.url}
    finally:
        context.close()
        srv.stop()


# ---- starting from a picture (img2img) ------------------------------------------------------


def _picture_rgba(size):
    """A test picture at the model's size: a gradient with a red disc, and a half-transparent corner."""
    y, x = np.mgrid[0:size, 0:size]
    disc = (x - size / 3) ** 2 + (y - size / 2) ** 2 < (size / 4) ** 2
    rgba = np.stack([np.where(disc, 220, x * 255 // size), np.where(disc, 30, y * 255 // size),
                     np.full_like(x, 160), np.where((x < 8) & (y < 8), 100, 255)], -1).astype(np.uint8)
    return rgba.tobytes()


def test_img2img_equals_cpython(wasm_page, cpython):
    """window.sdlens.generate({init_image: {width, height, rgba}, strength}) draws the CLI's pixels,
    reports where it started, and window.sdlens.encode gives the latent the run started from."""
    size = cpython.model.defaults["width"]
    rgba = _picture_rgba(size)
    for run in (dict(scheduler="dpmpp_2m", strength=0.6, guidance=7.5, steps=5),
                dict(scheduler="heun", strength=0.5, guidance=1.0, steps=4)):
        settings = {"prompt": "a red circle on the left", "negative": "", "seed": 11, **run}
        result = wasm_page.page.evaluate(
            """async ([s, rgba, size]) => {
                 const steps = [];
                 const listen = (e) => steps.push(e.detail);
                 window.addEventListener("sdlens:step", listen);
                 const init_image = {width: size, height: size, rgba: new Uint8Array(rgba)};
                 const r = await window.sdlens.generate({...s, init_image});
                 window.removeEventListener("sdlens:step", listen);
                 const encoded = await window.sdlens.encode(init_image, s.seed);
                 return {...r, rgba: Array.from(r.rgba), init_latent: Array.from(r.start.init_latent),
                         encoded: Array.from(encoded.latent),
                         reports: steps.map((e) => [e.index, e.schedule_index, e.step, e.start_step])};
               }""", [settings, list(rgba), size])
        ours = cpython.generate(Settings(**settings, init_image={"width": size, "height": size, "rgba": rgba}))
        expected = np.frombuffer(ours.rgb, np.uint8).reshape(size, size, 3).astype(int)
        got = np.array(result["rgba"], np.uint8).reshape(size, size, 4)[..., :3].astype(int)
        assert np.abs(got - expected).max() <= TOLERANCE["wasm"], run
        start = result["start"]
        assert (start["start_step"], start["start_index"], start["steps_run"], start["transparent_pixels"]) == (
            ours.start.start_step, ours.start.start_index, ours.start.steps_run, 64)
        assert start["t_start"] == ours.start.t_start and start["strength"] == run["strength"]
        init = np.asarray(ours.start.init_latent).ravel()
        assert np.abs(np.array(result["init_latent"]) - init).max() <= 1e-4 * np.abs(init).max()
        assert np.abs(np.array(result["encoded"]) - init).max() <= 1e-4 * np.abs(init).max()
        reports = result["reports"]
        assert len(reports) == ours.unet_calls and [r[0] for r in reports] == list(range(len(reports)))
        assert reports[0][1:] == [start["start_index"], start["start_step"], start["start_step"]]
        assert reports[-1][2] == run["steps"] - 1
    assert wasm_page.errors == []


def test_unknown_setting_is_rejected_and_nothing_is_lost(wasm_page):
    p = wasm_page.page
    before = p.evaluate("document.getElementById('image').toDataURL()")
    prompt = p.input_value("#prompt")
    for call in ("generate", "explain"):
        message = p.evaluate(f"""() => window.sdlens.{call}({{prompt: "a cat", strenght: 0.5}})
                                 .then(() => "ran", (err) => err.message)""")
        assert message == "unknown setting 'strenght' (did you mean 'strength'?)"
    # (init_image: null: not the picture panel's, which the img2img test before this one switched on)
    message = p.evaluate("""() => window.sdlens.generate({prompt: "a cat", strength: 0.5, init_image: null})
                             .then(() => "ran", (err) => err.message)""")
    assert message.startswith("strength needs a picture")
    message = p.evaluate("""() => window.sdlens.generate({prompt: "a cat", strength: 0.01, steps: 10,
                                 init_image: {width: 64, height: 64, rgba: new Uint8Array(64 * 64 * 4)}})
                             .then(() => "ran", (err) => err.message)""")
    assert "runs no step of 10" in message
    assert p.evaluate("document.getElementById('image').toDataURL()") == before
    assert p.input_value("#prompt") == prompt  # a refused run does not touch the form


def test_link_runs_what_it_understands_and_names_the_rest(wasm_page):
    ignored = wasm_page.page.evaluate(
        """async () => (await import("./explainer/links.js"))
             .readLink("?prompt=a+cat&steps=3&utm_source=news&backend=wasm&fbclid=x").ignored""")
    assert ignored == ["utm_source", "fbclid"]
