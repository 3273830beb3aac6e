"""Start from a picture, in Chromium on WASM with the default model (models/shapes): the sketch pad
drawn with pointer events, every kind of bad picture with its message and nothing lost, the
strength line, and the forward-process view's x_t against CPython. Screenshots at 1280×720 and
390×844 go to test-artifacts/picture-*.png."""

from __future__ import annotations

import io
import json
import math
import shutil

import numpy as np
import pytest
from PIL import Image, ImageDraw

import serve
from sdlens.forward import alphas_cumprod, predicted_noise, run_noise, squared_error, weights

from .conftest import ROOT
from .test_browser import Page, browser, server, settled  # noqa: F401  (shared fixtures)

ARTIFACTS = ROOT / "test-artifacts"
DEFAULT_MODEL = serve.ROOT / "models" / "shapes"
TIMEOUT = 120_000
BLANK = (248, 248, 248)
RED = (220, 30, 35)
PROMPT = "a big red circle in the center, white background"

pytestmark = pytest.mark.skipif(not (DEFAULT_MODEL / "manifest.json").is_file(), reason="models/shapes is not built")


@pytest.fixture(scope="module")
def models_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("picture-models")
    shutil.copytree(DEFAULT_MODEL, folder / "shapes")
    return folder


@pytest.fixture(scope="module")
def page(browser, server):  # noqa: F811
    ARTIFACTS.mkdir(exist_ok=True)
    context = browser.new_context(viewport={"width": 1280, "height": 720}, accept_downloads=True)
    page = Page(context, server, "?backend=wasm").ready()
    page.page.evaluate("document.getElementById('picture-details').open = true")
    yield page
    assert page.errors == []
    context.close()


def shot(p, selector, name):
    """The element at 1280×720 and at 390×844 (where nothing may overflow)."""
    for width, height in ((1280, 720), (390, 844)):
        p.set_viewport_size({"width": width, "height": height})
        settled(p, selector)
        p.evaluate("(s) => document.querySelector(s).scrollIntoView({block: 'start'})", selector)
        settled(p, selector)
        p.screenshot(path=str(ARTIFACTS / f"picture-{name}-{width}.png"))
        if width < 600:
            assert p.evaluate("document.documentElement.scrollWidth") <= width, f"{name} overflows at {width} px"
    p.set_viewport_size({"width": 1280, "height": 720})


def pad_pixels(p):
    data = p.evaluate("() => { const pad = window.sdlens.picture.pad; return {w: pad.width, h: pad.height, px: Array.from(pad.pixels)}; }")
    return np.array(data["px"], np.uint8).reshape(data["h"], data["w"], 4)


def stroke_pixels(a, b, size, width, height):
    """The sketch pad's brush rule (web/picture/sketch.js strokePixels), written again here."""
    painted = set()
    n = max(1, math.ceil(math.hypot(b[0] - a[0], b[1] - a[1]) / 0.25))
    r = size / 2
    reach = math.ceil(r)
    for i in range(n + 1):
        x = a[0] + (b[0] - a[0]) * i / n
        y = a[1] + (b[1] - a[1]) * i / n
        cx, cy = math.floor(x), math.floor(y)
        for py in range(cy - reach, cy + reach + 1):
            for px in range(cx - reach, cx + reach + 1):
                if 0 <= px < width and 0 <= py < height and (
                        (px, py) == (cx, cy) or (px + 0.5 - x) ** 2 + (py + 0.5 - y) ** 2 <= r * r):
                    painted.add((px, py))
    return painted


def png_bytes(image, **save):
    out = io.BytesIO()
    image.save(out, **save)
    return out.getvalue()


def choose_file(p, name, data, mime):
    before = p.evaluate("document.getElementById('picture-note').textContent + '|' + document.getElementById('init_image-message').textContent")
    p.set_input_files("#picture-file", files=[{"name": name, "mimeType": mime, "buffer": data}])
    p.wait_for_function("""(before) => document.getElementById('picture-note').textContent + '|' +
        document.getElementById('init_image-message').textContent !== before""", arg=before, timeout=60_000)
    return p.text_content("#init_image-message"), p.text_content("#picture-note")


