"""The code editor in Chromium: the real Python shown with highlighting, edited runs beside the
standard one, errors with their line, Stop for code that never returns, Reset, "modified code" marks."""

from __future__ import annotations

import json
import re
import time

import numpy as np
import pytest

from sdlens.edited import original_source
from sdlens.serving.app_files import CODEMIRROR

from .conftest import ROOT
from .test_browser import Page, browser, models_dir, server  # noqa: F401  (shared fixtures)

ARTIFACTS = ROOT / "test-artifacts"
SETTINGS = dict(prompt="a red circle on the left, light blue background", negative="", seed=5, steps=3,
                guidance=7.5, scheduler="ddim")


def test_import_map_matches_the_served_packages():
    html = (ROOT / "web" / "index.html").read_text()
    imports = json.loads(re.search(r'<script type="importmap">(.*?)</script>', html, re.S).group(1))["imports"]
    assert imports == {name: f"./vendor/npm/{name}/{entry}" for name, entry in CODEMIRROR.items()}
    for name, entry in CODEMIRROR.items():
        text = (ROOT / "node_modules" / name / entry).read_text()
        for spec in re.findall(r"""^(?:import|export)[^'"\n]*?from\s*['"]([^'"]+)['"]""", text, re.M):
            assert spec in imports, f"{name} imports {spec}, which the import map lacks"


@pytest.fixture(scope="module")
def page(browser, server):  # noqa: F811
    context = browser.new_context(viewport={"width": 1280, "height": 900}, accept_downloads=True)
    page = Page(context, server, "?backend=wasm").ready()
    for key, value in SETTINGS.items():
        page.page.fill(f"#{key}", str(value)) if key != "scheduler" else page.page.select_option("#scheduler", value)
    page.page.wait_for_selector("#code-section[data-ready=true]", timeout=60_000)
    ARTIFACTS.mkdir(exist_ok=True)
    yield page
    assert page.errors == [] and page.origins == {server.url}
    context.close()


def run_edit(page, part, text):
    page.page.evaluate("([p, t]) => window.sdlens.debug.code.setText(p, t)", [part, text])
    return page.page.evaluate("window.sdlens.debug.code.run().then((r) => r && !r.cancelled)")


def latents(page, key):
    return np.array(page.page.evaluate(f"Array.from(window.sdlens.store.runs.get('{key}').latents)"), np.float32)


def test_editor_shows_the_real_source_highlighted(page):
    p = page.page
    assert p.evaluate("window.sdlens.debug.code.text()") == original_source("guidance")
    assert p.locator("#code-section .cm-content [class*=tok-], #code-section .cm-content span[class]").count() > 3
    p.locator("#code-section .code-tabs button[data-part=step]").click()
    try:
        # The tab is marked at once; the editor shows the step's source once it has been fetched.
        p.wait_for_function("(t) => window.sdlens.debug.code.text() === t", arg=original_source("step", "ddim"))
        p.locator("#code-section").screenshot(path=str(ARTIFACTS / "code-editor-step-1280.png"))
    finally:  # the next tests edit the guidance: its tab is back, passed or failed
        p.locator("#code-section .code-tabs button[data-part=guidance]").click()
        p.wait_for_function("(t) => window.sdlens.debug.code.text() === t", arg=original_source("guidance"))


def test_guidance_returning_eps_cond_equals_guidance_off(page):
    p = page.page
    edited = original_source("guidance").replace(
        "return eps_uncond + g * (eps_cond - eps_uncond)", "return eps_cond")
    assert run_edit(page, "guidance", edited)
    assert not p.locator("#code-badge").is_hidden()
    b = latents(page, "compare")
    p.evaluate("(s) => window.sdlens.explain(s, 'g1').then(() => null)", dict(SETTINGS, guidance=1))
    off = latents(page, "g1")
    assert np.abs(b - off).max() <= 1e-5 * np.abs(off).max()
    assert np.abs(b - latents(page, "main")).max() > 1e-2
    # Marked wherever the run appears, and never in a link.
    p.wait_for_function("""() => document.querySelector('#compare-section figure[data-run="compare"] figcaption')
        ?.textContent.includes('modified code')""")
    assert "modified code" in p.locator("#article").text_content()
    assert "compare" not in p.evaluate("location.search") and "code" not in p.evaluate("location.search")
    with p.expect_download() as download:
        p.click("#code-save")
    assert download.value.suggested_filename.endswith("-modified-code.png")
    p.locator("#compare-section").screenshot(path=str(ARTIFACTS / "code-editor-compare-1280.png"))


def test_reset_restores_bit_identical_output(page):
    p = page.page
    before = p.evaluate("Array.from(window.sdlens.store.main.final.rgba)")
    p.evaluate("window.sdlens.debug.code.reset()")
    assert p.evaluate("window.sdlens.debug.code.text()") == original_source("guidance")
    assert p.locator("#code-badge").is_hidden()
    assert p.evaluate("window.sdlens.debug.code.edits()") == {}
    result = p.evaluate("(s) => window.sdlens.explain(s).then((r) => Array.from(r.rgba))", SETTINGS)
    assert result == before


