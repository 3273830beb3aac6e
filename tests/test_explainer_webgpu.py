"""The explainer's newest views on WebGPU, with the committed default model: per-word attention
maps equal CPython's, guidance edited to `return eps_cond` equals a g = 1 run, UMAP draws one
point per step per run, and a run from a picture (the VAE encoder on WebGPU) equals CPython's. The WASM tests cover each in depth; here each runs once, with few steps,
because the only WebGPU adapter here is software (SwiftShader, ~100x slower than WASM)."""

from __future__ import annotations

import numpy as np
import pytest

from sdlens.edited import original_source

from .conftest import ROOT
from .test_attention_browser import MAPS_JS, choose_word, cpython_maps
from .test_browser import Page, Server, browser  # noqa: F401  (shared fixtures)

ARTIFACTS = ROOT / "test-artifacts"
DEFAULT_MODEL = ROOT / "models" / "shapes"
SETTINGS = dict(prompt="a big red star on the left, light blue background", negative="", seed=1, steps=2,
                guidance=7.5, scheduler="ddim")

pytestmark = pytest.mark.skipif(not (DEFAULT_MODEL / "manifest.json").is_file(), reason="models/shapes is not built")


def latents(p, key):
    return np.array(p.evaluate(f"Array.from(window.sdlens.store.runs.get('{key}').latents)"), np.float32)


def test_attention_edited_code_and_umap_on_webgpu(browser, shapes_only):  # noqa: F811
    srv = Server(shapes_only)
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    try:
        page = Page(context, srv, "?backend=webgpu&autorun=0").ready()
        p = page.page
        assert p.evaluate("window.sdlens.backend.ep") == "webgpu"
        p.set_default_timeout(300_000)

        # 1. Attention maps: the page's equal CPython's, and the view draws the chosen word's.
        result = p.evaluate(MAPS_JS, SETTINGS)
        expected = cpython_maps(DEFAULT_MODEL, SETTINGS)
        got = np.array(result["maps"], np.float32).reshape(expected.shape)
        assert np.abs(got - expected).max() <= 1e-3
        choose_word(p, "final", "red")
        shown = p.evaluate("window.sdlens.debug.displayed.attention.final")
        assert shown["label"] == "red" and np.allclose(shown["sum"], got[:, 3].sum(axis=0).ravel(), atol=1e-6)

        # 2. Edited guidance that returns ε_cond: the same latents as guidance off (g = 1).
        edited = original_source("guidance").replace(
            "return eps_uncond + g * (eps_cond - eps_uncond)", "return eps_cond")
        run = p.evaluate("([s, c]) => window.sdlens.explainWithCode(s, {guidance: c}, 'edited').then((r) => r.modified_code)",
                         [SETTINGS, edited])
        assert run == ["guidance"]
        p.evaluate("(s) => window.sdlens.explain(s, 'g1').then(() => null)", dict(SETTINGS, guidance=1))
        off = latents(p, "g1")
        assert np.abs(latents(p, "edited") - off).max() <= 1e-3 * np.abs(off).max()
        assert np.abs(latents(p, "main") - off).max() > 1e-2  # guidance did something in the standard run

        # 3. UMAP in Compare: one point per step per run, the same picture twice.
        p.evaluate("(s) => window.sdlens.explain(s, 'compare').then(() => null)",
                   dict(SETTINGS, prompt="a big blue star on the left, light blue background"))
        p.select_option("#compare-method", "umap")
        p.wait_for_function("document.getElementById('compare-method-note').textContent.startsWith('UMAP')")
        p.wait_for_function("document.querySelectorAll('#compare-projection g.run[data-run=main] circle').length === 2")
        assert p.locator("#compare-projection g.run[data-run=compare] circle").count() == 2

        # 4. A run from a picture (img2img): the VAE encoder runs on WebGPU; the same latents as CPython.
        picture = p.evaluate("Array.from(window.sdlens.store.main.final.rgba)")
        img2img = dict(SETTINGS, strength=0.5)
        p.evaluate("""([s, rgba]) => window.sdlens.explain({...s, init_image: {width: 64, height: 64,
            rgba: Uint8Array.from(rgba)}}, 'picture').then(() => null)""", [img2img, picture])
        from sdlens.cpython.runtime import OnnxRuntime
        from sdlens.model import Model
        from sdlens.pipeline import Pipeline, Settings

        want = Pipeline(Model.from_dir(str(DEFAULT_MODEL)), OnnxRuntime()).generate(Settings(
            **img2img, init_image={"width": 64, "height": 64, "rgba": bytes(picture)})).latents
        assert np.abs(latents(p, "picture").reshape(want.shape) - want).max() <= 1e-3 * np.abs(want).max()

        ARTIFACTS.mkdir(exist_ok=True)
        p.locator("#compare-section").screenshot(path=str(ARTIFACTS / "webgpu-umap-compare-1280.png"))
        p.locator("#attention-final").screenshot(path=str(ARTIFACTS / "webgpu-attention-final-1280.png"))
        assert page.errors == [] and page.origins == {srv.url}
    finally:
        context.close()
        srv.stop()