# ---------------------------------------------------------------------------------------------


def test_strength_line_follows_diffusers_rule(page):
    p = page.page
    p.fill("#steps", "25")
    p.evaluate("() => { const s = document.getElementById('strength'); s.value = '0.6'; s.dispatchEvent(new Event('input')); }")
    assert p.text_content("#strength-line") == "strength 0.6 → the last 15 of 25 steps run"
    for steps, strength in ((25, 0.3), (10, 0.55), (7, 0.5), (50, 1.0), (3, 0.05)):
        p.fill("#steps", str(steps))
        p.evaluate("(v) => { const s = document.getElementById('strength'); s.value = v; s.dispatchEvent(new Event('input')); }",
                   str(strength))
        line = p.text_content("#strength-line")
        run = min(int(steps * strength), steps)  # diffusers' get_timesteps
        if run == 0:
            assert "runs no step" in line, line
        elif run == steps:
            assert line.startswith(f"strength {strength:g} → all {steps} steps run"), line
        else:
            assert line == f"strength {strength:g} → the last {run} of {steps} steps run", line
    p.fill("#steps", "25")


def test_sketch_pad_draws_what_the_pointer_traces(page):
    p = page.page
    p.click("#sketch-clear")
    p.click('.swatch[data-colour="red"]')
    p.click('.brush-size[data-size="3"]')
    box = p.locator("#sketch-pad").bounding_box()
    scale = box["width"] / 64

    def at(x, y):  # the centre of the model's pixel (x, y), on screen
        return box["x"] + (x + 0.5) * scale, box["y"] + (y + 0.5) * scale

    p.mouse.move(*at(10, 20))
    p.mouse.down()
    p.mouse.move(*at(40, 20), steps=1)
    p.mouse.move(*at(40, 45), steps=1)
    p.mouse.up()
    # A pen (as a synthetic pointer event) draws a dot with the 1-pixel brush
    p.click('.brush-size[data-size="1"]')
    box = p.locator("#sketch-pad").bounding_box()  # (a click may have scrolled the page)
    p.evaluate("""([x, y]) => { const c = document.getElementById('sketch-pad');
        const o = {clientX: x, clientY: y, pointerId: 7, pointerType: 'pen', isPrimary: true, bubbles: true, button: 0};
        c.dispatchEvent(new PointerEvent('pointerdown', o)); c.dispatchEvent(new PointerEvent('pointerup', o)); }""",
               list(at(5, 60)))
    expected = np.full((64, 64, 4), 255, np.uint8)
    expected[..., :3] = BLANK
    a, b, c = (10.5, 20.5), (40.5, 20.5), (40.5, 45.5)
    for x, y in stroke_pixels(a, a, 3, 64, 64) | stroke_pixels(a, b, 3, 64, 64) | stroke_pixels(b, c, 3, 64, 64):
        expected[y, x, :3] = RED
    expected[60, 5, :3] = RED
    got = pad_pixels(p)
    assert np.array_equal(got, expected), np.argwhere((got != expected).any(-1))[:10]
    # Drawing switches "start from the picture" on; undo takes the dot off, then the stroke.
    assert p.is_checked("#picture-on")
    p.click("#sketch-undo")
    assert pad_pixels(p)[60, 5, :3].tolist() == list(BLANK)
    p.click('.swatch[data-colour="beige"]')
    p.click("#sketch-fill")
    assert (pad_pixels(p)[..., :3] == (235, 222, 190)).all()
    p.click("#sketch-undo")
    p.click("#sketch-undo")
    assert (pad_pixels(p)[..., :3] == BLANK).all()
    p.click('.swatch[data-colour="red"]')


