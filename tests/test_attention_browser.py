"""Attention maps in Chromium: the explain result's maps equal CPython's, and what the views draw is
exactly the selected step's map for the chosen word (teaching fidelity)."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from sdlens.cpython.runtime import OnnxRuntime
from sdlens.model import Model
from sdlens.pipeline import Pipeline, Settings

from .conftest import ROOT
from .test_browser import Page, Server, browser, models_dir, server  # noqa: F401  (shared fixtures)

ARTIFACTS = ROOT / "test-artifacts"
SETTINGS = dict(prompt="a red circle on the left, light blue background", negative="", seed=5, steps=3,
                guidance=7.5, scheduler="ddim")
MAPS_JS = """async (s) => { const r = await window.sdlens.explain(s);
    const a = r.attention; return a.available ? {...a, maps: a.maps.map((m) => Array.from(m))} : a; }"""


def cpython_maps(model_dir, settings):
    pipeline = Pipeline(Model.from_dir(str(model_dir)), OnnxRuntime())
    maps = []
    pipeline.generate(Settings(**settings), on_step=lambda t: maps.append(t.attention[0]), attention=True)
    return np.stack(maps)


@pytest.fixture(scope="module")
def page(browser, server):  # noqa: F811
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = Page(context, server, "?backend=wasm").ready()
    page.result = page.page.evaluate(MAPS_JS, SETTINGS)
    ARTIFACTS.mkdir(exist_ok=True)
    yield page
    assert page.errors == [] and page.origins == {server.url}
    context.close()


def test_explain_result_maps_equal_cpython(page, models_dir):  # noqa: F811
    result = page.result
    expected = cpython_maps(models_dir / "tiny-random", SETTINGS)
    assert result["available"] and result["shape"] == list(expected.shape)
    got = np.array(result["maps"], np.float32).reshape(expected.shape)
    assert np.abs(got - expected).max() <= 1e-5
    assert result["tokens"][:4] == ["<|startoftext|>", "a</w>", "red</w>", "circle</w>"]


def peak_over_mean(maps, positions):
    """How concentrated a word's map is, as attention_maps.js defines it: the peak of its map averaged
    over the run's steps over that map's mean."""
    mean = maps[:, positions].mean(axis=1).mean(axis=0)
    return mean.max() / mean.mean()


def displayed(page, where):
    return page.page.evaluate(f"window.sdlens.debug.displayed.attention.{where}")


def choose_word(p, where, label):
    """Chooses `label`'s chip in the attention view `where` ("final" or "refiner") by keyboard, then
    waits until the view draws that word. By keyboard, because a pointer click lands on a point of
    the screen: while the page still scrolls (an opened panel comes into view smoothly), that point
    can be another chip's."""
    container = "#attention-final" if where == "final" else "#detail .attention-refiner"
    chip = p.locator(f"{container} .attention-chips").get_by_role("button", name=label, exact=True).first
    chip.focus()
    chip.press("Enter")
    p.wait_for_function("([w, l]) => window.sdlens.debug.displayed.attention?.[w]?.label === l", arg=[where, label])


# The Refiner's map over x̂₀ is drawn once x̂₀ is decoded, after the rest of its view: the figure
# says so (data-drawn), for the map of this word at this step.
OVERLAY_DRAWN_JS = """([label, step]) => {
    const shown = window.sdlens.debug.displayed.attention?.refiner;
    const over = document.querySelector('#detail .attention-refiner .attention-over');
    return shown?.label === label && (step === null || shown.step === step) && over?.dataset.drawn === 'true'; }"""


def overlay_drawn(p, label, step=None):
    p.wait_for_function(OVERLAY_DRAWN_JS, arg=[label, step])


