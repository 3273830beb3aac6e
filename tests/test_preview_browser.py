"""A model with a preview decoder (TAESD), in Chromium on WASM, as a full-size model uses it: the
browser downloads it, every step's picture and the explainer's x̂₀ views come from it (at its
smaller size, the latent averaged down as the manifest says), and they equal CPython's; the final
image still comes from the real VAE."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest

from sdlens.browser.preview import StepPreview
from sdlens.cpython.runtime import OnnxRuntime
from sdlens.model import Model
from sdlens.pipeline import Pipeline, Settings

from .conftest import ROOT, TAESD_POOL as POOL
# `server` serves this module's `models_dir`
from .test_browser import TOLERANCE, Page, browser, cpython_pixels, server  # noqa: F401  (shared fixtures)

ARTIFACTS = ROOT / "test-artifacts"
SETTINGS = dict(prompt="a red circle on the left", negative="", seed=3, steps=3, guidance=7.5, scheduler="ddim")
STEPS_JS = """async (s) => {
    const seen = [];
    const listener = ({ detail }) => seen.push({ width: detail.preview.width, height: detail.preview.height,
        source: detail.preview.source, rgba: Array.from(detail.preview.rgba) });
    window.addEventListener('sdlens:step', listener);
    const r = await window.sdlens.explain(s);
    window.removeEventListener('sdlens:step', listener);
    return { steps: seen, final: { width: r.width, height: r.height, rgba: Array.from(r.rgba) } };
}"""


@pytest.fixture(scope="module")
def models_dir(taesd_models_dir):
    return taesd_models_dir


@pytest.fixture(scope="module")
def taesd_page(browser, server):  # noqa: F811
    """One page for this module's browser tests, on WASM with int8 (as a full-size model runs there;
    a model this small would get fp32): the model loads once. Yields (page, the URLs it fetched)."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    fetched = []
    context.on("request", lambda r: fetched.append(r.url))
    page = Page(context, server, "?backend=wasm&variant=int8").ready()
    yield page, fetched
    context.close()


def rgb(picture) -> np.ndarray:
    return np.array(picture["rgba"], np.uint8).reshape(picture["height"], picture["width"], 4)[..., :3].astype(int)


