"""The objects model in Chromium (issue 27), as `python serve.py` serves it on a fresh clone: a first
visit opens it and draws its first starter as the CLI does; the menu offers both embedded models and a
link opens the shapes lab; "cat"'s attention lies over the cat; a prompt outside its world gets the
note; the held-out starters are marked and the lesson speaks of objects and places; a run from a
picture draws the CLI's pixels. One page, one model load, shared by the tests below."""

from __future__ import annotations

import numpy as np
import pytest

from sdlens.cpython.runtime import OnnxRuntime
from sdlens.model import Model
from sdlens.pipeline import Pipeline, Settings

from .conftest import OBJECTS
from .test_attention_browser import MAPS_JS, choose_word, cpython_maps
from .test_browser import ARTIFACTS, TOLERANCE, Page, _picture_rgba, browser, served  # noqa: F401  (shared fixtures)

pytestmark = pytest.mark.skipif(not (OBJECTS / "manifest.json").is_file(), reason="models/objects is not built")
MANIFEST = Model.from_dir(str(OBJECTS), verify=False).manifest
CAT = dict(prompt="a big cat in the center, white background", negative="", seed=3, steps=10, guidance=7.5,
           scheduler="ddim")
CAT_TOKEN = 3  # <start> a big cat


@pytest.fixture(scope="module")
def cli():
    return Pipeline(Model.from_dir(str(OBJECTS)), OnnxRuntime())


@pytest.fixture(scope="module")
def page(browser, served):  # noqa: F811
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = Page(context, served, "?backend=wasm")  # no link: a first visit
    page.page.wait_for_function("window.sdlens?.startup?.firstImage", timeout=240_000, polling=100)
    page.ready()
    ARTIFACTS.mkdir(exist_ok=True)
    yield page
    assert page.errors == [] and page.origins == {served.url}
    context.close()


def rgb(result):
    return np.array(result["rgba"], np.uint8).reshape(result["height"], result["width"], 4)[..., :3].astype(int)


def test_a_first_visit_opens_the_objects_model_and_draws_its_starter_as_the_cli(page, cli):
    p = page.page
    assert p.locator("#model").input_value() == "objects"
    offered = p.eval_on_selector_all("#model option", "options => options.map((o) => o.value)")
    assert {"objects", "shapes"} <= set(offered), offered
    first = p.evaluate("""() => { const m = window.sdlens.store.main;
        return {settings: m.settings, width: m.final.width, height: m.final.height, rgba: Array.from(m.final.rgba)}; }""")
    assert first["settings"]["prompt"] == MANIFEST["starter_prompts"][0]
    settings = {k: first["settings"][k] for k in ("prompt", "negative", "seed", "steps", "guidance", "scheduler")}
    expected = np.frombuffer(cli.generate(Settings(**settings)).rgb, np.uint8).reshape(64, 64, 3).astype(int)
    assert np.abs(rgb(first) - expected).max() <= TOLERANCE["wasm"]
    assert MANIFEST["description"] in p.locator("#model-card").text_content()
    for width, height in ((1280, 720), (1280, 900), (390, 844)):
        p.set_viewport_size({"width": width, "height": height})
        p.screenshot(path=str(ARTIFACTS / f"objects-first-visit-{width}x{height}.png"))


