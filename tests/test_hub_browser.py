"""A model fetched from the (mock) Hub, served by serve.py --models, in headless Chromium: the
fp32 repo generates what diffusers generates on the same weights (WASM, within 3/255), and the
repos published in fp16 say, before anything runs, that they need WebGPU with shader-f16 (this
machine's Chromium has none)."""

import shutil

import numpy as np
import pytest

from . import hub_repos
from .test_browser import CHROMIUM, Page, Server, browser  # noqa: F401 (a fixture)
from .test_hub_fetch import diffusers_image, hub, optimum_export  # noqa: F401 (fixtures)

pytestmark = pytest.mark.skipif(not shutil.which(CHROMIUM), reason="needs Debian's chromium (scripts/install)")


@pytest.fixture(scope="module")
def hub_models(hub, tmp_path_factory):  # noqa: F811
    """The mock Hub's repos (test_hub_fetch's), fetched into one models folder."""
    from sdlens.cpython.fetch import fetch

    folder = tmp_path_factory.mktemp("hub-models")
    for repo, name in (("sdlens-test/tiny-sd-onnx", "tiny-sd-onnx"), ("sdlens-test/tiny-sd-onnx-fp16", "tiny-fp16"),
                       (hub_repos.WEBNN, "sd15-webnn")):
        fetch(repo, folder / name, endpoint=hub.endpoint, log=lambda line: None)
    return folder


@pytest.fixture(scope="module")
def hub_server(hub_models):
    srv = Server(hub_models)
    yield srv
    srv.stop()


def test_fetched_fp32_model_generates_as_diffusers_in_the_page(browser, hub_server, tiny_pipeline_dir):
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    try:
        page = Page(context, hub_server, "?model=tiny-sd-onnx&backend=wasm&autorun=0").ready(unfold=False)
        for guidance in (1.0, 7.5):
            result = page.generate(prompt="a red circle", seed=7, steps=4, guidance=guidance, scheduler="ddim")
            rgba = np.array(result["rgba"], np.uint8).reshape(64, 64, 4)[..., :3].astype(int)
            assert np.abs(rgba - diffusers_image(tiny_pipeline_dir, guidance)).max() <= 3
        assert not page.errors, page.errors
    finally:
        context.close()


@pytest.mark.parametrize("model", ["tiny-fp16", "sd15-webnn"])
def test_fp16_models_say_what_would_run_them(browser, hub_server, model):
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    try:
        page = Page(context, hub_server, f"?model={model}&autorun=0")
        message = page.page.evaluate("window.sdlens.ready.then(() => 'ready', (err) => err.message)")
        assert "shader-f16" in message and "fp16" in message, message
        shown = page.page.locator("#error").inner_text()
        assert "shader-f16" in shown, shown
    finally:
        context.close()
