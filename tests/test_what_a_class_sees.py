"""What a class sees, in Chromium on WASM with the default model: the model card and the note on
words it never read, one current run that every view, link and download follows (after runs with
"Explain every step" off, Stop and Compare), the keyboard, where the time went, g ≤ 1 said plainly,
and numbers and labels a student can read. Screenshots of each view at 1280×900 and 390 px wide
go to test-artifacts/class-*.png."""

from __future__ import annotations

import io
import json
import shutil
from urllib.parse import parse_qs, urlsplit

import numpy as np
import pytest
from PIL import Image

import serve
from export.shapes import scenes

from .conftest import ROOT
# `server` serves this module's `models_dir`
from .test_browser import Page, browser, server  # noqa: F401  (shared fixtures)

ARTIFACTS = ROOT / "test-artifacts"
DEFAULT_MODEL = serve.ROOT / "models" / "shapes"
TIMEOUT = 120_000
RED = "a big red circle in the center, white background"
BLUE = "a small blue square on the left, beige background"

pytestmark = pytest.mark.skipif(not (DEFAULT_MODEL / "manifest.json").is_file(), reason="models/shapes is not built")


@pytest.fixture(scope="module")
def models_dir(tiny_model_dir, tmp_path_factory):
    """The default model, and the tiny random model with a description of its own (as a full SD
    model's manifest would carry) but no vocabulary."""
    folder = tmp_path_factory.mktemp("class-models")
    shutil.copytree(DEFAULT_MODEL, folder / "shapes")
    shutil.copytree(tiny_model_dir, folder / "tiny-random")
    path = folder / "tiny-random" / "manifest.json"
    manifest = json.loads(path.read_text())
    manifest["description"] = "Random weights: a model for testing, trained on nothing at all."
    path.write_text(json.dumps(manifest))
    return folder


@pytest.fixture(scope="module")
def page(browser, server):  # noqa: F811
    ARTIFACTS.mkdir(exist_ok=True)
    context = browser.new_context(viewport={"width": 1280, "height": 900}, accept_downloads=True)
    context.grant_permissions(["clipboard-read", "clipboard-write"], origin=server.url)
    page = Page(context, server, "?backend=wasm").ready()
    yield page
    assert page.errors == [] and page.origins == {server.url}
    context.close()


def shot(page, selector, name, width=1280):
    p = page.page
    if width != p.viewport_size["width"]:
        p.set_viewport_size({"width": width, "height": 900 if width > 600 else 844})
        page.settled(selector)
    try:
        p.locator(selector).first.screenshot(path=str(ARTIFACTS / f"class-{name}-{width}.png"))
        if width < 600:
            assert p.evaluate("document.documentElement.scrollWidth") <= width, f"{name} overflows at {width} px"
    finally:
        if width != 1280:
            p.set_viewport_size({"width": 1280, "height": 900})
            page.settled(selector)


def both_widths(page, selector, name):
    shot(page, selector, name)
    shot(page, selector, name, 390)


def image_pixels(p):
    """What the big image canvas shows, as (h, w, 4) uint8."""
    data = p.evaluate("""() => { const c = document.getElementById('image');
        return {w: c.width, h: c.height, px: Array.from(c.getContext('2d').getImageData(0, 0, c.width, c.height).data)}; }""")
    return np.array(data["px"], np.uint8).reshape(data["h"], data["w"], 4)


def main_final(p):
    data = p.evaluate("""() => { const f = window.sdlens.store.main.final;
        return {w: f.width, h: f.height, px: Array.from(f.rgba)}; }""")
    return np.array(data["px"], np.uint8).reshape(data["h"], data["w"], 4)


def saved_png(p):
    with p.expect_download() as info:
        p.click("#save-png")
    return np.asarray(Image.open(io.BytesIO(open(info.value.path(), "rb").read())).convert("RGBA"))


def address(p):
    return parse_qs(urlsplit(p.url).query)


