"""The explainer's level-3 lessons in Chromium (WASM, tiny model): guidance drawn as arrows is the
exact projection of the step's tensors, components expand in place and back by keyboard, the
CLIP lesson, the held-out pairs read from the manifest, and the guided tour walked start to end
by keyboard. One page session serves every check."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from export.shapes import scenes

from .conftest import ROOT
# `server` serves whichever `models_dir` the requesting module defines: here, the one below.
from .test_browser import Page, browser, server, settled  # noqa: F401  (shared fixtures)

ARTIFACTS = ROOT / "test-artifacts"
HELD_OUT = sorted([c, s] for c, s in scenes.HELD_OUT)
STARTERS = ["a big red circle in the center, white background", "a red star in the center, white background"]
SETTINGS = dict(prompt=STARTERS[0], negative="", seed=3, steps=4, guidance=7.5, scheduler="ddim")
TIMEOUT = 120_000


@pytest.fixture(scope="module")
def models_dir(tiny_model_dir, tmp_path_factory):
    """The tiny model with the default model's held-out pairs and starters in its manifest (the
    sha256 list covers the model files only, so the manifest may be edited)."""
    folder = tmp_path_factory.mktemp("lesson-models")
    shutil.copytree(tiny_model_dir, folder / "tiny-random")
    path = folder / "tiny-random" / "manifest.json"
    manifest = json.loads(path.read_text())
    manifest.update(starter_prompts=STARTERS, held_out_pairs=HELD_OUT, description="A tiny random test model.")
    path.write_text(json.dumps(manifest))
    return folder


@pytest.fixture(scope="module")
def page(browser, server):  # noqa: F811
    ARTIFACTS.mkdir(exist_ok=True)
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = Page(context, server, "?backend=wasm").ready()
    page.page.evaluate("(s) => window.sdlens.explain(s).then(() => null)", SETTINGS)
    yield page
    assert page.errors == [] and page.origins == {server.url}
    context.close()


@pytest.fixture(autouse=True)
def no_panel_left_open(page):
    """(conftest's shared_page_restored closes a tour left open and puts the viewport back.)
    The lessons open panels: one left open is closed for the next test, failed or not."""
    yield
    page.restore()  # the tour first: closing it gives back the learner's page
    page.page.evaluate("window.sdlens.debug.close()")
    page.page.wait_for_function("document.getElementById('detail').hidden", timeout=TIMEOUT)


def shot(p, selector, name, width=1280):
    p.locator(selector).screenshot(path=str(ARTIFACTS / f"lessons-{name}-{width}.png"))


def both_widths(p, selector, name):
    shot(p, selector, name)
    p.set_viewport_size({"width": 390, "height": 844})
    settled(p, selector)
    fits = p.evaluate("""(s) => { const el = document.querySelector(s); const r = el.getBoundingClientRect();
        return r.left >= 0 && r.right <= 390 && el.scrollWidth <= el.clientWidth + 1; }""", selector)
    assert fits, f"{name} overflows at 390 px"
    shot(p, selector, name, 390)
    p.set_viewport_size({"width": 1280, "height": 900})


def plane(u, c, e):
    """The expected coordinates: x along ε_uncond, y along ε_cond's part at right angles to it."""
    e1 = u / np.linalg.norm(u)
    rest = c - (c @ e1) * e1
    e2 = rest / np.linalg.norm(rest)
    return {name: np.array([v @ e1, v @ e2]) for name, v in (("uncond", u), ("cond", c), ("guided", e))}


@pytest.mark.parametrize("index", [0, 3])
def test_guidance_arrows_are_the_projection_of_the_steps_tensors(page, index):
    p = page.page
    p.evaluate("window.sdlens.debug.open('refiner')")
    p.evaluate("(i) => window.sdlens.store.select(i)", index)
    shown = p.evaluate("window.sdlens.debug.displayed.guidanceGeometry")
    tensors = p.evaluate("""(i) => { const t = window.sdlens.store.main.steps[i].tensors;
        return {u: Array.from(t.eps_uncond), c: Array.from(t.eps_cond), e: Array.from(t.eps_guided)}; }""", index)
    u, c, e = (np.array(tensors[k], np.float32).astype(np.float64) for k in "uce")
    assert shown["index"] == index and shown["dimensions"] == u.size
    want = plane(u, c, e)
    scale = np.linalg.norm(e)
    for name, point in want.items():
        np.testing.assert_allclose(shown["points"][name], point, rtol=0, atol=1e-9 * scale)
        np.testing.assert_allclose(shown["norms"][name], np.linalg.norm({"uncond": u, "cond": c, "guided": e}[name]),
                                   rtol=1e-12)
    # The plane holds the computed guided ε (up to float32 rounding), so the drawing loses nothing ...
    assert shown["outOfPlane"] <= 1e-5 * scale
    assert want["cond"][1] > 1e-6 * scale  # (and it is a real 2-D picture: ε_cond is not along ε_uncond)
    # ... and the guided tip lies g times the prompt's difference beyond ε_uncond.
    g = SETTINGS["guidance"]
    assert shown["push"] / shown["difference"] == pytest.approx(g, rel=1e-4)
    # What is drawn is these numbers: arrow ends carry them, and the zoomed tips are placed so.
    arrows = p.locator("#guidance-geometry svg.whole line.arrow")
    assert arrows.count() == 3
    for k in range(3):
        arrow = arrows.nth(k)
        name = arrow.get_attribute("data-name")
        assert [float(arrow.get_attribute("data-x")), float(arrow.get_attribute("data-y"))] == shown["points"][name]
    tips = {t.get_attribute("data-name"): (float(t.get_attribute("cx")), float(t.get_attribute("cy")))
            for t in p.locator("#guidance-geometry svg.zoom circle.tip").all()}
    drawn = np.hypot(*np.subtract(tips["guided"], tips["uncond"])) / np.hypot(*np.subtract(tips["cond"], tips["uncond"]))
    assert drawn == pytest.approx(g, rel=1e-3)
    caption = p.locator("#guidance-geometry figcaption").text_content()
    assert f"g = {g}" in caption and f"{shown['push']:.2f}"[:3] in caption
    if index == 3:
        # (level 3 folds inside the refiner's panel: one click opens it)
        p.evaluate("document.getElementById('guidance-geometry').closest('details').open = true")
        both_widths(p, "#guidance-geometry", "guidance-geometry")


@pytest.mark.parametrize("component,blocks", [("text", ["Tokenizer", "Text encoder"]),
                                              ("refiner", ["UNet", "Guidance", "Scheduler"]),
                                              ("upscaler", ["VAE decoder"])])
def test_components_expand_in_place_and_back_by_keyboard(page, component, blocks):
    p = page.page
    p.evaluate("window.sdlens.debug.close()")
    p.wait_for_function("document.getElementById('detail').hidden")
    diagram = p.locator("#overview svg").bounding_box()
    small = p.locator(f'#overview g.component[data-id="{component}"] rect').bounding_box()
    origin = p.evaluate("""() => { const o = document.getElementById('overview'), r = o.getBoundingClientRect();
        return {x: r.x + o.clientLeft, y: r.y + o.clientTop}; }""")
    p.focus(f'#overview g.component[data-id="{component}"]')
    p.keyboard.press("Enter")
    # The box grows out of the clicked component ...
    grew = p.evaluate("window.sdlens.debug.displayed.expand")
    assert grew["id"] == component
    assert grew["from"]["left"] == pytest.approx(small["x"] - origin["x"], abs=3)
    assert grew["from"]["width"] == pytest.approx(small["width"], abs=3)
    # ... until it takes the whole diagram's place.
    assert grew["to"]["width"] == pytest.approx(diagram["width"], abs=1) and grew["to"]["height"] >= diagram["height"] - 1
    p.wait_for_function("document.querySelector('#overview .expanded-box.settled')")
    names = p.locator("#overview .expanded-box .sub-name").all_text_contents()
    assert names == blocks
    box = p.locator("#overview .expanded-box").bounding_box()
    assert box["width"] >= diagram["width"] - 2 and box["height"] >= diagram["height"] - 2
    # A sub-block is a button that brings its part of the panel into view.
    p.locator("#overview button.sub-block").last.focus()
    p.keyboard.press("Enter")
    p.wait_for_function("document.querySelector('#detail .flash')")
    both_widths(p, "#overview", f"expanded-{component}")
    p.keyboard.press("Escape")
    p.wait_for_function("document.getElementById('detail').hidden && document.querySelector('#overview .expanded-box').hidden")
    assert p.evaluate("document.activeElement.dataset.id") == component  # focus back where it was


def test_clip_lesson_explains_contrastive_training(page):
    p = page.page
    p.evaluate("window.sdlens.debug.open('text')")
    lesson = p.locator("#clip-lesson")
    lesson.locator("summary").click()
    text = lesson.text_content()
    assert "contrastive" in text and "picture–caption pairs" in text
    assert p.locator("#clip-lesson rect.cell.match").count() == 4
    toggle = lesson.locator("button.clip-train")
    toggle.click()
    assert toggle.get_attribute("aria-pressed") == "true"
    # The transition to "after training" has ended when every mark shows.
    p.wait_for_function("[...document.querySelectorAll('#clip-lesson text.mark')].every((m) => m.getAttribute('opacity') === '1')")
    both_widths(p, "#clip-lesson", "clip")


def test_held_out_pairs_come_from_the_manifest(page):
    p = page.page
    marked = p.locator("#starters button.starter.held-out")
    p.wait_for_function("document.querySelectorAll('#starters .never-seen').length === 1")
    assert marked.count() == 1 and "red star" in marked.text_content() and "never seen in training" in marked.text_content()
    para = p.locator("#generalisation").text_content()
    for colour, shape in HELD_OUT:
        assert f"{colour} {shape}" in para
    assert "generalisation" in para
    # Ask for the held-out pair: the paragraph says this prompt is one of them.
    p.evaluate("document.getElementById('starter-menu').open = true")  # (a starter closes its menu)
    marked.click()
    p.evaluate("() => window.sdlens.explain({prompt: document.getElementById('prompt').value}).then(() => null)")
    assert "Your prompt, “a red star in the center, white background”, asks for a red star" in \
        " ".join(p.locator("#generalisation .yours").text_content().split())
    # The picture beside it is this run's own image, pixel for pixel.
    assert p.evaluate("""() => { const c = document.querySelector('#generalisation canvas.drawn');
        const shown = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
        const final = window.sdlens.store.main.final.rgba;
        return shown.length === final.length && shown.every((v, i) => v === final[i]); }""")
    both_widths(p, "#generalisation", "generalisation")
    p.evaluate("document.getElementById('starter-menu').open = true")  # (a starter closes its menu)
    both_widths(p, "#starters", "starters")


CARD_AND_TARGET = """() => { const box = (el) => { const r = el.getBoundingClientRect();
        return {top: r.top, bottom: r.bottom, left: r.left, right: r.right}; };
    return {card: box(document.getElementById('tour-card')), target: box(document.querySelector('.tour-target')),
            view: {width: document.documentElement.clientWidth, height: innerHeight}}; }"""


def assert_card_clear_of_target(p, stop):
    """The card and the element it points at do not overlap, and both are on screen."""
    # The tour says a stop is ready once its view has stopped moving; a view that moves after
    # that (a picture decoded later) takes the card with it: both are checked at rest.
    settled(p, ".tour-target")
    settled(p, "#tour-card")
    got = p.evaluate(CARD_AND_TARGET)
    card, target, view = got["card"], got["target"], got["view"]
    overlap = (card["left"] < target["right"] and target["left"] < card["right"]
               and card["top"] < target["bottom"] and target["top"] < card["bottom"])
    assert not overlap, (stop, got)
    assert 0 <= card["top"] and card["bottom"] <= view["height"] + 1 and 0 <= card["left"] and card["right"] <= view["width"] + 1, (stop, got)
    assert target["top"] < view["height"] and target["bottom"] > 0, (stop, got)


def kept_state(p):
    """What the learner has on screen: the form, the current run, the picture, the text size."""
    return p.evaluate("""() => ({prompt: document.getElementById('prompt').value,
        steps: document.getElementById('steps').value, seed: document.getElementById('seed').value,
        guidance: document.getElementById('guidance').value,
        run: JSON.stringify(window.sdlens.store.main.settings),
        image: (() => { const c = document.getElementById('image');
            return Array.from(c.getContext('2d').getImageData(0, 0, c.width, c.height).data.slice(0, 4096)).join(); })(),
        large: document.documentElement.classList.contains('projector'),
        pressed: document.getElementById('text-size').getAttribute('aria-pressed')})""")


def walk_tour(p, on_stop):
    """Start the tour by keyboard and press Enter (Next) through every stop; on_stop(stop) at each."""
    p.focus("#tour-start")
    p.keyboard.press("Enter")
    card = p.locator("#tour-card")
    visited = []
    while True:
        p.wait_for_function("(n) => document.getElementById('tour-card').dataset.ready && "
                            "document.getElementById('tour-card').dataset.ready !== n",
                            arg=visited[-1] if visited else "", timeout=TIMEOUT)
        stop = card.get_attribute("data-ready")
        visited.append(stop)
        on_stop(stop)
        p.keyboard.press("Enter")
        if card.is_hidden():
            break
        assert len(visited) <= 15
    p.wait_for_function("document.getElementById('tour-card').dataset.restored === 'true'", timeout=TIMEOUT)
    return visited


def test_tour_walks_start_to_end_by_keyboard(page):
    p = page.page
    p.fill("#steps", "4")
    # The learner's own prompt and run, which the tour borrows the page from.
    p.evaluate("(s) => window.sdlens.explain(s).then(() => null)", {**SETTINGS, "prompt": "my own red circle", "seed": 11})
    p.fill("#prompt", "my own words, not yet run")
    before = kept_state(p)
    card = p.locator("#tour-card")
    seen = []

    def check(stop):
        seen.append(stop)
        assert card.get_attribute("role") == "dialog" and card.locator("[aria-live]").count() == 1
        # Each stop points at a live view: outlined, on screen, and the focus stays on Next.
        target = p.locator(".tour-target")
        assert target.count() == 1, stop
        assert target.is_visible(), stop
        top = p.evaluate("document.querySelector('.tour-target').getBoundingClientRect().top")
        assert top < 900, stop
        assert_card_clear_of_target(p, stop)
        assert p.evaluate("document.activeElement.id") == "tour-next", stop
        if stop == "never-seen":  # the tour's own run, while it lasts
            assert p.evaluate("window.sdlens.store.main.settings.prompt") == STARTERS[1]
        assert card.locator("#tour-count").text_content().startswith(f"Stop {len(seen)} of ")
        if stop in ("guidance", "never-seen"):
            card.screenshot(path=str(ARTIFACTS / f"lessons-tour-{stop}-1280.png"))

    # (walk_tour also waits until the learner's page is restored)
    visited = walk_tour(p, check)
    assert 8 <= len(visited) <= 15
    assert visited[0] == "welcome" and visited[-1] == "end" and len(set(visited)) == len(visited)
    assert {"generate", "tokens", "clip", "guidance", "upscaler", "never-seen"} <= set(visited)
    assert p.evaluate("document.activeElement.id") == "tour-start"  # back where it started
    assert p.locator(".tour-target").count() == 0
    # The learner's prompt, settings, run and picture are back as they were.
    assert kept_state(p) == before
    assert p.evaluate("window.sdlens.store.main.settings.prompt") == "my own red circle"
    shown = p.evaluate("""() => { const c = document.getElementById('image');
        const px = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
        const f = window.sdlens.store.main.final.rgba; return px.length === f.length && px.every((v, i) => v === f[i]); }""")
    assert shown


@pytest.mark.parametrize("width, height", [(1280, 720), (390, 844)])
def test_tour_card_never_covers_its_target(page, width, height):
    p = page.page
    p.set_viewport_size({"width": width, "height": height})
    try:
        p.fill("#steps", "4")
        before = kept_state(p)
        assert before["large"] is False

        def check(stop):
            assert_card_clear_of_target(p, stop)
            p.screenshot(path=str(ARTIFACTS / f"lessons-tour-{width}x{height}-{stop}.png"))

        visited = walk_tour(p, check)
        assert {"welcome", "prompt", "generate", "tokens", "guidance", "scheduler", "guess", "upscaler", "end"} <= set(visited)
        assert kept_state(p) == before
        # With the larger text (A+ in the tour's card), too: and the tour gives back the size it found.
        p.focus("#tour-start")
        p.keyboard.press("Enter")
        p.wait_for_function("document.getElementById('tour-card').dataset.ready === 'welcome'")
        p.click("#tour-large")
        assert p.get_attribute("#tour-large", "aria-pressed") == "true"
        assert p.get_attribute("#text-size", "aria-pressed") == "true"  # one state, both controls
        stop = "welcome"
        for _ in range(4):
            p.click("#tour-next")
            p.wait_for_function("(n) => (document.getElementById('tour-card').dataset.ready || n) !== n",
                                arg=stop, timeout=TIMEOUT)
            stop = p.get_attribute("#tour-card", "data-ready")
            assert_card_clear_of_target(p, f"{stop} (A+)")
        p.screenshot(path=str(ARTIFACTS / f"lessons-tour-{width}x{height}-large-{stop}.png"))
        p.keyboard.press("Escape")
        p.wait_for_function("document.getElementById('tour-card').dataset.restored === 'true'", timeout=TIMEOUT)
        assert kept_state(p) == before  # A+ off again, as the tour found it
    finally:
        p.set_viewport_size({"width": 1280, "height": 900})


def test_text_size_toggles_from_the_header_by_keyboard(page):
    p = page.page
    button = p.locator("header #text-size")
    assert button.is_visible() and button.get_attribute("aria-pressed") == "false"
    assert button.text_content().startswith("A+")
    size = lambda: p.evaluate("parseFloat(getComputedStyle(document.documentElement).fontSize)")  # noqa: E731
    normal = size()
    p.focus("header #text-size")
    p.keyboard.press("Enter")
    assert button.get_attribute("aria-pressed") == "true" and size() > normal
    assert button.text_content().startswith("A−")
    shot(p, "header", "text-size-large")
    p.keyboard.press("Space")
    assert button.get_attribute("aria-pressed") == "false" and size() == normal
    # The tour started with A+ on leaves it on.
    p.keyboard.press("Enter")
    p.focus("#tour-start")
    p.keyboard.press("Enter")
    p.wait_for_function("document.getElementById('tour-card').dataset.ready === 'welcome'")
    p.keyboard.press("Escape")
    p.wait_for_function("document.getElementById('tour-card').dataset.restored === 'true'", timeout=TIMEOUT)
    assert button.get_attribute("aria-pressed") == "true" and size() > normal
    p.focus("header #text-size")
    p.keyboard.press("Enter")
    assert size() == normal


def test_tour_at_phone_width_and_escape_leaves(page):
    p = page.page
    p.set_viewport_size({"width": 390, "height": 844})
    try:
        before = kept_state(p)
        p.focus("#tour-start")
        p.keyboard.press("Enter")
        p.wait_for_function("document.getElementById('tour-card').dataset.ready === 'welcome'")
        p.keyboard.press("ArrowRight")
        p.wait_for_function("document.getElementById('tour-card').dataset.ready === 'prompt'")
        box = p.locator("#tour-card").bounding_box()
        assert box["x"] >= 0 and box["x"] + box["width"] <= 390
        p.screenshot(path=str(ARTIFACTS / "lessons-tour-390.png"))
        p.keyboard.press("ArrowRight")  # the stop that generates: Esc while it runs stops the run
        p.wait_for_function("document.getElementById('tour-card').dataset.stop === 'generate'")
        p.keyboard.press("Escape")
        assert p.locator("#tour-card").is_hidden() and p.evaluate("document.activeElement.id") == "tour-start"
        p.wait_for_function("document.getElementById('tour-card').dataset.restored === 'true'", timeout=TIMEOUT)
        after = kept_state(p)
        assert after == before, (before, after)
    finally:
        p.set_viewport_size({"width": 1280, "height": 900})


def test_guidance_off_draws_one_arrow(page):
    p = page.page
    p.evaluate("(s) => window.sdlens.explain(s).then(() => null)", {**SETTINGS, "guidance": 1})
    p.evaluate("window.sdlens.debug.open('refiner')")
    shown = p.evaluate("window.sdlens.debug.displayed.guidanceGeometry")
    assert "uncond" not in shown["points"] and shown["push"] is None
    c = np.array(p.evaluate("(i) => Array.from(window.sdlens.store.main.steps[i].tensors.eps_cond)", shown["index"]),
                 np.float32)
    assert shown["points"]["cond"][0] == pytest.approx(float(np.linalg.norm(c.astype(np.float64))), rel=1e-12)
    assert p.locator("#guidance-geometry svg.whole line.arrow").count() == 1
    assert "≤ 1 is off" in p.locator("#guidance-geometry figcaption").text_content()