def test_displayed_map_is_the_steps_tensor_for_the_word(page):
    p = page.page
    maps = np.array(page.result["maps"], np.float32).reshape(page.result["shape"])
    p.evaluate("window.sdlens.debug.open('refiner')")
    p.wait_for_selector("#detail .attention-refiner .attention-chips")
    # The default word is the most concentrated one (tested on the default model below); pick "red".
    choose_word(p, "refiner", "red")
    for index in (2, 0):
        p.evaluate(f"window.sdlens.store.select({index})")
        shown = displayed(page, "refiner")
        assert shown["label"] == "red" and shown["positions"] == [2] and shown["step"] == index
        assert np.array_equal(np.array(shown["map"], np.float32), maps[index, 2].ravel())
        assert np.allclose(shown["sum"], maps[:, 2].sum(axis=0).ravel(), atol=1e-6)
    # Choosing a word in the Refiner changes the view beside the final image too.
    choose_word(p, "refiner", "circle")
    for where in ("refiner", "final"):
        shown = displayed(page, where)
        assert shown["label"] == "circle" and shown["positions"] == [3]
        assert np.allclose(shown["sum"], maps[:, 3].sum(axis=0).ravel(), atol=1e-6)
    assert np.array_equal(np.array(displayed(page, "refiner")["map"], np.float32), maps[0, 3].ravel())
    assert p.locator("#detail .attention-refiner .chip[aria-pressed=true]").all_text_contents() == ["circle"]
    overlay_drawn(p, "circle", 0)
    p.locator("#detail .attention-refiner").screenshot(path=str(ARTIFACTS / "attention-refiner-1280.png"))
    p.locator("#attention-final").screenshot(path=str(ARTIFACTS / "attention-final-1280.png"))
    p.set_viewport_size({"width": 390, "height": 900})
    page.settled("#detail .attention-refiner")
    p.locator("#detail .attention-refiner").screenshot(path=str(ARTIFACTS / "attention-refiner-390.png"))
    p.locator("#attention-final").screenshot(path=str(ARTIFACTS / "attention-final-390.png"))
    p.set_viewport_size({"width": 1280, "height": 900})


def test_a_word_of_several_tokens_is_their_mean(page):
    p = page.page
    maps = np.array(page.result["maps"], np.float32).reshape(page.result["shape"])
    words = p.evaluate("""async () => { const m = await import('/explainer/attention_maps.js');
        return m.promptWords({tokens: ['<|startoftext|>', 'hel', 'lo</w>', 'cat</w>', '<|endoftext|>'], length: 5}); }""")
    assert [(w["label"], w["positions"]) for w in words] == [("⟨start⟩", [0]), ("hello", [1, 2]), ("cat", [3]),
                                                             ("⟨end⟩", [4])]
    mean = p.evaluate("""async (m) => { const a = await import('/explainer/attention_maps.js');
        return Array.from(a.mapOf(Float32Array.from(m.flat), m.shape, [2, 3])); }""",
                      {"flat": maps[1].ravel().tolist(), "shape": list(maps.shape[1:])})
    assert np.allclose(mean, maps[1, 2:4].mean(axis=0).ravel(), atol=1e-7)


def test_a_new_prompt_never_shows_the_old_words_label(page):
    """The chosen word carries over to the next run only where that run's prompt has it at the
    same tokens; otherwise the map would be another word's under the old label."""
    p = page.page
    p.evaluate("window.sdlens.debug.open('refiner')")
    choose_word(p, "refiner", "background")
    assert displayed(page, "final")["label"] == "background"
    result = p.evaluate(MAPS_JS, dict(SETTINGS, prompt="a blue square at the top", steps=2))
    shown = displayed(page, "final")
    maps = np.array(result["maps"], np.float32).reshape(result["shape"])
    # The default: the content word whose map is most concentrated (see test_default_word_...).
    expected = max(((w, t) for t, w in [(2, "blue"), (3, "square"), (6, "top")]), key=lambda wt: peak_over_mean(maps, [wt[1]]))
    assert (shown["label"], shown["positions"]) == (expected[0], [expected[1]])
    choose_word(p, "final", "square")
    p.evaluate(MAPS_JS, dict(SETTINGS, prompt="a red square at the top", steps=2))  # "square" is still token 3
    shown = displayed(page, "final")
    assert (shown["label"], shown["positions"]) == ("square", [3])
    p.evaluate(MAPS_JS, SETTINGS)  # back to the module's run, for the tests after this one


