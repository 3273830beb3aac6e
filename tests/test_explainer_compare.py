"""Compare, guidance sweep, save, shareable links and starter prompts, in Chromium on WASM with
the tiny model: each view draws what the runs computed, and nothing leaves the server's origin."""

from __future__ import annotations

import json
import shutil
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest

from .conftest import ROOT
# `server` serves whichever `models_dir` the requesting module defines: here, the one below.
from .test_browser import Page, browser, server  # noqa: F401  (shared fixtures)

ARTIFACTS = ROOT / "test-artifacts"
STARTERS = ["a red circle on the left", "a blue square"]
PAIRS = [["a red circle", "a green circle"]]
TIMEOUT = 120_000

@pytest.fixture(scope="module")
def models_dir(tiny_model_dir, tmp_path_factory):
    """The tiny model with starter prompts and prompt pairs in its manifest (the sha256 list
    covers the model files only, so the manifest may be edited)."""
    folder = tmp_path_factory.mktemp("compare-models")
    shutil.copytree(tiny_model_dir, folder / "tiny-random")
    path = folder / "tiny-random" / "manifest.json"
    manifest = json.loads(path.read_text())
    manifest.update(starter_prompts=STARTERS, prompt_pairs=PAIRS)
    path.write_text(json.dumps(manifest))
    return folder


def open_page(browser, server, query="?backend=wasm", viewport=(1280, 800)):  # noqa: F811
    context = browser.new_context(viewport={"width": viewport[0], "height": viewport[1]}, accept_downloads=True)
    page = Page(context, server, query).ready()
    return context, page


@pytest.fixture(scope="module")
def page(browser, server):  # noqa: F811
    ARTIFACTS.mkdir(exist_ok=True)
    context, page = open_page(browser, server)
    yield page
    assert page.errors == [] and page.origins == {server.url}
    context.close()


def shot(page, selector, name):
    page.page.locator(selector).screenshot(path=str(ARTIFACTS / f"compare-{name}.png"))


def run_compare(p):
    p.click("#compare-run")
    p.wait_for_function("""() => document.querySelector('#compare-run').disabled === false
        && window.sdlens.store.runs.get('compare')?.final""", timeout=TIMEOUT)
    p.wait_for_function("!document.querySelector('.compare-results').hidden")


def counts(p):
    return p.evaluate("""() => ({
        paths: [...document.querySelectorAll('#compare-projection path.trajectory')].map((e) => e.dataset.run),
        main: document.querySelectorAll('#compare-projection g.run[data-run=main] circle.point').length,
        compare: document.querySelectorAll('#compare-projection g.run[data-run=compare] circle.point').length,
        distance: document.querySelectorAll('#compare-distance circle.point').length,
        selected: document.querySelectorAll('#compare-projection circle.point.selected').length,
    })""")


def test_compare_two_prompts(page):
    p = page.page
    p.fill("#prompt", "a red circle on the left")
    p.fill("#seed", "7")
    p.fill("#steps", "3")
    p.fill("#guidance", "7.5")
    p.select_option("#compare-mode", "prompt")
    p.fill("#compare-prompt", "a blue circle on the left")
    assert p.locator("#compare-diff-a mark.diff-word").all_text_contents() == ["red"]
    assert p.locator("#compare-diff-b mark.diff-word").all_text_contents() == ["blue"]
    run_compare(p)
    runs = p.evaluate("""() => { const r = window.sdlens.store.runs;
        return ['main', 'compare'].map((k) => ({...r.get(k).settings, n: r.get(k).steps.length})); }""")
    assert runs[0]["prompt"] == "a red circle on the left" and runs[1]["prompt"] == "a blue circle on the left"
    assert runs[0]["seed"] == runs[1]["seed"] == "7" and runs[0]["n"] == runs[1]["n"] == 3
    assert counts(p) == {"paths": ["main", "compare"], "main": 3, "compare": 3, "distance": 3, "selected": 2}
    # Both runs start from the same noise, so the distance starts at 0 and then grows.
    distance = p.evaluate("""async () => (await import('/explainer/compare.js')).distances(
        window.sdlens.store.runs.get('main'), window.sdlens.store.runs.get('compare'))""")
    assert distance[0] == 0 and distance[-1] > 0
    # Selecting a step (here by clicking its point) moves the highlight and the side-by-side.
    p.locator("#compare-distance circle.point[data-step='0']").click()
    p.wait_for_function("window.sdlens.store.selected === 0")
    p.wait_for_function("document.querySelector('#compare-projection circle.point.selected').dataset.step === '0'")
    assert "step 1 of 3" in p.locator(".compare-side figure[data-run=compare] figcaption").text_content()
    p.evaluate("window.sdlens.store.select(2)")
    p.wait_for_function("document.querySelector('#compare-projection circle.point.selected').dataset.step === '2'")
    page.settled("#compare-section")
    shot(page, "#compare-section", "prompts")
    # Tablet width: the same view still fits.
    p.set_viewport_size({"width": 800, "height": 1000})
    page.settled("#compare-section")
    assert p.evaluate("document.querySelector('#compare-section').scrollWidth <= document.documentElement.clientWidth")
    shot(page, "#compare-section", "prompts-tablet")
    p.set_viewport_size({"width": 1280, "height": 800})