@pytest.mark.parametrize("part,line_text,broken,message", [
    ("guidance", "return eps_uncond", "    return eps_uncond + g * (eps_cond - eps_uncond\n", "SyntaxError"),
    ("step", "b_t = 1.0 - a_t", "    b_t = 1.0 - a_t\n    b_t = b_t / 0\n", "ZeroDivisionError"),
])
def test_errors_show_their_line_and_the_next_run_works(page, part, line_text, broken, message):
    p = page.page
    source = original_source(part, "ddim")
    lines = source.splitlines(True)
    index = next(i for i, line in enumerate(lines) if line_text in line)
    lines[index] = broken
    expected_line = index + 1 if message == "SyntaxError" else index + 2
    assert not run_edit(page, part, "".join(lines))
    error = p.evaluate("window.sdlens.debug.code.state.lastError")
    assert error["part"] == part and error["line"] == expected_line and message in error["message"]
    assert p.evaluate("window.sdlens.debug.code.part") == part
    p.wait_for_selector("#code-section .cm-lintRange-error")
    assert f"line {expected_line}" in p.locator("#code-error").text_content()
    if part == "step":
        p.locator("#code-section").screenshot(path=str(ARTIFACTS / "code-editor-error-1280.png"))
        p.set_viewport_size({"width": 390, "height": 900})
        page.settled("#code-section")
        p.locator("#code-section").screenshot(path=str(ARTIFACTS / "code-editor-error-390.png"))
        p.set_viewport_size({"width": 1280, "height": 900})
    p.evaluate("window.sdlens.debug.code.reset()")
    standard = p.evaluate("(s) => window.sdlens.generate(s).then((r) => r.settings.seed)", SETTINGS)
    assert standard == "5"


def test_endless_loop_stops_on_stop(page):
    p = page.page
    loop = "def guide(ops, eps_uncond, eps_cond, scale):\n    while True:\n        scale += 1\n"
    p.evaluate("(t) => window.sdlens.debug.code.setText('guidance', t)", loop)
    p.evaluate("() => { window.__run = window.sdlens.debug.code.run(); }")
    p.wait_for_function("document.getElementById('code-status').textContent.includes('your code')", timeout=60_000)
    # (Stop at once: wherever the run is, in the loop or in a UNet call, the loop's next line sees it.)
    started = time.perf_counter()
    p.click("#code-stop")
    p.evaluate("window.__run")
    assert time.perf_counter() - started < 4.5  # before the 5 s time limit: Stop itself ended it
    assert "Stopped" in p.locator("#code-status").text_content()
    p.evaluate("window.sdlens.debug.code.reset()")
    assert p.evaluate("(s) => window.sdlens.generate(s).then((r) => r.width)", SETTINGS) > 0


def caption_b(page):
    return page.page.locator('#compare-section figure[data-run="compare"] figcaption').text_content()


def test_guidance_written_as_a_formula_gives_the_standard_image(page):
    """The standard guide is the formula; the same sum written another way, or with ops.combine as it
    used to be, runs as the same one linear combination: the same pixels. Compare names each edit."""
    p = page.page
    standard = "return eps_uncond + g * (eps_cond - eps_uncond)"
    assert standard in original_source("guidance")
    captions = []
    for rewritten in ("return (1 - g) * eps_uncond + g * eps_cond",
                      "return ops.combine([(1.0 - g, eps_uncond), (g, eps_cond)])"):
        assert run_edit(page, "guidance", original_source("guidance").replace(standard, rewritten))
        assert np.array_equal(latents(page, "compare"), latents(page, "main"))
        a, b = (p.evaluate(f"Array.from(window.sdlens.store.runs.get('{k}').final.rgba)") for k in ("main", "compare"))
        assert a == b
        p.wait_for_function("document.querySelector('#compare-section figure[data-run=compare] figcaption')"
                            ".textContent.includes('line 3')")
        captions.append(caption_b(page))
        if rewritten.startswith("return (1"):
            p.evaluate("window.sdlens.debug.code.show('guidance')")
            p.locator("#code-section").screenshot(path=str(ARTIFACTS / "code-editor-formula-1280.png"))
            p.locator("#compare-section").screenshot(path=str(ARTIFACTS / "code-editor-formula-compare-1280.png"))
    # Two different edits, two names: each says the line it changed.
    assert "modified code" in captions[0] and "(1 - g) * eps_uncond" in captions[0]
    assert "ops.combine" in captions[1] and captions[0] != captions[1]
    p.evaluate("window.sdlens.debug.code.reset()")


def test_tensor_times_tensor_is_said_in_words_on_its_line(page):
    p = page.page
    source = original_source("guidance").replace("return eps_uncond + g * (eps_cond - eps_uncond)",
                                                 "return eps_uncond + g * (eps_cond * eps_uncond)")
    assert not run_edit(page, "guidance", source)
    error = p.evaluate("window.sdlens.debug.code.state.lastError")
    shown = p.locator("#code-error").text_content()
    assert error["line"] == 3 and "line 3" in shown
    assert "`eps_cond * eps_uncond` multiplies two tensors element by element" in shown
    assert "added, subtracted, and multiplied or divided by numbers" in shown
    for internal in ("Handle", "LinearCombination", "FormulaOps", "TensorMathError", "TypeError"):
        assert internal not in shown
    p.wait_for_selector("#code-section .cm-lintRange-error")
    p.locator("#code-section").screenshot(path=str(ARTIFACTS / "code-editor-formula-error-1280.png"))
    p.evaluate("window.sdlens.debug.code.reset()")
    assert p.evaluate("(s) => window.sdlens.generate(s).then((r) => r.width)", SETTINGS) > 0