def test_model_without_maps_says_so(browser, models_dir, tmp_path):  # noqa: F811
    folder = tmp_path / "models"
    shutil.copytree(models_dir / "tiny-random", folder / "tiny-random")
    manifest_path = folder / "tiny-random" / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    for entry in manifest["components"]["unet"]["variants"].values():  # as a model exported before maps
        entry["outputs"] = entry["outputs"][:1]
    manifest_path.write_text(json.dumps(manifest))
    srv = Server(folder)
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    try:
        page = Page(context, srv, "?backend=wasm").ready()
        result = page.page.evaluate(MAPS_JS, dict(SETTINGS, steps=2))
        assert result == {"available": False}
        assert "no attention output" in page.page.locator("#attention-final").text_content()
        page.page.evaluate("window.sdlens.debug.open('refiner')")
        assert "no attention output" in page.page.locator("#detail .attention-refiner").text_content()
        assert page.errors == []
    finally:
        context.close()
        srv.stop()


DEFAULT_MODEL = ROOT / "models" / "shapes"


@pytest.mark.skipif(not (DEFAULT_MODEL / "manifest.json").is_file(), reason="models/shapes is not built")
@pytest.mark.parametrize("backend", ["wasm"])
def test_default_model_maps_in_the_page(browser, backend, shapes_only):  # noqa: F811
    """The committed shapes model: the page's maps are CPython's, and "red" lights up the star."""
    srv = Server(shapes_only)
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    settings = dict(prompt="a big red star on the left, light blue background", negative="", seed=1, steps=10,
                    guidance=7.5, scheduler="ddim")
    try:
        page = Page(context, srv, f"?backend={backend}").ready()
        result = page.page.evaluate(MAPS_JS, settings)
        expected = cpython_maps(DEFAULT_MODEL, settings)
        got = np.array(result["maps"], np.float32).reshape(expected.shape)
        assert np.abs(got - expected).max() <= (1e-5 if backend == "wasm" else 1e-3)
        choose_word(page.page, "final", "red")
        shown = page.page.evaluate("window.sdlens.debug.displayed.attention.final")
        assert shown["label"] == "red"
        assert np.allclose(shown["sum"], expected[:, 3].sum(axis=0).ravel(), atol=1e-5)
        page.page.locator("#attention-final").screenshot(path=str(ARTIFACTS / f"attention-default-final-{backend}-1280.png"))
        page.page.evaluate("window.sdlens.debug.open('refiner')")
        page.page.evaluate("window.sdlens.store.select(4)")
        overlay_drawn(page.page, "red", 4)
        page.settled("#detail .attention-refiner")
        page.page.locator("#detail .attention-refiner").screenshot(
            path=str(ARTIFACTS / f"attention-default-refiner-{backend}-1280.png"))
        choose_word(page.page, "refiner", "background")
        overlay_drawn(page.page, "background", 4)
        page.page.set_viewport_size({"width": 390, "height": 900})
        page.settled("#detail .attention-refiner")
        page.page.locator("#detail .attention-refiner").screenshot(
            path=str(ARTIFACTS / f"attention-default-refiner-background-{backend}-390.png"))
        assert page.errors == [] and page.origins == {srv.url}
    finally:
        context.close()
        srv.stop()


# ---- One honest scale per run, on the default model (real attention: "red" and "circle" point at
# the circle, "big" nowhere in particular). One page and one run shared by the tests below.

CIRCLE = dict(prompt="a big red circle in the center, white background", negative="", seed=1, steps=10,
              guidance=7.5, scheduler="ddim")
CIRCLE_WORDS = {"a": 1, "big": 2, "red": 3, "circle": 4, "center": 7, "white": 9, "background": 10}  # token positions
CIRCLE_CONTENT = ["big", "red", "circle", "center", "white", "background"]  # attention_maps.js leaves out "a", "in", ...