def copied_link(p):
    # What the button put on the clipboard (emptied first, so an earlier copy cannot pass for this
    # one), or the link it showed to copy by hand. The clipboard, not the button's "Link copied",
    # which goes after 2 s: a busy machine's test run can miss it while the copy itself worked.
    p.evaluate("navigator.clipboard.writeText('')")
    p.locator("#copy-link").click()
    text = p.evaluate("""async () => {
        for (let i = 0; i < 300; i++) {
            const field = document.getElementById('link-text');
            if (!field.hidden) return field.value;
            const copied = await navigator.clipboard.readText().catch(() => '');
            if (copied) return copied;
            await new Promise((resolve) => setTimeout(resolve, 100));
        }
        return null;
    }""")
    assert text, "Copy link put nothing on the clipboard and showed no link within 30 s"
    return parse_qs(urlsplit(text).query)


def done(p):
    p.wait_for_function("document.getElementById('progress-text').textContent.startsWith('Done')"
                        " && !document.getElementById('generate').disabled", timeout=TIMEOUT)


def generate_from_the_form(p, prompt, steps, explain):
    p.fill("#prompt", prompt)
    p.fill("#steps", str(steps))
    p.set_checked("#explain", explain)
    p.click("#generate")
    done(p)
    # A run started with Generate plays once on the stage (from 300 ms after it ends), then rests
    # on the finished image. The stage asks to play (tl-play's data-playing "soon", then "1") as the
    # run's pictures are in, before Generate is enabled again: so once done, not playing means played.
    p.wait_for_function("window.sdlens.debug.displayed.stage?.kind === 'final' && !document.getElementById('tl-play').dataset.playing",
                        timeout=TIMEOUT)


# ---------------------------------------------------------------------------------------------
# 0. A first visit shows the model working; the keyboard reaches Generate


def test_a_first_visit_runs_the_starter_by_itself(page):
    """Nothing was pressed: the page ran the model's first starter prompt, explained, and shows it."""
    p = page.page
    manifest = json.loads((DEFAULT_MODEL / "manifest.json").read_text())
    assert p.evaluate("window.sdlens.startup.firstVisit") == "ran"
    main = p.evaluate("window.sdlens.store.main.settings")
    assert main["prompt"] == manifest["starter_prompts"][0] == p.locator("#prompt").input_value()
    assert int(main["steps"]) == manifest["defaults"]["steps"]
    assert p.evaluate("window.sdlens.store.main.steps.length") == manifest["defaults"]["steps"]
    # It plays once by itself, once its step pictures are decoded (after the image), then rests on the image.
    p.wait_for_function("window.sdlens.startup.played && window.sdlens.debug.displayed.stage?.kind === 'final'"
                        " && !document.getElementById('tl-play').dataset.playing", timeout=TIMEOUT)
    assert p.evaluate("window.sdlens.startup.played > window.sdlens.startup.pictures")
    assert (image_pixels(p) == main_final(p)).all()
    assert not p.locator("#generate").is_disabled()


def test_a_link_runs_its_own_settings_and_not_the_starter(browser, server):  # noqa: F811
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    try:
        linked = Page(context, server, f"?backend=wasm&prompt={BLUE.replace(' ', '+')}&seed=5&steps=3").ready()
        p = linked.page
        assert p.evaluate("window.sdlens.startup.firstVisit") == "link"
        assert p.evaluate("window.sdlens.startup.firstRun") is None  # the starter never started
        p.wait_for_function("window.sdlens.store.main?.final", timeout=TIMEOUT)
        settings = p.evaluate("window.sdlens.store.main.settings")
        assert (settings["prompt"], settings["seed"], settings["steps"]) == (BLUE, "5", "3")
        assert linked.errors == []
    finally:
        context.close()


