"""UMAP beside PCA in Compare: seeded UMAP is deterministic, and the trajectories have one point
per step per run."""

from __future__ import annotations

import pytest

from .conftest import ROOT
from .test_browser import Page, browser, models_dir, server  # noqa: F401  (shared fixtures)

ARTIFACTS = ROOT / "test-artifacts"
SETTINGS = dict(prompt="a red circle on the left, light blue background", negative="", seed=5, steps=6,
                guidance=7.5, scheduler="ddim")


@pytest.fixture(scope="module")
def page(browser, server):  # noqa: F811
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = Page(context, server, "?backend=wasm").ready()
    page.page.evaluate("(s) => window.sdlens.explain(s, 'main').then(() => null)", SETTINGS)
    page.page.evaluate("(s) => window.sdlens.explain(s, 'compare').then(() => null)", dict(SETTINGS, steps=4))
    ARTIFACTS.mkdir(exist_ok=True)
    yield page
    assert page.errors == [] and page.origins == {server.url}
    context.close()


def test_seeded_umap_is_deterministic(page):
    points = page.page.evaluate("""async () => {
        const { umap2 } = await import('/explainer/umap.js');
        const steps = window.sdlens.store.main.steps.map((s) => s.tensors.latent);
        const vectors = [...steps, ...steps.map((v) => v.map((x) => x * 0.5))];
        const a = await umap2(vectors, 7), b = await umap2(vectors, 7), c = await umap2(vectors, 8);
        return [a.points, b.points, c.points]; }""")
    assert len(points[0]) == 12 and all(len(p) == 2 for p in points[0])
    assert points[0] == points[1]
    assert points[0] != points[2]


@pytest.mark.parametrize("method", ["umap", "pca"])
def test_one_point_per_step_per_run(page, method):
    p = page.page
    p.select_option("#compare-method", method)
    p.wait_for_function(f"""document.getElementById('compare-method-note').textContent.startsWith('{method.upper()}')""")
    p.wait_for_function("document.querySelectorAll('#compare-projection g.run[data-run=main] circle').length === 6")
    assert p.locator("#compare-projection g.run[data-run=compare] circle").count() == 4
    label = p.locator("#compare-projection text.axis-label").first.text_content()
    assert label.startswith("UMAP 1" if method == "umap" else "direction 1")
    if method == "umap":
        first = p.locator("#compare-projection").inner_html()
        p.select_option("#compare-method", "pca")
        p.select_option("#compare-method", "umap")
        # The same picture again (the wait fails the test if it never comes).
        p.wait_for_function("(first) => document.querySelector('#compare-projection').innerHTML === first", arg=first)
        p.locator("#compare-section").screenshot(path=str(ARTIFACTS / "umap-compare-1280.png"))
        p.set_viewport_size({"width": 390, "height": 900})
        page.settled("#compare-section")
        p.locator("#compare-section").screenshot(path=str(ARTIFACTS / "umap-compare-390.png"))
        p.set_viewport_size({"width": 1280, "height": 900})
