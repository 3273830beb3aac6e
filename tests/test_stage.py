"""The stage: the prompt, Generate, the big picture, the timestep slider and the model's three
parts on one screen; the slider drives the big picture; an opened part fits two screens. In
Chromium on WASM with the default model (models/shapes), one page and one model load."""

import json
import shutil

import numpy as np
import pytest

import serve

from .test_browser import ARTIFACTS, Page, browser, server, settled  # noqa: F401  (shared fixtures)

DEFAULT_MODEL = serve.ROOT / "models" / "shapes"
STAGE = ["#prompt", "#generate", "#image", "#tl-slider", "#overview"]
pytestmark = pytest.mark.skipif(not (DEFAULT_MODEL / "manifest.json").is_file(), reason="models/shapes is not built")


@pytest.fixture(scope="module")
def models_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("stage-models")
    shutil.copytree(DEFAULT_MODEL, folder / "shapes")
    return folder


@pytest.fixture(scope="module")
def page(browser, server):  # noqa: F811
    context = browser.new_context(viewport={"width": 1280, "height": 720})
    page = Page(context, server, "?backend=wasm").ready(unfold=False)
    yield page
    assert page.errors == [] and page.origins == {server.url}
    context.close()


def shot(p, name):
    ARTIFACTS.mkdir(exist_ok=True)
    p.screenshot(path=str(ARTIFACTS / f"stage-{name}.png"))


def in_viewport(p, selector):
    return p.evaluate("""(s) => { const r = document.querySelector(s).getBoundingClientRect();
        return r.width > 0 && r.top >= 0 && r.left >= 0 && r.bottom <= innerHeight && r.right <= innerWidth; }""", selector)


def canvas_pixels(p, selector="#image"):
    got = p.evaluate("""(s) => { const c = document.querySelector(s);
        return {w: c.width, h: c.height, data: Array.from(c.getContext('2d').getImageData(0, 0, c.width, c.height).data)}; }""",
                     selector)
    return np.array(got["data"], np.uint8).reshape(got["h"], got["w"], 4)


def stored(p, expression):
    got = p.evaluate(f"""() => {{ const x = {expression}; return {{w: x.width, h: x.height, data: Array.from(x.rgba)}}; }}""")
    return np.array(got["data"], np.uint8).reshape(got["h"], got["w"], 4)


def sizes(p):
    for width, height, name in [(1280, 720, "1280x720"), (1280, 900, "1280x900"), (390, 844, "390x844")]:
        p.set_viewport_size({"width": width, "height": height})
        p.evaluate("window.scrollTo(0, 0)")
        settled(p, "#stage")
        yield name


def test_the_stage_is_one_screen_before_and_after_a_run(page):
    p = page.page
    p.wait_for_selector("#tl-slider")
    for name in sizes(p):
        shot(p, f"{name}-before")
        wanted = STAGE if name != "390x844" else ["#prompt", "#generate", "#image"]
        assert all(in_viewport(p, s) for s in wanted), (name, [s for s in wanted if not in_viewport(p, s)])
        assert p.locator("#image").bounding_box()["width"] >= 256
    # The folded settings and the starters are one click each, and hidden until then.
    p.set_viewport_size({"width": 1280, "height": 720})
    assert not p.locator("#steps").is_visible() and not p.locator("#starters button").first.is_visible()
    p.locator("#more-settings > summary").click()
    assert p.locator("#steps").is_visible()
    p.locator("#more-settings > summary").click()
    # Starters come after Generate in the tab order.
    order = p.evaluate("""() => [...document.querySelectorAll('button, summary, input, select, textarea')]
        .map((e) => e.id || e.parentElement.id)""")
    assert order.index("generate") < order.index("starter-menu")
    p.evaluate("window.sdlens.explain({steps: 12})")
    for name in sizes(p):
        shot(p, f"{name}-after")
        wanted = STAGE if name != "390x844" else ["#prompt", "#generate", "#image"]
        assert all(in_viewport(p, s) for s in wanted), name
    p.set_viewport_size({"width": 1280, "height": 720})