def test_ctrl_enter_generates_from_the_prompt_and_focus_stays(page):
    p = page.page
    p.fill("#prompt", RED)
    p.fill("#steps", "2")
    p.locator("#prompt").focus()
    p.keyboard.press("Control+Enter")
    done(p)
    assert p.evaluate("window.sdlens.store.main.settings.prompt") == RED  # no new line was typed
    assert p.evaluate("document.activeElement.id") == "prompt"
    p.fill("#steps", "1")
    p.locator("#seed").focus()
    p.keyboard.press("Meta+Enter")  # Cmd+Enter on a Mac
    done(p)
    assert p.evaluate("window.sdlens.store.main.steps.length") == 1
    assert p.evaluate("document.activeElement.id") == "seed"
    p.locator("#generate").click()  # disabled while it runs, then focused again
    done(p)
    assert p.evaluate("document.activeElement.id") == "generate"
    p.fill("#steps", "25")


# ---------------------------------------------------------------------------------------------
# 1. The model card and words the model never read


def test_model_card_is_by_the_model_picker(page):
    p = page.page
    card = p.locator("#model-card")
    assert card.is_visible()
    manifest = json.loads((DEFAULT_MODEL / "manifest.json").read_text())
    assert manifest["description"] in card.text_content()
    # The prompt box starts with a prompt the model can draw, not empty under a grey example.
    assert p.input_value("#prompt") == manifest["starter_prompts"][0]
    for colour, shape in manifest["model_card"]["held_out"]:
        assert f"{colour} {shape}" in p.locator("#model-card .card-held-out").text_content()
    p.locator("#model-card summary").click()
    assert " · ".join(scenes.vocabulary()) in p.locator("#model-card .card-vocabulary").text_content()
    assert manifest["model_card"]["held_out_why"] in card.text_content()
    both_widths(page, "#controls", "model-card")
    p.locator("#model-card summary").click()


@pytest.mark.parametrize("prompt", ["a cute puppy", "A red star, with 猫 on the LEFT", RED])
def test_words_outside_the_vocabulary_are_named_before_the_run(page, prompt):
    p = page.page
    p.fill("#prompt", prompt)
    note = p.locator("#prompt-vocabulary")
    known = set(scenes.vocabulary())
    unknown = list(dict.fromkeys(w for w in scenes.words(prompt) if w not in known))
    if not unknown:
        assert not note.is_visible()
        return
    assert note.is_visible()
    text = note.text_content()
    assert f"only knows the {len(known)} words" in text
    assert all(f"“{w}”" in text for w in unknown) and not any(f"“{w}”" in text for w in known)
    if "red star" in prompt.lower():
        assert "“red star” never appeared together" in text
    if prompt == "a cute puppy":
        both_widths(page, "#controls label:has(#prompt)", "vocabulary-note")


def test_an_off_vocabulary_result_says_why_beside_the_picture(page):
    p = page.page
    note = p.locator("#result-vocabulary")
    generate_from_the_form(p, "a cute puppy on the beach", 2, explain=False)
    assert note.is_visible()
    text = note.text_content()
    assert "grey or meaningless" in text and all(f"“{w}”" in text for w in ("cute", "puppy", "beach"))
    assert "“on”" not in text and "“the”" not in text  # words it knows are not blamed
    # beside the result: right under the big picture, on screen with it
    image, box = p.locator("#image").bounding_box(), note.bounding_box()
    assert 0 <= box["y"] - (image["y"] + image["height"]) < 40
    both_widths(page, ".stage-picture", "off-vocabulary-result")
    # the next run, in words it knows, clears it
    generate_from_the_form(p, RED, 2, explain=False)
    assert not note.is_visible()


def test_another_model_shows_its_own_card(page):
    p = page.page
    p.select_option("#model", "tiny-random")
    p.wait_for_function("document.getElementById('model-card').textContent.includes('Random weights')", timeout=TIMEOUT)
    p.wait_for_function("!document.getElementById('generate').disabled", timeout=TIMEOUT)
    p.fill("#prompt", "a cute puppy")
    assert not p.locator("#prompt-vocabulary").is_visible()  # no vocabulary in its manifest: nothing to claim
    p.select_option("#model", "shapes")
    p.wait_for_function("document.getElementById('model-card').textContent.includes('Never shown')", timeout=TIMEOUT)
    p.wait_for_function("!document.getElementById('generate').disabled", timeout=TIMEOUT)
    assert p.locator("#prompt-vocabulary").is_visible()


