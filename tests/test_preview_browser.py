"""A model with a preview decoder (TAESD), in Chromium on WASM, as a full-size model uses it: the
browser downloads it, every step's picture and the explainer's x̂₀ views come from it (at its
smaller size, the latent averaged down as the manifest says), and they equal CPython's; the final
image still comes from the real VAE."""

from __future__ import annotations

import json

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


def rgb(picture) -> np.ndarray:
    return np.array(picture["rgba"], np.uint8).reshape(picture["height"], picture["width"], 4)[..., :3].astype(int)


def test_steps_and_x0_views_come_from_the_preview_decoder(browser, server, models_dir):  # noqa: F811
    model_dir = models_dir / "tiny-taesd"
    manifest = json.loads((model_dir / "manifest.json").read_text())
    assert manifest["components"]["preview_decoder"]["preview_pool"] == POOL
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    fetched = []
    context.on("request", lambda r: fetched.append(r.url))
    try:
        # int8, as WASM takes at full size (a model this small gets fp32); WASM's preview decoder is int8 too
        page = Page(context, server, "?backend=wasm&variant=int8").ready()
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
    finally:
        context.close()


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