def test_compare_step_counts(page):
    p = page.page
    p.fill("#steps", "4")
    p.select_option("#compare-mode", "steps")
    p.fill("#compare-steps", "2")
    run_compare(p)
    # Each trajectory has its own steps; the distance follows run A's.
    assert counts(p) | {"selected": 0} == {"paths": ["main", "compare"], "main": 4, "compare": 2, "distance": 4,
                                           "selected": 0}
    p.evaluate("window.sdlens.store.select(3)")  # the last step of A is the last step of B
    p.wait_for_function("""document.querySelector('.compare-side figure[data-run=compare] figcaption')
        .textContent.includes('step 2 of 2')""")
    shot(page, "#compare-section", "steps")
    # The predicted clean latents can be projected instead; the same steps, the same points.
    p.select_option("#compare-space", "x0")
    p.wait_for_function("document.querySelector('#compare-distance .axis-label:last-of-type').textContent.includes('x̂0')")
    assert counts(p)["main"] == 4 and counts(p)["compare"] == 2
    p.select_option("#compare-space", "latent")


def test_compare_schedulers(page):
    p = page.page
    p.fill("#steps", "3")
    p.select_option("#scheduler", "ddim")
    p.select_option("#compare-mode", "scheduler")
    p.select_option("#compare-scheduler", "euler")
    assert p.locator("#compare-diff-a mark.diff-word").all_text_contents() == ["DDIM"]
    assert p.locator("#compare-diff-b mark.diff-word").all_text_contents() == ["Euler"]
    run_compare(p)
    runs = p.evaluate("() => ['main', 'compare'].map((k) => window.sdlens.store.runs.get(k).settings.scheduler)")
    assert runs == ["ddim", "euler"] and p.locator("#scheduler").input_value() == "ddim"
    assert counts(p) | {"selected": 0} == {"paths": ["main", "compare"], "main": 3, "compare": 3, "distance": 3,
                                           "selected": 0}
    shot(page, "#compare-section", "schedulers")
    p.select_option("#compare-mode", "prompt")


def test_guidance_sweep(page):
    p = page.page
    p.fill("#steps", "2")
    p.fill("#sweep-values", "0, 3, 7.5")
    p.click("#sweep-run")
    p.wait_for_function("""() => document.querySelectorAll('#sweep-images figure').length === 3
        && !document.querySelector('#sweep-images figure.pending')""", timeout=TIMEOUT)
    assert p.locator("#sweep-images figcaption").all_text_contents() == ["g = 0 (off: same as g = 1)", "g = 3", "g = 7.5"]
    # Each image is a real picture, and guidance changes it.
    pixels = p.evaluate("""() => [...document.querySelectorAll('#sweep-images canvas')].map((c) =>
        Array.from(c.getContext('2d').getImageData(0, 0, c.width, c.height).data.slice(0, 4096)))""")
    assert all(len(set(px)) > 10 for px in pixels) and pixels[0] != pixels[2]
    # An even grid: the same width and the same step between images, whatever the captions say.
    boxes = p.evaluate("""() => [...document.querySelectorAll('#sweep-images figure')].map((f) => {
        const r = f.getBoundingClientRect(); const c = f.querySelector('canvas').getBoundingClientRect();
        return {x: r.x, y: r.y, w: r.width, cx: c.x, cw: c.width}; })""")
    assert len({round(b["w"], 1) for b in boxes}) == 1 and len({round(b["cw"], 1) for b in boxes}) == 1
    assert len({b["y"] for b in boxes}) == 1
    steps = [round(b["cx"] - a["cx"], 1) for a, b in zip(boxes, boxes[1:])]
    assert len(set(steps)) == 1 and steps[0] > boxes[0]["cw"], steps
    p.fill("#sweep-values", "1, x")
    p.click("#sweep-run")
    assert "not a guidance value" in p.locator("#sweep-message").text_content()
    shot(page, "#sweep-section", "sweep")


def test_save_png_and_webm(page):
    p = page.page
    p.wait_for_function("!document.getElementById('save-png').disabled")
    with p.expect_download() as info:
        p.click("#save-png")
    download = info.value
    data = open(download.path(), "rb").read()
    assert download.suggested_filename.startswith("a-red-circle-on-the-left-seed7") and download.suggested_filename.endswith(".png")
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 100
    with p.expect_download(timeout=TIMEOUT) as info:
        p.click("#save-webm")
    data = open(info.value.path(), "rb").read()
    assert info.value.suggested_filename.endswith(".webm") and data[:4] == b"\x1a\x45\xdf\xa3" and len(data) > 200
    shot(page, ".stage-side", "save")


def test_address_bar_follows_the_run(page):
    query = parse_qs(urlsplit(page.page.url).query)
    assert query["backend"] == ["wasm"]  # kept as it was
    assert query["prompt"] == ["a red circle on the left"] and query["seed"] == ["7"]
    assert query["compare"] == ["euler"] and query["compare_mode"] == ["scheduler"]