# ---------------------------------------------------------------------------------------------
# 3. One current run


def assert_everything_shows(p, prompt, steps):
    """Every view, the address bar, Copy link and Save PNG describe the run of `prompt`."""
    run = p.evaluate("() => ({...window.sdlens.store.main.settings, n: window.sdlens.store.main.steps.length})")
    assert run["prompt"] == prompt and run["n"] == steps
    final = main_final(p)
    assert np.array_equal(image_pixels(p), final)
    assert np.array_equal(saved_png(p), final)
    assert address(p)["prompt"] == [prompt]
    assert copied_link(p)["prompt"] == [prompt]
    assert p.locator("#previews canvas").count() == steps
    assert f"of {steps} ·" in p.locator("#tl-label").text_content()
    assert prompt in p.locator("#article").text_content()
    p.evaluate("window.sdlens.debug.open('text')")
    ids = p.evaluate("window.sdlens.debug.displayed.text.ids")
    assert ids == p.evaluate("(s) => window.sdlens.tokenize(s).then((t) => t.ids)", prompt)


def test_every_view_follows_the_current_run(page):
    p = page.page
    generate_from_the_form(p, RED, 3, explain=True)
    assert_everything_shows(p, RED, 3)

    # Explain off: still the current run, everywhere.
    generate_from_the_form(p, BLUE, 2, explain=False)
    assert_everything_shows(p, BLUE, 2)
    p.evaluate("window.sdlens.debug.open('refiner')")
    assert "“Explain every step” off" in p.locator("#detail").text_content()
    both_widths(page, "#detail", "explain-off-refiner")

    # Stop: the run before comes back whole (image, strip, explainer, link, download).
    p.set_checked("#explain", True)
    p.evaluate("() => { window.longRun = window.sdlens.explain({prompt: 'a green star', steps: 300}); }")
    # Step 2 or any later one: a poll can miss a step's line when steps are quick.
    p.wait_for_function("Number((/^Step (\\d+) /.exec(document.getElementById('progress-text').textContent) || [])[1]) >= 2",
                        timeout=TIMEOUT)
    # The stage shows the new run's steps as they come (x̂₀, live), not the old picture
    assert p.evaluate("window.sdlens.debug.displayed.stage")["kind"] == "x0"
    p.click("#stop")
    assert p.evaluate("window.longRun")["cancelled"] is True
    assert "Stopped. Showing the previous run again" in p.locator("#progress-text").text_content()
    assert_everything_shows(p, BLUE, 2)
    # The form shows the run on screen, not the stopped request's prompt and 300 steps.
    assert p.input_value("#prompt") == BLUE and p.input_value("#steps") == "2"
    assert p.input_value("#seed") == p.evaluate("window.sdlens.store.main.settings.seed")
    assert p.locator("#image.pending").count() == 0

    # Compare: A is the current run; the progress line is A's, not B's.
    p.fill("#prompt", RED)
    p.fill("#steps", "3")
    p.select_option("#compare-mode", "prompt")
    p.fill("#compare-prompt", "a big blue circle in the center, white background")
    p.click("#compare-run")
    p.wait_for_function("""() => !document.querySelector('#compare-run').disabled
        && window.sdlens.store.runs.get('compare')?.final""", timeout=TIMEOUT)
    assert_everything_shows(p, RED, 3)
    summary = p.evaluate("""() => import('/timings.js').then((m) =>
        m.timingSummary(window.sdlens.store.main.timings, window.sdlens.backend.ep))""")
    assert p.locator("#progress-text").text_content() == summary
    assert address(p)["compare"] == ["a big blue circle in the center, white background"]
    p.evaluate("window.sdlens.debug.close()")