def test_the_slider_drives_the_big_picture(page):
    p = page.page
    if p.evaluate("window.sdlens.store.main?.steps.length || 0") < 3:
        p.evaluate("window.sdlens.explain({steps: 12})")
    n = p.evaluate("window.sdlens.store.main.steps.length")
    final = stored(p, "window.sdlens.store.main.final")
    assert np.array_equal(canvas_pixels(p), final)  # the finished image, at the last step
    assert p.evaluate("window.sdlens.debug.displayed.stage")["kind"] == "final"

    slider = p.locator("#tl-slider")
    slider.focus()
    p.keyboard.press("Home")  # the slider's own keys: a real input event
    for _ in range(4):
        p.keyboard.press("ArrowRight")
    shown = p.evaluate("window.sdlens.debug.displayed.stage")
    assert shown["step"] == 4 and shown["kind"] == "x0" and p.evaluate("window.sdlens.store.selected") == 4
    step4 = stored(p, "window.sdlens.store.main.steps[4].preview")
    assert np.array_equal(canvas_pixels(p), step4)
    assert not np.array_equal(step4, final)
    total = p.evaluate("window.sdlens.store.main.settings.steps")
    assert f"Step 5 of {total}" in p.locator("#stage-caption").text_content() and "x̂₀" in p.locator("#stage-caption").text_content()
    assert p.locator("#previews figure.selected").get_attribute("data-index") == "4"
    for name in sizes(p):
        shot(p, f"{name}-middle-step")
    p.set_viewport_size({"width": 1280, "height": 720})

    # x_t: the noisy latent at that step, through the same decoder the page uses for x̂₀.
    p.locator('input[name="stage-kind"][value="xt"]').check()
    p.wait_for_function("window.sdlens.debug.displayed.stage.kind === 'xt'")
    xt = p.evaluate("""async () => { const s = window.sdlens.store.main.steps[4];
        const d = await window.sdlens.decode(s.tensors.latent, s.shape); return {w: d.width, h: d.height, data: Array.from(d.rgba)}; }""")
    assert np.array_equal(canvas_pixels(p), np.array(xt["data"], np.uint8).reshape(xt["h"], xt["w"], 4))
    assert "x_t" in p.locator("#stage-caption").text_content()
    shot(p, "1280x720-middle-step-xt")
    p.locator('input[name="stage-kind"][value="x0"]').check()

    slider.focus()
    p.keyboard.press("End")
    assert p.evaluate("window.sdlens.debug.displayed.stage")["kind"] == "final"
    assert np.array_equal(canvas_pixels(p), final)
    assert n == int(total)  # DDIM: one stored step per step


def test_play_animates_the_run_on_the_stage(page):
    p = page.page
    p.evaluate("window.sdlens.store.select(0)")
    p.evaluate("""() => { window.seen = []; window.sdlens.store.addEventListener('select',
        () => window.seen.push(window.sdlens.debug.displayed.stage.step)); }""")
    p.locator("#tl-play").click()
    p.wait_for_function("window.sdlens.debug.displayed.stage.kind === 'final'", timeout=10_000)
    seen = p.evaluate("window.seen")
    assert seen == list(range(1, len(seen) + 1))  # every step in turn, on the big picture


def test_explain_off_offers_x0_only(page):
    p = page.page
    p.evaluate("window.sdlens.generate({steps: 3})")
    assert p.locator('input[name="stage-kind"][value="xt"]').is_disabled()
    assert "Explain every step" in p.locator("#stage-kind-reason").text_content()
    p.evaluate("window.sdlens.explain({steps: 12})")
    assert not p.locator('input[name="stage-kind"][value="xt"]').is_disabled()