def test_cat_attention_lies_over_the_cat(page):
    """The page's maps are CPython's, and summed over the steps "cat" weighs more on the cat's
    pixels than on the white background's (the cat: pixels far from the background colour)."""
    result = page.page.evaluate(MAPS_JS, CAT)
    expected = cpython_maps(OBJECTS, CAT)
    maps = np.array(result["maps"], np.float32).reshape(expected.shape)
    assert np.abs(maps - expected).max() <= 1e-5
    cat = maps[:, CAT_TOKEN].sum(axis=0)
    image = page.page.evaluate("""() => { const f = window.sdlens.store.main.final;
        return {width: f.width, height: f.height, rgba: Array.from(f.rgba)}; }""")
    drawn = np.abs(rgb(image) - 248).sum(axis=2) > 60
    cells = cat.shape[0]
    covered = drawn.reshape(cells, 64 // cells, cells, 64 // cells).mean(axis=(1, 3))
    on_cat, off_cat = cat[covered > 0.5].mean(), cat[covered == 0].mean()
    print(f"cat's attention: {on_cat:.4f} on the cat, {off_cat:.4f} on the background ({covered.round(1).tolist()})")
    assert covered.max() > 0.5 and (covered == 0).any()
    assert on_cat > 1.5 * off_cat
    choose_word(page.page, "final", "cat")
    assert page.page.evaluate("window.sdlens.debug.displayed.attention.final")["label"] == "cat"
    page.page.locator("#attention-final").screenshot(path=str(ARTIFACTS / "objects-attention-cat.png"))


def test_a_prompt_outside_its_world_gets_the_note(page):
    p = page.page
    p.fill("#prompt", "a cute puppy on the beach")
    note = p.locator("#prompt-vocabulary")
    assert note.is_visible()
    text = note.text_content()
    assert f"only knows the {len(MANIFEST['model_card']['vocabulary'])} words" in text
    assert all(f"“{w}”" in text for w in ("cute", "puppy", "beach")) and "“on”" not in text
    p.fill("#prompt", "a cat in the top left corner, white background")
    assert "“cat in the top left corner” never appeared together" in note.text_content()


def test_held_out_starters_are_marked_and_the_lesson_speaks_of_places(page):
    p = page.page
    marked = p.locator("#starters button.held-out")
    assert marked.count() >= 1
    assert any("a cat in the top left corner" in marked.nth(i).text_content() for i in range(marked.count()))
    assert "never seen in training" in marked.first.text_content()
    lesson = p.locator("#generalisation").text_content()
    assert "everyday objects" in lesson and "object+place pairs" in lesson
    assert "a cat in the top left corner" in lesson and "colour" not in lesson


def test_a_run_from_a_picture_draws_the_cli_pixels(page, cli):
    rgba = _picture_rgba(64)
    settings = dict(prompt="a red apple on the left, beige background", negative="", seed=11, steps=6,
                    guidance=7.5, scheduler="ddim", strength=0.6)
    result = page.page.evaluate("""async ([s, rgba]) => {
        const r = await window.sdlens.generate({...s, init_image: {width: 64, height: 64, rgba: new Uint8Array(rgba)}});
        return {...r, rgba: Array.from(r.rgba)}; }""", [settings, list(rgba)])
    ours = cli.generate(Settings(**settings, init_image={"width": 64, "height": 64, "rgba": rgba}))
    expected = np.frombuffer(ours.rgb, np.uint8).reshape(64, 64, 3).astype(int)
    assert np.abs(rgb(result) - expected).max() <= TOLERANCE["wasm"]


def test_a_link_opens_the_shapes_lab(page, served):
    """The shapes model stays one link away (it keeps the colour+shape lesson)."""
    other = Page(page.page.context, served, "?model=shapes&backend=wasm")
    try:
        other.page.wait_for_function("window.sdlens?.startup?.firstImage", timeout=240_000, polling=100)
        assert other.page.locator("#model").input_value() == "shapes"
        assert other.page.evaluate("window.sdlens.store.main.manifest.name") == "shapes"
        assert "colour+shape pairs" in other.page.locator("#generalisation").text_content()
        assert other.errors == []
    finally:
        other.page.close()


def test_the_forward_process_noises_the_objects_picture(page):
    """x_t = √ᾱ_t·x₀ + √(1−ᾱ_t)·ε with the model's own ᾱ, x₀ the final image encoded back."""
    from sdlens.forward import alphas_cumprod, run_noise, weights

    p = page.page
    p.evaluate("document.getElementById('picture-details').open = true")
    p.set_checked("#picture-on", False)  # (the run from a picture above left the picture on)
    p.evaluate("(s) => window.sdlens.explain(s).then(() => null)", {**CAT, "steps": 6, "seed": 11})
    p.locator("#forward-section").scroll_into_view_if_needed()  # it computes when looked at
    # (the view may still show the run before this one: wait for this run's own)
    this_run = "(f) => f?.source === 'encoded' && String(f.seed) === '11'"
    p.wait_for_function(f"({this_run})(window.sdlens.debug.displayed.forward)", timeout=120_000)
    p.evaluate("""() => { const s = document.getElementById('forward-t'); s.value = '500'; s.dispatchEvent(new Event('input')); }""")
    p.wait_for_function(f"({this_run})(window.sdlens.debug.displayed.forward) && window.sdlens.debug.displayed.forward.t === 500",
                        timeout=120_000)
    shown = p.evaluate("""() => { const f = window.sdlens.debug.displayed.forward;
        return {weights: f.weights, shape: f.shape, latent: Array.from(f.latent), x0: Array.from(f.x0)}; }""")
    signal, noise = weights(alphas_cumprod(MANIFEST["scheduler_config"]), 500)
    assert shown["weights"] == pytest.approx([signal, noise], abs=1e-7)
    eps = np.array(run_noise(11, shown["shape"], from_picture=True), np.float32)
    expected = np.float32(signal) * np.array(shown["x0"], np.float32) + np.float32(noise) * eps
    got = np.array(shown["latent"], np.float32)
    assert np.abs(got - expected).max() <= 1e-3 * float(expected.max() - expected.min())
    p.locator("#forward-section").screenshot(path=str(ARTIFACTS / "objects-forward.png"))


def test_the_tour_walks_the_objects_model_and_says_what_it_never_saw(page):
    from .test_explainer_lessons import assert_card_clear_of_target, walk_tour

    p = page.page
    p.evaluate("window.scrollTo(0, 0)")
    texts = {}

    def check(stop):
        assert_card_clear_of_target(p, stop)
        texts[stop] = p.locator("#tour-card").text_content()

    visited = walk_tour(p, check)
    assert visited[0] == "welcome" and visited[-1] == "end" and "never-seen" in visited
    # The first starter that asks for held-out pairs, each named as a caption says it.
    phrases = MANIFEST["place_phrases"]
    prompt, named = next((prompt, [f"a {name} {phrases[place]}" for name, place in MANIFEST["held_out_pairs"]
                                   if f"{name} {phrases[place]}" in prompt])
                         for prompt in MANIFEST["starter_prompts"]
                         if any(f"{name} {phrases[place]}" in prompt for name, place in MANIFEST["held_out_pairs"]))
    text = " ".join(texts["never-seen"].split())
    assert f"Now “{prompt}”: training never showed this model" in text, text
    assert all(pair in text for pair in named), (named, text)
