"""The explainer in Chromium: panels open and close, the timestep slider drives every view, and
what is displayed is the live run's own numbers (teaching fidelity)."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest

from sdlens.model import Model

from .conftest import ROOT
from .test_browser import Page, browser, models_dir, server  # noqa: F401  (shared fixtures)

ARTIFACTS = ROOT / "test-artifacts"
SETTINGS = dict(prompt="a red circle on the left, light blue background", negative="", seed=5, steps=6,
                guidance=7.5, scheduler="ddim")


@pytest.fixture(scope="module")
def page(browser, server):  # noqa: F811
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    page = Page(context, server, "?backend=wasm").ready()
    page.page.evaluate("(s) => window.sdlens.explain(s).then(() => null)", SETTINGS)
    ARTIFACTS.mkdir(exist_ok=True)
    yield page
    assert page.errors == [] and page.origins == {server.url}
    context.close()


def shot(page, selector, name):
    page.page.locator(selector).screenshot(path=str(ARTIFACTS / f"explainer-{name}.png"))


def test_overview_shows_the_live_shapes(page):
    labels = page.page.locator("#overview text.shape").all_text_contents()
    assert labels == ["prompt", "77×32", "4×16×16", "3×64×64"]
    assert page.page.locator("#overview g.component").count() == 3
    shot(page, "#overview", "overview")


@pytest.mark.parametrize("component", ["text", "refiner", "upscaler"])
def test_expand_and_collapse(page, component):
    p = page.page
    titles = {"text": "Text Representation Generator", "refiner": "Image Representation Refiner",
              "upscaler": "Image Upscaler"}
    p.locator(f'#overview g.component[aria-label="open {titles[component]}"]').click()
    p.wait_for_function("!document.getElementById('detail').hidden")
    assert titles[component] in p.locator("#detail h3").text_content()
    assert p.locator("#detail canvas").count() >= 2
    page.settled("#detail")  # the opening transition
    shot(page, "#detail", component)
    p.keyboard.press("Escape")
    p.wait_for_function("document.getElementById('detail').hidden")


def test_tokens_displayed_are_the_tokenizers(page, models_dir):  # noqa: F811
    page.page.evaluate("window.sdlens.debug.open('text')")
    shown = page.page.evaluate("window.sdlens.debug.displayed.text")
    tokenizer = Model.from_dir(models_dir / "tiny-random").load_tokenizer()
    expected = tokenizer.encode(SETTINGS["prompt"])
    assert shown["ids"] == expected.ids and shown["tokens"] == expected.tokens and shown["length"] == expected.length
    chips = page.page.locator("#detail ol.tokens li:not([hidden]) .id").all_text_contents()
    assert [int(c) for c in chips] == expected.ids[: expected.length + 2]


@pytest.mark.parametrize("index", [0, 2, 5])
def test_displayed_guidance_is_the_formula_of_displayed_parts(page, index):
    p = page.page
    p.evaluate("window.sdlens.debug.open('refiner')")
    p.evaluate("(i) => window.sdlens.store.select(i)", index)
    shown = p.evaluate("window.sdlens.debug.displayed.refiner")
    assert shown["index"] == index
    u, c, e = (np.array(shown[k], np.float32) for k in ("eps_uncond", "eps_cond", "eps_guided"))
    g = shown["guidance"]
    assert g == SETTINGS["guidance"]
    np.testing.assert_allclose(e, u + g * (c - u), rtol=0, atol=2e-6 * max(1, np.abs(e).max()))
    np.testing.assert_allclose(shown["difference"], c - u, atol=1e-6)
    assert f"g = {g}" in p.locator("#detail .formula").first.text_content()
    # The step shown is the step of the run, with its own timestep.
    run_t = p.evaluate("(i) => window.sdlens.store.main.steps[i].timestep", index)
    assert shown["timestep"] == run_t and f"t = {round(run_t)}" in p.locator("#detail p").first.text_content()


def test_slider_moves_every_view_instantly(page):
    p = page.page
    p.evaluate("window.sdlens.debug.open('refiner')")
    slider = p.locator("#tl-slider")
    timings = []
    for index in (4, 1, 3):
        started = time.perf_counter()
        slider.fill(str(index))
        p.wait_for_function(f"window.sdlens.debug.displayed.refiner.index === {index}")
        timings.append(p.evaluate("""() => { const t0 = performance.now();
            window.sdlens.store.select(window.sdlens.store.selected); return performance.now() - t0; }"""))
        assert f"Step {index + 1} of 6" in p.locator("#tl-label").text_content()
        assert f"step {index + 1} of 6" in p.locator("#overview text.loop").text_content()
        assert f"step <b>{index + 1}</b>" in p.locator("#article").inner_html()
        assert time.perf_counter() - started < 5
    # Redrawing every view for a step of a finished run recomputes nothing: well under 100 ms.
    assert max(timings) < 100, timings
    # Keyboard: arrows step, from anywhere but a text field.
    p.locator("#tl-forward").focus()
    p.keyboard.press("ArrowLeft")
    assert p.evaluate("window.sdlens.store.selected") == 2
    shot(page, "#timeline", "timeline")
    shot(page, "#article", "article")


def test_tablet_width(page):
    p = page.page
    p.set_viewport_size({"width": 800, "height": 1100})
    p.evaluate("window.sdlens.debug.open('refiner')")
    p.wait_for_function("!document.getElementById('detail').hidden")
    page.settled("#detail")
    width = p.evaluate("document.documentElement.scrollWidth")
    assert width <= 800
    p.screenshot(path=str(ARTIFACTS / "explainer-tablet.png"), full_page=False)
    p.set_viewport_size({"width": 1280, "height": 800})