def bad_and_odd_pictures():
    """(name, bytes, mime, expected message or None, expected note) for each kind of input."""
    red_blue = Image.new("RGB", (640, 480), (30, 60, 215))
    ImageDraw.Draw(red_blue).rectangle([0, 0, 159, 479], fill=RED)
    transparent = Image.new("RGBA", (64, 64), (0, 0, 0, 0))
    ImageDraw.Draw(transparent).ellipse([16, 16, 47, 47], fill=(*RED, 255))
    good = png_bytes(red_blue, format="PNG")
    broken = bytearray(good)
    broken[60:200] = bytes(140)  # the pixel data damaged, the header intact
    big = Image.new("L", (8000, 8000), 200)
    ImageDraw.Draw(big).ellipse([2000, 2000, 6000, 6000], fill=30)
    return [
        ("notes.txt", b"this is not a picture\n", "image/png", "is not a picture this page can read", None),
        ("empty.png", b"", "image/png", "is empty (0 bytes)", None),
        ("broken.png", bytes(broken[:400]), "image/png", "could not be decoded: it may be damaged or cut short", None),
        ("wide.png", good, "image/png", None, "640×480 → centre-cropped and resized to 64×64."),
        ("huge.png", png_bytes(big, format="PNG"), "image/png", None, "8000×8000 → resized to 64×64."),
        ("clear.png", png_bytes(transparent, format="PNG"), "image/png", None,
         "64×64, the model's size: used as it is. Its transparent parts were put on white."),
        ("grey.jpg", png_bytes(Image.new("L", (64, 64), 90), format="JPEG", quality=95), "image/jpeg", None,
         "64×64, the model's size: used as it is."),
        ("cmyk.jpg", png_bytes(Image.new("CMYK", (128, 64), (0, 200, 200, 0)), format="JPEG", quality=95), "image/jpeg",
         None, "128×64 → centre-cropped and resized to 64×64."),
    ]