def test_a_bad_b_value_is_named_by_b_and_a_is_kept(page):
    p = page.page
    before = p.evaluate("window.sdlens.store.main.settings.prompt")
    p.select_option("#compare-mode", "steps")
    p.fill("#compare-steps", "0")
    p.click("#compare-run")
    p.wait_for_function("document.getElementById('compare-b-message').textContent.includes('steps must be')")
    assert p.locator("#compare-b-message").is_visible()
    assert p.locator("#steps-message").text_content() == ""  # not by A's field in the form
    assert p.evaluate("window.sdlens.store.main.settings.prompt") == before  # A was not redone for nothing
    both_widths(page, ".compare-controls", "compare-b-error")
    p.fill("#compare-steps", "2")
    p.select_option("#compare-mode", "prompt")


def test_a_starter_pair_shows_where_b_went(page):
    p = page.page
    p.evaluate("window.scrollTo(0, 0)")
    p.evaluate("document.getElementById('starter-menu').open = true")  # (a starter closes its menu)
    p.locator("#starters button.starter.pair").first.click()
    # The smooth scroll has ended when the section stops moving.
    p.wait_for_function("document.activeElement.id === 'compare-run'", timeout=TIMEOUT)
    page.settled("#compare-section")
    assert "B is in this field" in p.locator("#compare-status").text_content()
    top = p.evaluate("document.getElementById('compare-section').getBoundingClientRect().top")
    assert -2 <= top < 900  # scrolled to (a fraction of a pixel above the top is still "there")


# ---------------------------------------------------------------------------------------------
# 4. Keyboard


def test_space_presses_a_focused_button_and_drives_the_timeline_only_from_it(page):
    p = page.page
    playing = "document.getElementById('tl-play').textContent.includes('pause')"
    p.evaluate("document.getElementById('starter-menu').open = true")  # (a starter closes the menu)
    starter = p.locator("#starters button.starter.prompt").nth(1)
    starter.focus()
    p.keyboard.press(" ")
    assert p.locator("#prompt").input_value() == starter.text_content()
    assert not p.evaluate(playing)
    selected = p.evaluate("window.sdlens.store.selected")
    p.keyboard.press("ArrowLeft")  # a starter has the focus: the timeline stays put
    assert p.evaluate("window.sdlens.store.selected") == selected

    p.locator("#copy-link").focus()
    p.keyboard.press(" ")
    p.wait_for_function("document.getElementById('copy-link').textContent === 'Link copied' "
                        "|| !document.getElementById('link-text').hidden")
    assert not p.evaluate(playing)

    p.fill("#steps", "1")
    p.set_checked("#explain", False)
    p.locator("#generate").focus()
    p.keyboard.press(" ")
    done(p)
    assert p.evaluate("window.sdlens.store.main.steps.length") == 1
    p.set_checked("#explain", True)

    # The timeline's own controls, and nothing focused, still drive it.
    p.evaluate("document.activeElement.blur()")
    p.keyboard.press(" ")
    assert p.evaluate(playing)
    p.locator("#tl-play").focus()
    p.keyboard.press(" ")  # the play button, pressed: pause
    assert not p.evaluate(playing)


# ---------------------------------------------------------------------------------------------
# 5. g ≤ 1, 6. numbers and labels, 7. where the time went


def test_g_at_most_one_is_said_plainly_and_is_true(page):
    p = page.page
    images = []
    for g in ("0", "1"):
        result = p.evaluate("(g) => window.sdlens.explain({prompt: 'a red star', steps: 2, guidance: g})"
                            ".then((r) => Array.from(r.rgba))", g)
        images.append(result)
    assert images[0] == images[1]  # what the page says is what happens
    assert "g ≤ 1 switches guidance off" in p.locator("#guidance-message").text_content()
    p.evaluate("window.sdlens.debug.open('refiner')")
    assert "g = 0 and g = 1 give the same image" in p.locator("#detail .guidance-below-one").text_content()
    assert "g = 0 and g = 1 give the same" in p.locator("#article").text_content()
    assert "every g ≤ 1 gives the same image as g = 1" in p.locator("#sweep-section .hint").text_content()
    p.fill("#guidance", "45")
    assert "far above" in p.locator("#guidance-message").text_content()
    both_widths(page, "#controls .row", "guidance-advice")
    p.fill("#guidance", "7.5")
    assert p.locator("#guidance-message").text_content() == ""