# Reads a canvas of the view back: its pixels as [r, g, b, a, ...].
PIXELS_JS = """(sel) => { const c = document.querySelector(sel);
    return Array.from(c.getContext('2d').getImageData(0, 0, c.width, c.height).data); }"""


@pytest.fixture(scope="module")
def shapes(browser, shapes_only):  # noqa: F811
    if not (DEFAULT_MODEL / "manifest.json").is_file():
        pytest.skip("models/shapes is not built")
    srv = Server(shapes_only)
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = Page(context, srv, "?backend=wasm").ready()
    page.result = page.page.evaluate(MAPS_JS, CIRCLE)
    page.maps = np.array(page.result["maps"], np.float32).reshape(page.result["shape"])
    page.page.evaluate("window.sdlens.debug.open('refiner')")
    page.page.wait_for_selector("#detail .attention-refiner .attention-chips")
    ARTIFACTS.mkdir(exist_ok=True)
    yield page
    assert page.errors == [] and page.origins == {srv.url}
    context.close()
    srv.stop()


def pick(page, label):
    choose_word(page.page, "final", label)
    overlay_drawn(page.page, label)
    return displayed(page, "final"), displayed(page, "refiner")


def chroma(pixels):
    """Mean colourfulness (max − min of r, g, b) of a canvas: 0 where the overlay leaves the picture grey."""
    rgb = np.array(pixels, np.float32).reshape(-1, 4)[:, :3]
    return float((rgb.max(axis=1) - rgb.min(axis=1)).mean())


def test_default_word_is_the_most_concentrated(shapes):
    shown = displayed(shapes, "final")
    expected = max(CIRCLE_CONTENT, key=lambda w: peak_over_mean(shapes.maps, [CIRCLE_WORDS[w]]))
    assert shown["label"] == expected and expected in ("red", "circle")  # never "big", the least telling word
    assert peak_over_mean(shapes.maps, [CIRCLE_WORDS["big"]]) < peak_over_mean(shapes.maps, [CIRCLE_WORDS[expected]])


def test_every_word_of_a_run_has_one_scale_and_it_is_the_numbers(shapes):
    maps = shapes.maps
    words_peak = float(maps[:, 1:CIRCLE_WORDS["background"] + 1].max())  # every token between ⟨start⟩ and ⟨end⟩
    scales = {}
    for word in ("big", "circle", "background"):
        for index in (0, 6):
            shapes.page.evaluate(f"window.sdlens.store.select({index})")
            final, refiner = pick(shapes, word)
            assert final["label"] == refiner["label"] == word and final["scaleKind"] == "run"
            assert final["scale"] == refiner["scale"]
            scales[word, index] = (final["scale"]["lo"], final["scale"]["hi"])
            # Fidelity stays: the numbers recorded are the run's.
            t = CIRCLE_WORDS[word]
            assert np.array_equal(np.array(refiner["map"], np.float32), maps[index, t].ravel())
            assert np.allclose(final["sum"], maps[:, t].sum(axis=0).ravel(), atol=1e-5)
    assert len(set(scales.values())) == 1
    lo, hi = next(iter(scales.values()))
    assert lo == 0 and abs(hi - words_peak) <= 1e-7


def test_the_raw_map_is_drawn_on_the_recorded_scale(shapes):
    """Each latent cell of the Refiner's raw map has exactly the viridis colour of its share on the
    recorded scale, for a weak and a strong word alike."""
    for word in ("big", "circle"):
        _, shown = pick(shapes, word)
        expected = shapes.page.evaluate("""([map, lo, hi]) => map.flatMap((v) => {
            const t = Math.max(0, Math.min(1, (v - lo) / (hi - lo)));
            const c = d3.rgb(d3.interpolateViridis(Math.round(t * 255) / 255)); return [c.r, c.g, c.b, 255]; })""",
                                        [shown["map"], shown["scale"]["lo"], shown["scale"]["hi"]])
        assert shapes.page.evaluate(PIXELS_JS, "#detail .attention-refiner .attention-raw canvas") == expected