def test_each_picture_gets_its_message_and_nothing_is_lost(page):
    p = page.page
    p.fill("#prompt", PROMPT)
    p.set_checked("#picture-on", False)
    page.page.evaluate("(s) => window.sdlens.explain(s)", {"prompt": PROMPT, "steps": 4, "seed": 3})
    p.click("#sketch-clear")
    p.click('.brush-size[data-size="9"]')
    box = p.locator("#sketch-pad").bounding_box()
    p.mouse.click(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    kept = pad_pixels(p)
    run_before = p.evaluate("window.sdlens.store.main.final.rgba.slice(0, 64).join(',')")
    for name, data, mime, message, note in bad_and_odd_pictures():
        error, said = choose_file(p, name, data, mime)
        if message:
            assert message in error, (name, error)
            assert np.array_equal(pad_pixels(p), kept), name  # the picture stays
        elif name == "cmyk.jpg" and error:  # a browser that cannot decode CMYK says so
            assert "CMYK JPEG" in error, error
        else:
            assert error == "", (name, error)
            assert said == note, (name, said)
            got = pad_pixels(p)
            if name == "wide.png":  # the left quarter is red; a centre crop keeps a sixth of the width red
                assert tuple(got[32, 3, :3]) == RED and tuple(got[32, 40, :3]) == (30, 60, 215), got[32, :, :3]
            if name == "clear.png":
                assert tuple(got[0, 0]) == (255, 255, 255, 255) and tuple(got[32, 32, :3]) == RED
            if name == "grey.jpg":
                assert abs(int(got[10, 10, 0]) - 90) <= 2 and got[10, 10, 0] == got[10, 10, 1] == got[10, 10, 2]
            if name == "cmyk.jpg":  # PIL's CMYK (0, 200, 200, 0) is a red; Adobe's inverted CMYK would be cyan
                r, g, b = got[32, 32, :3].tolist()
                assert r > 150 and g < 120 and b < 120, got[32, 32]
            kept = got
        assert p.input_value("#prompt") == PROMPT
        assert p.evaluate("window.sdlens.store.main.final.rgba.slice(0, 64).join(',')") == run_before
    shot(p, "#start-picture", "picker")


def check_encoded_final_image(p, shown, seed):
    """The page's x₀ is CPython's VAE encoding of the same final image, with the same seed."""
    from sdlens.cpython.runtime import OnnxRuntime
    from sdlens.img2img import check_init_image
    from sdlens.model import Model
    from sdlens.pipeline import Pipeline
    from sdlens.rng import Generator

    final = bytes(p.evaluate("Array.from(window.sdlens.store.main.final.rgba)"))
    pipeline = Pipeline(Model.from_dir(str(DEFAULT_MODEL)), OnnxRuntime())
    latent = pipeline.encode_image(check_init_image({"width": 64, "height": 64, "rgba": final}, 64, 64), Generator(seed))
    expected = np.array(pipeline.runtime.read(latent), np.float32)
    got = np.array(shown["x0"], np.float32)
    assert np.abs(got - expected).max() <= 1e-3 * float(expected.max() - expected.min())


def check_training_question(p, pipeline, shape, x_t, eps, t):
    """The view's ε is the ε that made its x_t, drawn by the VAE as CPython draws it; its ε̂ is the
    UNet's prediction from that x_t, t and the prompt, as CPython's; its loss is their mean squared
    difference."""
    shown = p.evaluate("""() => { const f = window.sdlens.debug.displayed.forward;
        return {eps: Array.from(f.eps), predicted: Array.from(f.predicted), loss: f.loss, zero: f.eps_mean_square,
                prompt: f.prompt, by: f.eps_decoded_by, picture: Array.from(f.eps_picture.rgba),
                drawn: ['forward-eps', 'forward-eps-true', 'forward-predicted'].map((id) => document.getElementById(id).width),
                text: document.getElementById('forward-loss').textContent}; }""")
    assert np.array_equal(np.array(shown["eps"], np.float32), eps)
    runtime = pipeline.runtime
    eps_hat = np.array(runtime.read(predicted_noise(pipeline, x_t.reshape(shape), t, shown["prompt"])), np.float32)
    got = np.array(shown["predicted"], np.float32)
    assert np.abs(got - eps_hat).max() <= 1e-3 * float(np.abs(eps_hat).max()), t
    assert shown["loss"] == pytest.approx(float(np.mean((got - eps) ** 2)), rel=1e-4)
    assert shown["loss"] == pytest.approx(squared_error(eps_hat.tolist(), eps.tolist()), rel=1e-3)
    assert shown["zero"] == pytest.approx(float(np.mean(eps.astype(np.float64) ** 2)), rel=1e-5)
    assert shown["by"] == "vae" and shown["drawn"] == [64, 64, 64]
    picture = np.frombuffer(bytes(runtime.to_rgb8(pipeline.decode(eps.reshape(shape)))), np.uint8).reshape(64, 64, 3)
    page_rgb = np.array(shown["picture"], np.int16).reshape(64, 64, 4)[..., :3]
    assert np.abs(page_rgb - picture).max() <= 2
    assert f"{shown['loss']:.3f}" in shown["text"] and f"{shown['zero']:.3f}" in shown["text"]


def test_forward_view_equals_cpython(page):
    from sdlens.cpython.runtime import OnnxRuntime
    from sdlens.model import Model
    from sdlens.pipeline import Pipeline

    p = page.page
    pipeline = Pipeline(Model.from_dir(str(DEFAULT_MODEL)), OnnxRuntime())
    p.set_checked("#picture-on", False)
    settings = {"prompt": PROMPT, "steps": 6, "seed": 11}
    p.evaluate("(s) => window.sdlens.explain(s)", settings)
    p.locator("#forward-section").scroll_into_view_if_needed()  # it computes when looked at
    p.wait_for_function("['encoded', 'final_latent'].includes(window.sdlens.debug.displayed.forward?.source)", timeout=TIMEOUT)
    source = p.evaluate("window.sdlens.debug.displayed.forward.source")
    # With a VAE encoder (the default model has one, once the img2img pipeline is in), x₀ is the
    # final image encoded back, and ε the seed's second draw, as a run from that picture would draw.
    assert source == ("encoded" if (ROOT / "py" / "sdlens" / "img2img.py").is_file() else "final_latent")
    for t in (0, 321, 999):
        p.evaluate("""(t) => { const s = document.getElementById('forward-t'); s.value = String(t);
            s.dispatchEvent(new Event('input')); }""", t)
        p.wait_for_function("(t) => window.sdlens.debug.displayed.forward.t === t", arg=t, timeout=TIMEOUT)
        shown = p.evaluate("""() => { const f = window.sdlens.debug.displayed.forward;
            return {t: f.t, weights: f.weights, shape: f.shape, latent: Array.from(f.latent), x0: Array.from(f.x0),
                    final: Array.from(window.sdlens.store.main.latents)}; }""")
        if source == "final_latent":
            assert shown["x0"] == shown["final"]  # x₀ is the run's own final latent
        elif t == 0:
            check_encoded_final_image(p, shown, settings["seed"])
        manifest = json.loads((DEFAULT_MODEL / "manifest.json").read_text())
        alphas = alphas_cumprod(manifest["scheduler_config"])
        signal, noise = weights(alphas, t)
        assert shown["weights"] == pytest.approx([signal, noise], abs=1e-7)
        x0 = np.array(shown["x0"], np.float32)
        eps = np.array(run_noise(settings["seed"], shown["shape"], from_picture=source == "encoded"), np.float32)
        expected = np.float32(signal) * x0 + np.float32(noise) * eps
        got = np.array(shown["latent"], np.float32)
        span = float(expected.max() - expected.min())
        assert np.abs(got - expected).max() <= 1e-3 * span, (t, np.abs(got - expected).max(), span)
        check_training_question(p, pipeline, shown["shape"], got, eps, t)
    assert p.text_content("#forward-formula").startswith("x_999 = ")
    p.evaluate("""() => { const s = document.getElementById('forward-t'); s.value = '500'; s.dispatchEvent(new Event('input')); }""")
    p.wait_for_function("window.sdlens.debug.displayed.forward.t === 500", timeout=TIMEOUT)
    shot(p, "#forward-section", "forward")


# ---------------------------------------------------------------------------------------------
# A run from a picture (needs the img2img pipeline: sdlens.img2img)

needs_img2img = pytest.mark.skipif(not (ROOT / "py" / "sdlens" / "img2img.py").is_file(), reason="no img2img pipeline yet")


@pytest.fixture(scope="module")
def cpython():
    from sdlens.cpython.runtime import OnnxRuntime
    from sdlens.model import Model
    from sdlens.pipeline import Pipeline

    return Pipeline(Model.from_dir(str(DEFAULT_MODEL)), OnnxRuntime())


def draw_rough_circle(p, centre=(32, 32), radius=17, jitter=2.5):
    """A class's rough red circle: one wobbly stroke around, with the 5-pixel brush."""
    p.click("#sketch-clear")
    p.click('.swatch[data-colour="red"]')
    p.click('.brush-size[data-size="5"]')
    box = p.locator("#sketch-pad").bounding_box()
    scale = box["width"] / 64
    rng = np.random.default_rng(4)
    points = []
    for k in range(41):
        angle = 2 * math.pi * k / 40
        r = radius + rng.uniform(-jitter, jitter)
        points.append((box["x"] + (centre[0] + r * math.cos(angle)) * scale,
                       box["y"] + (centre[1] + r * math.sin(angle)) * scale))
    p.mouse.move(*points[0])
    p.mouse.down()
    for point in points[1:]:
        p.mouse.move(*point, steps=2)
    p.mouse.up()


@needs_img2img
def test_a_rough_red_circle_is_cleaned_up_as_the_cli_does(page, cpython):
    from sdlens.pipeline import Settings

    p = page.page
    p.fill("#prompt", PROMPT)
    p.fill("#steps", "25")
    p.fill("#seed", "42")
    p.set_checked("#explain", True)
    draw_rough_circle(p)
    assert p.is_checked("#picture-on")
    p.evaluate("() => { const s = document.getElementById('strength'); s.value = '0.7'; s.dispatchEvent(new Event('input')); }")
    assert p.text_content("#strength-line") == "strength 0.7 → the last 17 of 25 steps run"
    shot(p, "#start-picture", "sketch-pad")
    sketch = pad_pixels(p)
    p.click("#generate")
    # A run started with Generate plays once on the stage, a step every 100 ms: the steps below are
    # chosen once it has played and rests on the image (mid-play, the next tick moves the step on).
    p.wait_for_function("window.sdlens.store.main?.final && !document.getElementById('generate').disabled"
                        " && window.sdlens.debug.displayed.stage?.kind === 'final'"
                        " && !document.getElementById('tl-play').dataset.playing", timeout=TIMEOUT)
    page_image = np.array(p.evaluate("Array.from(window.sdlens.store.main.final.rgba)"), np.uint8).reshape(64, 64, 4)[..., :3]

    result = cpython.generate(Settings(prompt=PROMPT, seed=42, steps=25, guidance=7.5, scheduler="ddim",
                                       init_image={"width": 64, "height": 64, "rgba": sketch.tobytes()}, strength=0.7))
    cli = np.frombuffer(result.rgb, np.uint8).reshape(64, 64, 3)
    assert np.abs(page_image.astype(int) - cli.astype(int)).max() <= 2
    # The model cleaned it up: a filled red disc on white (the sketch was a red ring)
    assert tuple(sketch[32, 32, :3]) == BLANK
    r, g, b = page_image[32, 32].astype(int)
    assert r > 150 and g < 100 and b < 100, page_image[32, 32]
    assert (page_image[[2, 2, 61, 61], [2, 61, 2, 61]] > 200).all()

    # 8 of 25 steps skipped, greyed under the timeline; the run has 17 steps
    assert p.locator(".tl-steps span.skipped").count() == 8
    assert p.evaluate("window.sdlens.store.main.steps.length") == 17
    # No link pretends to reproduce it; Save image saves it like any run
    assert "prompt=" not in p.url
    assert p.is_visible("#link-note") and p.is_disabled("#copy-link")
    with p.expect_download() as info:
        p.click("#save-png")
    saved = np.asarray(Image.open(info.value.path()).convert("RGB"))
    assert np.array_equal(saved, page_image)
    p.evaluate("window.sdlens.store.select(8)")
    assert p.text_content("#tl-label").startswith("Step 17 of 25 (9 of the 17 that ran)")
    assert p.locator(".tl-steps span").nth(16).get_attribute("class") == "current"
    shot(p, "#timeline", "img2img-step")  # the timeline with the skipped steps, and the overview
    shot(p, "#image", "img2img-image")

    # The forward view starts at the run's x₀ (the picture's latent) and marks where the run started
    p.locator("#forward-section").scroll_into_view_if_needed()
    p.wait_for_function("window.sdlens.debug.displayed.forward?.source === 'init'", timeout=TIMEOUT)
    shown = p.evaluate("""() => { const f = window.sdlens.debug.displayed.forward, run = window.sdlens.store.main;
        return {t: f.t, t_start: f.t_start, latent: Array.from(f.latent), first: Array.from(run.steps[0].tensors.latent),
                timestep: run.steps[0].timestep}; }""")
    assert shown["t"] == shown["t_start"] == round(shown["timestep"])
    # x_t at the run's start is exactly the latent the run started from (DDIM's add_noise is this jump)
    first, got = np.array(shown["first"]), np.array(shown["latent"])
    assert np.abs(got - first).max() <= 1e-3 * float(first.max() - first.min())
    assert p.locator("#forward-start-mark").count() == 1
    shot(p, "#forward-section", "forward-img2img")


@needs_img2img
def test_generate_takes_a_data_url_or_rgba(page):
    p = page.page
    p.set_checked("#picture-on", False)
    picture = Image.new("RGB", (64, 64), BLANK)
    ImageDraw.Draw(picture).ellipse([14, 14, 49, 49], fill=RED)
    rgba = np.asarray(picture.convert("RGBA")).reshape(-1).tolist()
    settings = {"prompt": PROMPT, "steps": 6, "seed": 5, "strength": 0.5}
    from_rgba = p.evaluate("""async ([s, rgba]) => { const r = await window.sdlens.generate({...s,
        init_image: {width: 64, height: 64, rgba: Uint8Array.from(rgba)}}); return Array.from(r.rgba); }""", [settings, rgba])
    import base64
    url = "data:image/png;base64," + base64.b64encode(png_bytes(picture, format="PNG")).decode()
    from_url = p.evaluate("async ([s, url]) => Array.from((await window.sdlens.generate({...s, init_image: url})).rgba)", [settings, url])
    assert from_rgba == from_url
    message = p.evaluate("""async (s) => { try { await window.sdlens.generate({...s, init_image: 'data:text/plain,hello'}); return ''; }
        catch (e) { return e.message; } }""", settings)
    assert "init_image must be a data URL of a picture" in message


@needs_img2img
def test_a_strength_that_runs_no_step_is_named_and_nothing_is_lost(page):
    p = page.page
    before = p.evaluate("window.sdlens.store.main.final.rgba.slice(0, 64).join(',')")
    prompt = p.input_value("#prompt")
    for strength, words in ((0.01, "runs no step"), (0, "above 0 and at most 1"), (1.5, "above 0 and at most 1")):
        message = p.evaluate("""async (s) => { try { await window.sdlens.generate({steps: 25, strength: s,
            init_image: window.sdlens.picture.pad.picture()}); return ''; } catch (e) { return e.message; } }""", strength)
        assert words in message, message
        assert words in p.text_content("#strength-message")
        assert p.evaluate("window.sdlens.store.main.final.rgba.slice(0, 64).join(',')") == before
        assert p.input_value("#prompt") == prompt


def test_drop_and_paste_take_a_picture(page):
    p = page.page
    wide = png_bytes(Image.new("RGB", (96, 64), (30, 60, 215)), format="PNG")
    square = png_bytes(Image.new("RGB", (200, 200), (35, 160, 55)), format="PNG")

    def send(kind, data):
        before = p.text_content("#picture-note")
        p.evaluate("""async ([kind, bytes]) => {
            const file = new File([Uint8Array.from(bytes)], 'picture.png', {type: 'image/png'});
            const transfer = new DataTransfer();
            transfer.items.add(file);
            if (kind === 'drop') document.getElementById('start-picture').dispatchEvent(
                new DragEvent('drop', {dataTransfer: transfer, bubbles: true, cancelable: true}));
            else document.body.dispatchEvent(new ClipboardEvent('paste', {clipboardData: transfer, bubbles: true, cancelable: true}));
        }""", [kind, list(data)])
        p.wait_for_function("(b) => document.getElementById('picture-note').textContent !== b", arg=before)
        return p.text_content("#picture-note")

    assert send("drop", wide) == "96×64 → centre-cropped and resized to 64×64."
    assert tuple(pad_pixels(p)[10, 10, :3]) == (30, 60, 215)
    assert send("paste", square) == "200×200 → resized to 64×64."
    assert tuple(pad_pixels(p)[10, 10, :3]) == (35, 160, 55)
    # Text pasted into the prompt stays text
    p.fill("#prompt", PROMPT)
    p.focus("#prompt")
    # The page decides at once: a paste it takes, it keeps from the field (preventDefault) and reads.
    taken = p.evaluate("""() => { const t = new DataTransfer(); t.setData('text/plain', 'x');
        t.items.add(new File([new Uint8Array(4)], 'a.png', {type: 'image/png'}));
        const paste = new ClipboardEvent('paste', {clipboardData: t, bubbles: true, cancelable: true});
        document.getElementById('prompt').dispatchEvent(paste);
        return paste.defaultPrevented; }""")
    assert not taken
    assert p.text_content("#picture-note") == "200×200 → resized to 64×64."
    assert p.text_content("#init_image-message") == ""