def test_numbers_and_labels_a_student_can_read(page):
    p = page.page
    p.evaluate("window.sdlens.explain({prompt: 'a red 猫 circle', steps: 3, seed: '18446744073709551615'}).then(() => null)")
    # The seed box shows a whole 20-digit seed.
    fits = p.evaluate("() => { const s = document.getElementById('seed'); return s.scrollWidth <= s.clientWidth; }")
    assert fits
    # Tokens: no raw </w>, a character's bytes say which word they belong to.
    p.evaluate("window.sdlens.debug.open('text')")
    chips = p.locator("#detail ol.tokens li:not([hidden]) .tok").all_text_contents()
    assert not any("</w>" in c or "\\x" in c for c in chips)
    assert p.locator("#detail ol.tokens li .of-word", has_text="猫").count() >= 2
    both_widths(page, "#detail", "tokens")
    # The scheduler's numbers in words; signs written once; a colour scale by every heatmap.
    p.evaluate("window.sdlens.debug.open('refiner')")
    p.evaluate("(i) => window.sdlens.store.select(i)", 1)
    text = p.locator("#detail").text_content()
    assert "alpha_prod_t_prev" not in text and "x0_model_coef" not in text
    assert "+ -" not in text and "+ −" not in text
    assert p.locator("#detail .strip .legend").count() == p.locator("#detail .strip:has(figure canvas) h4").count() - 1
    shown = p.evaluate("window.sdlens.debug.displayed.refiner.coefficients")
    rows = p.evaluate("() => [...document.querySelectorAll('#detail .scheduler tbody tr')].map((r) => r.dataset.name)")
    assert rows == list(shown)  # every number the scheduler computed, and only those
    both_widths(page, "#detail", "refiner")
    # The upscaler: a readable factor, the picture big enough to see.
    p.evaluate("window.sdlens.debug.open('upscaler')")
    text = p.locator("#detail").text_content()
    factor = json.loads((DEFAULT_MODEL / "manifest.json").read_text())["vae_scaling_factor"]
    assert str(factor) not in text and f"{factor:.3f}" in text
    assert p.locator("#detail figure.result canvas").bounding_box()["width"] >= 256
    both_widths(page, "#detail", "upscaler")
    p.evaluate("window.sdlens.debug.close()")


def test_overview_labels_fit_their_boxes_at_both_widths(page):
    p = page.page
    for width in (1280, 390):
        p.set_viewport_size({"width": width, "height": 900})
        page.settled("#overview")
        report = p.evaluate("""() => [...document.querySelectorAll('#overview g.component')].map((g) => {
            const box = g.querySelector('rect').getBoundingClientRect();
            return [...g.querySelectorAll('text')].map((t) => { const r = t.getBoundingClientRect();
                return {inside: r.left >= box.left && r.right <= box.right, px: r.height}; }); }).flat()""")
        assert all(t["inside"] for t in report), (width, report)
        assert min(t["px"] for t in report) >= 11, (width, report)  # legible on screen
        shot(page, "#overview", "overview", width)
    p.set_viewport_size({"width": 1280, "height": 900})


def test_where_the_time_went_adds_up(page):
    p = page.page
    result = p.evaluate("window.sdlens.explain({prompt: 'a red circle', steps: 3})"
                        ".then((r) => r.timings)")
    parts = result["parts"]
    assert [x["key"] for x in parts] == ["load", "prepare", "text", "steps", "report", "previews", "decode", "other"]
    assert abs(sum(x["ms"] for x in parts) - result["wall_ms"]) < 0.01
    assert all(x["ms"] >= 0 for x in parts), parts
    assert parts[3]["ms"] == pytest.approx(sum(result["step_ms"]))
    # the default model's step pictures are VAE decodes of x̂₀: a cost of their own, named
    assert parts[5]["ms"] > 0 and parts[5]["label"] == "decoding each step's picture (x̂₀, by the VAE)"
    timing = p.locator("#timing").text_content()
    assert all(x["label"] in timing for x in parts)
    both_widths(page, "#status-area", "progress")