def test_a_weak_word_is_drawn_dimmer(shapes):
    shapes.page.evaluate("window.sdlens.store.select(6)")
    drawn = {}
    for word in ("big", "circle"):
        pick(shapes, word)
        drawn[word] = (chroma(shapes.page.evaluate(PIXELS_JS, "#attention-final .attention-sum canvas")),
                       chroma(shapes.page.evaluate(PIXELS_JS, "#detail .attention-refiner .attention-over canvas")))
        for where in ("final", "refiner"):
            shapes.page.locator(f"#{'attention-final' if where == 'final' else 'detail .attention-refiner'}").screenshot(
                path=str(ARTIFACTS / f"attention-scale-{where}-{word}-1280.png"))
    # "big" averages 0.015 of each position's attention against up to ~0.2 for "circle": far less colour.
    assert drawn["big"][0] < 0.35 * drawn["circle"][0] and drawn["big"][1] < 0.35 * drawn["circle"][1]
    pick(shapes, "big")
    big = shapes.page.locator("#attention-final .attention-scale").last.text_content()
    assert "Spread evenly: this word points nowhere in particular" in big
    pick(shapes, "circle")
    assert "points nowhere" not in shapes.page.locator("#attention-final .attention-scale").last.text_content()


def test_start_and_end_are_explained_on_their_own_scale(shapes):
    words_scale = pick(shapes, "circle")[0]["scale"]
    for label, t in (("⟨start⟩", 0), ("⟨end⟩", CIRCLE_WORDS["background"] + 1)):
        final, refiner = pick(shapes, label)
        assert final["positions"] == [t] and final["scaleKind"] == refiner["scaleKind"] == "own"
        assert final["scale"] != words_scale
        assert final["scale"]["lo"] == 0 and abs(final["scale"]["hi"] - float(shapes.maps[:, t].max())) <= 1e-7
        text = shapes.page.locator("#attention-final").text_content()
        assert "on its own scale, not the words'" in text and "not the words' scale" in text
    shapes.page.locator("#attention-final").screenshot(path=str(ARTIFACTS / "attention-scale-final-end-1280.png"))


def test_stretch_is_an_option_labelled_as_such(shapes):
    pick(shapes, "big")
    shapes.page.locator("#attention-final .attention-stretch input").check()
    try:
        final, refiner = displayed(shapes, "final"), displayed(shapes, "refiner")
        mean_maps = shapes.maps[:, CIRCLE_WORDS["big"]]
        assert final["scaleKind"] == refiner["scaleKind"] == "stretch"
        assert np.isclose(final["scale"]["lo"], mean_maps.min()) and np.isclose(final["scale"]["hi"], mean_maps.max())
        assert "exaggerates" in shapes.page.locator("#attention-final .attention-stretch").text_content()
        assert "Stretched" in shapes.page.locator("#attention-final .share-legend").text_content()
    finally:
        shapes.page.locator("#attention-final .attention-stretch input").uncheck()
    assert displayed(shapes, "final")["scaleKind"] == "run"


def test_screenshots_of_the_maps(shapes):
    p = shapes.page
    p.evaluate("window.sdlens.store.select(6)")
    for size, (width, height) in {"1280": (1280, 900), "390": (390, 844)}.items():
        p.set_viewport_size({"width": width, "height": height})
        for word in ("circle", "big"):
            pick(shapes, word)
            shapes.settled("#attention-final")
            shapes.settled("#detail .attention-refiner")
            p.locator("#attention-final").screenshot(path=str(ARTIFACTS / f"attention-final-{word}-{size}.png"))
            p.locator("#detail .attention-refiner").screenshot(path=str(ARTIFACTS / f"attention-refiner-{word}-{size}.png"))
    p.set_viewport_size({"width": 1280, "height": 900})