def test_steps_and_x0_views_come_from_the_preview_decoder(taesd_page, server, models_dir):  # noqa: F811
    model_dir = models_dir / "tiny-taesd"
    manifest = json.loads((model_dir / "manifest.json").read_text())
    assert manifest["components"]["preview_decoder"]["preview_pool"] == POOL
    page, fetched = taesd_page
    # int8, as WASM takes at full size (a model this small gets fp32); WASM's preview decoder is int8 too
    assert page.page.evaluate("window.sdlens.backend")["variant"] == "int8"
    assert any(u.endswith("preview_decoder/model_int8.onnx") for u in fetched), fetched
    assert not any("preview_decoder/model_fp32" in u for u in fetched)
    seen = page.page.evaluate(STEPS_JS, SETTINGS)

    # CPython: the same run, every step's x̂₀ through the same decoder.
    pipeline = Pipeline(Model.from_dir(str(model_dir), variant="int8"), OnnxRuntime())
    preview = StepPreview(pipeline, "int8", "wasm")
    expected = []
    pipeline.generate(Settings(**SETTINGS), on_step=lambda t: expected.append(
        np.frombuffer(preview.rgb(t.pred_original), np.uint8).reshape(preview.height, preview.width, 3)))
    assert (preview.width, preview.height) == (64 // POOL, 64 // POOL)
    assert len(seen["steps"]) == len(expected) == SETTINGS["steps"]
    for got, want in zip(seen["steps"], expected):
        assert (got["source"], got["width"], got["height"]) == ("preview_decoder", preview.width, preview.height)
        assert np.abs(rgb(got) - want.astype(int)).max() <= TOLERANCE["wasm"]
    # The final image is the VAE's, at full size.
    final = rgb(seen["final"])
    assert final.shape == (64, 64, 3)
    # int8 quantizes activations at run time: a value on a rounding boundary lands on either side
    # in WASM and natively, so a few pixels of the int8 VAE's picture differ more than fp32's would.
    diff = np.abs(final - cpython_pixels(pipeline, SETTINGS))
    assert diff.mean() <= 3 and diff.max() <= 16, (diff.mean(), diff.max())  # measured: 1.7 and 9

    # The explainer's x̂₀ view decodes the selected step through the preview decoder too.
    p = page.page
    p.evaluate("window.sdlens.debug.open('refiner')")
    shown = p.evaluate("""async () => { const run = window.sdlens.store.main; const step = run.steps[1];
        const image = await window.sdlens.decode(step.tensors.x0, step.shape);
        return { by: image.by, width: image.width, height: image.height, rgba: Array.from(image.rgba) }; }""")
    assert (shown["by"], shown["width"], shown["height"]) == ("preview_decoder", preview.width, preview.height)
    assert np.abs(rgb(shown) - expected[1].astype(int)).max() <= TOLERANCE["wasm"]
    caption = p.locator("#detail .strip", has_text="current guess").locator("figcaption").first.text_content()
    assert "preview decoder (TAESD)" in caption and f"3×{preview.height}×{preview.width}" in caption
    note = p.locator("#previews-note").text_content()
    assert f"at {preview.width}×{preview.height}" in note and "the final image is the VAE's" in note
    ARTIFACTS.mkdir(exist_ok=True)
    p.locator(".stage-side").screenshot(path=str(ARTIFACTS / "preview-decoder-strip-1280.png"))
    assert page.errors == [] and page.origins == {server.url}


def test_preview_variant_per_backend():
    """The fastest variant each backend runs correctly (measured, see browser/preview.py)."""
    from sdlens.browser.preview import choose

    entry = lambda v: {"files": [{"path": f"preview_decoder/model_{v}.onnx"}]}  # noqa: E731
    manifest = {"defaults": {"width": 512, "height": 512},
                "components": {"preview_decoder": {"input_pool": 2, "variants": {v: entry(v) for v in
                                                                                  ("fp32", "fp16", "int8", "q4")}}}}
    picked = {(variant, ep): choose(manifest, variant, ep)["entry"]["files"][0]["path"].split("_")[-1]
              for variant in ("fp32", "fp16", "int8", "q4") for ep in ("wasm", "webgpu") if (variant, ep) != ("fp16", "wasm")}
    assert picked == {("fp32", "wasm"): "int8.onnx", ("int8", "wasm"): "int8.onnx", ("q4", "wasm"): "int8.onnx",
                      ("fp32", "webgpu"): "fp32.onnx", ("fp16", "webgpu"): "fp16.onnx", ("q4", "webgpu"): "fp16.onnx",
                      ("int8", "webgpu"): "fp32.onnx"}
    assert choose(manifest, "int8")["width"] == 256


# ---- the fast decoder drawing the final picture -------------------------------------------------

WATCH_PROGRESS_JS = """() => {
    // every text the progress line shows, as it changes (the phases tick every 0.5 s)
    window.__progress = [];
    const line = document.getElementById('progress-text');
    new MutationObserver(() => window.__progress.push(line.textContent))
        .observe(line, { childList: true, characterData: true, subtree: true });
}"""
RUN_JS = """async (s) => { window.__progress = []; const r = await window.sdlens.generate(s);
    return { width: r.width, height: r.height, rgba: Array.from(r.rgba), settings: r.settings }; }"""
LABELS_JS = """() => { window.sdlens.debug.open('upscaler');
    return { stage: window.sdlens.debug.displayed.stage, caption: document.getElementById('stage-caption').textContent,
             timing: document.getElementById('timing').textContent, upscaler: document.getElementById('detail').textContent,
             redraw: document.getElementById('final-decoder').hidden ? null : document.getElementById('redraw-vae').textContent,
             progress: window.__progress, link: location.search }; }"""


def saved_name(p) -> str:
    with p.expect_download() as download:
        p.click("#save-png")
    return download.value.suggested_filename


def test_fast_decoder_run_is_labelled_everywhere_and_redraws_as_the_vae(taesd_page):
    page, _ = taesd_page
    p = page.page
    # The menu: TAESD draws full-size pictures here; a classroom-size model defaults to the VAE.
    assert p.evaluate("[document.getElementById('decoder').disabled, document.getElementById('decoder').value]") == [False, "vae"]
    assert p.locator("#decoder-reason").text_content() == ""
    p.evaluate("localStorage.removeItem('sdlens.measured.v1')")  # a browser that has timed nothing yet
    p.evaluate(WATCH_PROGRESS_JS)
    fast = p.evaluate(RUN_JS, {**SETTINGS, "decoder": "fast"})
    assert fast["settings"]["decoder"] == "fast" and p.input_value("#decoder") == "fast"
    shown = p.evaluate(LABELS_JS)
    assert shown["stage"]["decoder"] == "fast" and shown["stage"]["final"]
    assert "drawn by the fast decoder (TAESD)" in shown["caption"]
    assert "fast decoder (TAESD) for the final picture" in shown["timing"] and "VAE decoder" not in shown["timing"]
    assert "went to the fast decoder (TAESD)" in shown["upscaler"] and "Redraw with the full VAE" in shown["upscaler"]
    assert shown["redraw"] == "Redraw with the full VAE (time not yet measured on this browser)"
    assert "decoder=fast" in shown["link"]
    assert saved_name(p) == "a-red-circle-on-the-left-seed3-fast-decoder.png"
    said = shown["progress"]
    # (an earlier test ran these words: their embeddings were kept, so the text encoder did not run)
    assert not any(t.startswith("Encoding the prompt (text encoder)") for t in said), said
    assert "text encoder (not run: this prompt's embeddings were already made)" in shown["timing"]
    assert any(t.startswith("Drawing the final picture with the fast decoder (TAESD)… ") for t in said), said
    ARTIFACTS.mkdir(exist_ok=True)
    p.evaluate("window.sdlens.debug.close()")
    p.evaluate("window.scrollTo(0, 0)")
    for width, height in ((1280, 720), (390, 844)):
        p.set_viewport_size({"width": width, "height": height})
        p.locator("#final-decoder").scroll_into_view_if_needed()
        p.screenshot(path=str(ARTIFACTS / f"fast-decoder-run-{width}.png"))
    p.set_viewport_size({"width": 1280, "height": 900})

    # Redraw: the same final latent through the VAE, no new steps; every label follows.
    redrawn = p.evaluate("""async () => { window.__progress = []; const r = await window.sdlens.redraw();
        return { width: r.width, height: r.height, decoder: r.decoder, rgba: Array.from(r.rgba),
                 generate: document.getElementById('generate').disabled }; }""")
    assert redrawn["decoder"] == "vae" and (redrawn["width"], redrawn["height"]) == (64, 64)
    after = p.evaluate(LABELS_JS)
    assert after["stage"]["decoder"] == "vae" and "decoded by the VAE (redrawn" in after["caption"]
    assert "decoded by the VAE into the image" in after["upscaler"] and "went to the fast decoder" not in after["upscaler"]
    assert after["redraw"] is None  # the button goes: the picture is the VAE's
    assert "then redrawn with the full VAE" in after["timing"]
    assert "decoder=" not in after["link"]  # the link now runs what is shown: the VAE
    assert any(t.startswith("Drawing the final picture with the VAE… ") for t in after["progress"]), after["progress"]
    # (the line, not its latest text: the forward-process view may fetch the VAE encoder's files next)
    assert any(t.startswith("Redrawn with the full VAE in ") for t in p.evaluate("window.__progress"))
    assert saved_name(p) == "a-red-circle-on-the-left-seed3.png"
    p.set_viewport_size({"width": 1280, "height": 720})
    p.screenshot(path=str(ARTIFACTS / "fast-decoder-redrawn-1280.png"))
    p.set_viewport_size({"width": 1280, "height": 900})

    # A run drawn by the VAE from the start: the redrawn picture, byte for byte (same worker, same graphs).
    vae = p.evaluate(RUN_JS, {**SETTINGS, "decoder": "vae"})
    assert np.array_equal(rgb(vae), rgb(redrawn))
    assert np.abs(rgb(vae) - rgb(fast)).max() > 0  # (and the fast decoder's picture was another one)
    # The VAE is timed now: the next fast run's button says how long the redraw takes here.
    p.evaluate(RUN_JS, {**SETTINGS, "decoder": "fast"})
    assert re.fullmatch(r"Redraw with the full VAE \(about \d+ ms\)", p.locator("#redraw-vae").text_content())
    assert page.errors == []


def test_picture_encoder_wait_is_named_and_timed(taesd_page):
    """A run from a picture: the encoder's run says what it is, and the time line counts the
    encoder as its own part. (Its files' download line: tests/web/final_decoder.test.mjs; here the
    forward-process view has fetched them already.)"""
    page, _ = taesd_page
    p = page.page
    p.evaluate(WATCH_PROGRESS_JS)
    size = 64
    y, x = np.mgrid[0:size, 0:size]
    rgba = np.stack([x * 4, y * 4, np.full_like(x, 128), np.full_like(x, 255)], -1).astype(np.uint8).tobytes()
    p.evaluate("""async ([s, rgba]) => { window.__progress = [];
        await window.sdlens.generate({ ...s, strength: 0.6, init_image: { width: 64, height: 64, rgba: new Uint8Array(rgba) } }); }""",
               [{**SETTINGS, "decoder": "fast"}, list(rgba)])
    said = p.evaluate("window.__progress")
    assert any(t.startswith("Encoding your picture (VAE encoder)… ") for t in said), said
    assert "VAE encoder (your picture)" in p.locator("#timing").text_content()
    p.evaluate("window.sdlens.picture.reflect({})")  # the next tests run from noise again
    assert page.errors == []


def test_estimate_before_generate_for_a_model_marked_full_size(taesd_page):
    page, _ = taesd_page
    p = page.page
    p.evaluate(RUN_JS, {**SETTINGS, "decoder": "fast"})  # this browser's own measurement of the model
    assert p.evaluate("window.sdlens.estimate()") is None  # a classroom-size model: no estimate
    assert p.locator("#estimate").is_hidden()
    # Mark the loaded model full size (its UNet's bytes, as the page holds its manifest): the production rule runs.
    p.evaluate("""() => { const run = window.sdlens.store.main, v = window.sdlens.backend.variant;
        run.manifest.components.unet.variants[v].files[0].bytes += 3e8; }""")
    try:
        p.fill("#steps", "3")
        p.select_option("#decoder", "vae")
        own = p.evaluate("window.sdlens.estimate()")
        assert own["source"] == "measured" and "on this browser (from your last run" in own["text"]
        assert p.locator("#estimate").is_visible() and p.locator("#estimate").text_content() == own["text"]
        # More steps cost more; the line follows the form as it is typed (read before estimate()
        # redraws it; 300 steps, so that the whole seconds it shows differ on any machine).
        p.fill("#steps", "300")
        typed = p.locator("#estimate").text_content()
        more = p.evaluate("window.sdlens.estimate()")
        assert more["seconds"] > own["seconds"] and typed == more["text"] != own["text"]
        # No measurement on this browser: the reference numbers, and the line says so.
        p.evaluate("localStorage.removeItem('sdlens.measured.v1')")
        reference = p.evaluate("window.sdlens.estimate()")
        assert reference["source"] == "reference" and "estimated from a reference machine" in reference["text"]
        p.set_viewport_size({"width": 390, "height": 844})
        p.locator("#estimate").scroll_into_view_if_needed()
        p.screenshot(path=str(ARTIFACTS / "estimate-390.png"))
        p.locator("label.decoder").scroll_into_view_if_needed()
        p.screenshot(path=str(ARTIFACTS / "decoder-menu-390.png"))
        p.set_viewport_size({"width": 1280, "height": 900})
    finally:
        p.evaluate("""() => { const run = window.sdlens.store.main, v = window.sdlens.backend.variant;
            run.manifest.components.unet.variants[v].files[0].bytes -= 3e8; }""")
        p.fill("#steps", "3")
    assert page.errors == []


LAST_STEP_JS = """async (s) => {
    const seen = [];
    const listener = ({ detail }) => seen.push({ source: detail.preview.source, later: Boolean(detail.picture_later) });
    window.addEventListener('sdlens:step', listener);
    await window.sdlens.generate(s);
    window.removeEventListener('sdlens:step', listener);
    const steps = window.sdlens.debug.store.runs.get('main').steps;
    const last = steps[steps.length - 1].preview;
    return { seen, last: { width: last.width, height: last.height, source: last.source, rgba: Array.from(last.rgba) },
             kept: steps.some((step) => step.x0_later), timing: document.getElementById('timing').textContent };
}"""


def test_fast_decoder_run_draws_its_last_step_picture_after_the_final_one(taesd_page):
    """With the fast final decoder, the last step's x̂₀ picture (half a second at full size on WASM)
    waits until the final picture is shown, then is decoded by the same preview decoder: the same
    picture a run drawn by the VAE shows for that step (x̂₀ does not depend on the final decoder)."""
    page, _ = taesd_page
    p = page.page
    fast = p.evaluate(LAST_STEP_JS, {**SETTINGS, "decoder": "fast"})
    assert [s["later"] for s in fast["seen"]] == [False, False, True]
    assert [s["source"] for s in fast["seen"]] == ["preview_decoder", "preview_decoder", "linear"]
    assert fast["last"]["source"] == "preview_decoder" and not fast["kept"]
    assert "then the last step's picture (x̂₀, by the preview decoder (TAESD)), after the image" in fast["timing"]
    vae = p.evaluate(LAST_STEP_JS, {**SETTINGS, "decoder": "vae"})
    assert [s["later"] for s in vae["seen"]] == [False, False, False]
    assert [s["source"] for s in vae["seen"]] == ["preview_decoder"] * 3 and "after the image" not in vae["timing"]
    assert np.array_equal(rgb(fast["last"]), rgb(vae["last"]))
    assert page.errors == []


def test_words_typed_are_encoded_before_generate(taesd_page):
    """While the learner types, the page has the worker encode the words (prepare_text.js); the
    run then skips the text encoder and its timing line says so. Words it has not seen run it."""
    page, _ = taesd_page
    p = page.page
    p.evaluate(WATCH_PROGRESS_JS)
    p.evaluate("""() => { window.__prepared = [];
        window.addEventListener('sdlens:prepared', ({ detail }) => window.__prepared.push(detail.settings.prompt)); }""")
    p.fill("#prompt", "")
    p.locator("#prompt").type("a green star at the top")
    # the words rest 0.5 s, then the worker encodes them: prepare_text.js says when it has
    p.wait_for_function("window.__prepared.includes('a green star at the top')")
    p.evaluate("window.__progress = []")
    p.click("#generate")
    # this run done and shown (an earlier run's time line is there until the run clears it)
    p.wait_for_function("window.sdlens.store.main?.settings.prompt === 'a green star at the top' && "
                        "window.sdlens.store.main.final && !document.getElementById('generate').disabled && "
                        "document.getElementById('timing').textContent.includes('text encoder')")
    timing = p.locator("#timing").text_content()
    assert "text encoder (not run: this prompt's embeddings were already made)" in timing, timing
    assert not any(t.startswith("Encoding the prompt (text encoder)") for t in p.evaluate("window.__progress"))
    # words no run and no typing has seen: the text encoder runs, and the progress line says so
    p.evaluate(RUN_JS, {**SETTINGS, "prompt": "a yellow moon on the right"})
    said = p.evaluate("window.__progress")
    assert any(t.startswith("Encoding the prompt (text encoder)… ") for t in said), said
    timing = p.locator("#timing").text_content()
    assert "text encoder " in timing and "not run" not in timing
    assert page.errors == []