def test_an_opened_part_fits_two_screens(page):
    p = page.page
    p.set_viewport_size({"width": 1280, "height": 800})
    p.evaluate("window.sdlens.store.select(5)")
    for part in ["text", "refiner", "upscaler"]:
        p.evaluate(f"window.sdlens.debug.open('{part}')")
        p.wait_for_function("!document.getElementById('detail').hidden")
        settled(p, "#detail")  # the box grows in place
        height = p.evaluate("document.scrollingElement.scrollHeight")
        assert height <= 1600, (part, height)
        # The other two parts stay on the stage, in small.
        assert p.locator(".expanded-parts button").count() == 3
        assert p.locator(".expanded-parts button:not([aria-current])").evaluate_all("(bs) => bs.every((b) => b.offsetWidth > 0)")
        p.evaluate("window.scrollTo(0, 0)")
        p.screenshot(path=str(ARTIFACTS / f"stage-1280x800-open-{part}.png"), full_page=True)
        for name in sizes(p):
            shot(p, f"{name}-open-{part}")
        p.set_viewport_size({"width": 1280, "height": 800})
        p.evaluate("window.sdlens.debug.close()")
        p.wait_for_function("document.getElementById('detail').hidden")
    # The short view: one picture per tensor, each from the decoder the strip uses.
    p.evaluate("window.sdlens.debug.open('refiner')")
    p.wait_for_function("window.sdlens.debug.displayed.refiner.pictures.every((x) => x.by)")
    pictures = p.evaluate("window.sdlens.debug.displayed.refiner.pictures")
    assert [x["name"] for x in pictures] == ["latent", "eps_uncond", "eps_cond", "eps_guided", "x0"]
    # Whole timesteps print as integers; every number is one click away.
    t = p.locator("#detail table.few-rows tr[data-name=timestep] td").nth(1).text_content()
    assert t == str(round(p.evaluate("window.sdlens.store.step().timestep")))
    assert not p.locator("#detail .scheduler table").is_visible()
    p.locator("#detail details.all-numbers summary").click()
    assert p.locator("#detail .scheduler table").is_visible()
    p.evaluate("window.sdlens.store.select(window.sdlens.store.main.steps.length - 1)")
    assert "the end" in p.locator("#detail table.few-rows").text_content()
    p.evaluate("window.sdlens.debug.close()")


def test_labels_are_12px_or_more_and_disabled_controls_say_why(page):
    p = page.page
    p.set_viewport_size({"width": 1280, "height": 800})
    p.evaluate("window.sdlens.debug.open('text')")
    p.wait_for_function("!document.getElementById('detail').hidden")
    settled(p, "#detail")
    labels = p.locator("#detail .row-labels li").all_text_contents()
    assert labels[0] == "⟨start⟩" and "red" in labels
    small = p.evaluate("""() => [...document.querySelectorAll('#stage *')]
        .filter((e) => e.offsetWidth > 0 && [...e.childNodes].some((n) => n.nodeType === 3 && n.textContent.trim()))
        .filter((e) => parseFloat(getComputedStyle(e).fontSize) < 12).map((e) => e.textContent.trim().slice(0, 30))""")
    assert small == []
    p.evaluate("window.sdlens.debug.close()")
    p.locator("#more-settings > summary").click()
    p.select_option("#scheduler", "ddim")
    assert p.locator("#karras").is_disabled()
    reason = p.locator("#karras-reason")
    assert reason.is_visible() and "DDIM" in reason.text_content()
    p.locator("#more-settings > summary").click()


@pytest.mark.parametrize("width, height", [(1280, 720), (390, 844)])
def test_an_opened_level_comes_into_view_and_esc_goes_back(page, width, height):
    """Opened from the top of the page, the panel comes up on screen (not just its heading under the
    grown diagram); Esc scrolls back to where the reader was. Smoothly, or at once with reduced motion."""
    p = page.page
    p.set_viewport_size({"width": width, "height": height})
    try:
        for motion in ("no-preference", "reduce"):
            p.emulate_media(reduced_motion=motion)
            p.evaluate("window.scrollTo(0, 0)")
            settled(p, "#stage")
            p.locator('#overview g.component[data-id="refiner"]').dispatch_event("click")
            p.wait_for_function("!document.getElementById('detail').hidden")
            settled(p, "#detail")  # the smooth scroll, and the box growing in place, have ended
            top = p.evaluate("document.getElementById('detail').getBoundingClientRect().top")
            assert -2 <= top <= 0.4 * height, (motion, top)
            assert p.evaluate("window.scrollY") > 0
            if motion == "no-preference":
                shot(p, f"{width}x{height}-opened-in-view")
            p.keyboard.press("Escape")
            p.wait_for_function("document.getElementById('detail').hidden")
            p.wait_for_function("window.scrollY === 0")  # back where the reader was
    finally:
        p.emulate_media(reduced_motion="no-preference")