def test_starter_prompts(page):
    p = page.page
    assert p.locator("#starters button.starter.prompt").all_text_contents() == STARTERS
    p.evaluate("document.getElementById('starter-menu').open = true")  # (a starter closes its menu)
    p.locator("#starters button.starter.pair").click()
    assert p.locator("#prompt").input_value() == "a red circle"
    assert p.locator("#compare-prompt").input_value() == "a green circle"
    assert p.locator("#compare-mode").input_value() == "prompt"
    assert p.locator("#compare-diff-b mark.diff-word").all_text_contents() == ["green"]
    p.evaluate("document.getElementById('starter-menu').open = true")  # (a starter closes its menu)
    p.locator("#starters button.starter.prompt").first.click()
    assert p.locator("#prompt").input_value() == STARTERS[0]
    shot(page, "#controls", "starters")


def test_link_reproduces_the_run(browser, server):  # noqa: F811
    settings = dict(prompt="a yellow star", negative="blurry", seed="123", steps="2", guidance="3",
                    scheduler="euler", model="tiny-random")
    query = "?" + urlencode(dict(backend="wasm", **settings, compare="a purple star", compare_mode="prompt"))
    context, page = open_page(browser, server, query)
    try:
        p = page.page
        p.wait_for_function("window.sdlens.store.runs.get('compare')?.final", timeout=TIMEOUT)
        for key, value in settings.items():
            assert p.locator(f"#{key}").input_value() == value, key
        assert p.locator("#compare-prompt").input_value() == "a purple star"
        runs = p.evaluate("""() => ['main', 'compare'].map((k) => window.sdlens.store.runs.get(k).settings)""")
        assert {k: runs[0][k] for k in settings} == settings
        assert runs[1]["prompt"] == "a purple star" and runs[1]["seed"] == "123"
        p.wait_for_function("!document.querySelector('.compare-results').hidden")
        assert counts(p)["distance"] == 2
        # The same run, the same pixels: the link reproduces the image of a plain generation.
        again = page.generate(**settings)
        final = p.evaluate("Array.from(window.sdlens.store.runs.get('main').final.rgba)")
        assert again["rgba"] == final
        shot(page, "#compare-section", "link")
        assert page.errors == [] and page.origins == {server.url}
    finally:
        context.close()


@pytest.fixture(scope="module")
def two_models(tiny_model_dir, tiny_pipeline_dir, tmp_path_factory):
    """The default model (tiny-random, 25 DDIM steps at 7.5), and a second one whose own defaults
    differ (3 Euler steps at 2.5)."""
    from export.convert import convert

    from .test_browser import Server

    folder = tmp_path_factory.mktemp("two-models")
    shutil.copytree(tiny_model_dir, folder / "tiny-random")
    manifest = json.loads((folder / "tiny-random" / "manifest.json").read_text())
    (folder / "tiny-random" / "manifest.json").write_text(json.dumps({**manifest, "default": True}))
    convert(str(tiny_pipeline_dir), folder / "other", ["fp32"], quiet=True,
            defaults={"steps": 3, "guidance": 2.5, "scheduler": "euler"})
    srv = Server(folder)
    yield srv
    srv.stop()


def test_a_link_to_another_model_runs_with_that_models_defaults(browser, two_models):  # noqa: F811
    """A link naming a model and a prompt only: the page starts on that model (the default one is
    never downloaded), the settings the link leaves out are that model's own, and the views that
    ask the worker for something (the code editor) work once it is loaded."""
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    fetched = []
    context.on("request", lambda r: fetched.append(r.url))
    try:
        page = Page(context, two_models, "?" + urlencode(dict(backend="wasm", model="other", prompt="a red circle",
                                                                 seed="3"))).ready()
        p = page.page
        p.wait_for_function("window.sdlens.store.main?.final", timeout=TIMEOUT)
        run = p.evaluate("window.sdlens.store.main.settings")
        assert (run["model"], run["steps"], run["guidance"], run["scheduler"], run["seed"]) == \
            ("other", "3", "2.5", "euler", "3")
        assert [p.locator(f"#{k}").input_value() for k in ("model", "steps", "guidance", "scheduler")] == \
            ["other", "3", "2.5", "euler"]
        assert not [u for u in fetched if "/models/tiny-random/" in u and not u.endswith("manifest.json")]
        p.wait_for_function("document.querySelector('.code-editor')?.dataset.ready === 'true'",
                            timeout=TIMEOUT)
        assert "could not start" not in p.locator("#code-status").text_content()
        # Switching back by hand: a question asked while the worker is replaced waits for the new
        # model (it used to reach a worker with no model: "Cannot read properties of null").
        p.select_option("#model", "tiny-random")
        assert "def " in p.evaluate("window.sdlens.source('guidance', 'ddim')")
        assert p.evaluate("window.sdlens.tokenize('a cat').then((t) => t.ids.length)") > 0
        assert p.locator("#steps").input_value() != "3"  # the default model's own defaults again
        assert page.errors == []
    finally:
        context.close()
