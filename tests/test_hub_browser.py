"""Models from the (mock) Hub in headless Chromium, two ways: fetched with `sdlens fetch` and
served by serve.py --models, and opened by the page itself ("Open a model from the Hub", a
?model=hub:OWNER/REPO link). The fp32 repo generates what diffusers generates on the same weights
(WASM, within 3/255); the repos published in fp16 say, before anything downloads, that they need
WebGPU with shader-f16 (this machine's Chromium has none); every bad input is named, and nothing
half-downloaded stays in the cache."""

import hashlib
import re
import shutil
from urllib.parse import parse_qs, urlsplit

import numpy as np
import pytest

from . import hub_repos
from .hub_server import MockHub, Repo
from .test_browser import ARTIFACTS, CHROMIUM, Page, Server, browser  # noqa: F401 (a fixture)
from .test_hub_fetch import diffusers_image, hub, optimum_export, webnn_fp32_hub  # noqa: F401 (fixtures)

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


# ---------------------------------------------------------------------------------------------
# The page opens a repo from the (mock) Hub itself: "Open a model from the Hub", ?model=hub:…


@pytest.fixture(scope="module")
def page_hub(hub):  # noqa: F811
    """The mock Hub, with two more repos whose listing says a file is larger than it is: one too
    large for any browser, one large enough that the page asks before downloading it."""
    files = hub.repos["sdlens-test/tiny-sd-onnx"].files
    hub.repos["sdlens-test/too-large"] = Repo(dict(files), listed_sizes={"unet/model.onnx": 3 * 1024 ** 3})
    hub.repos["sdlens-test/large"] = Repo(dict(files), listed_sizes={"unet/model.onnx": 150_000_000})
    yield hub
    hub.corrupt.clear()
    hub.cut.clear()


def hub_app(models_dir, endpoint):
    """serve.py on the tiny default model, its page pointed at a Hub (serve.py --hub-endpoint)."""
    return Server(models_dir, hub_endpoint=endpoint)


@pytest.fixture(scope="module")
def app_models(tiny_model_dir, tmp_path_factory):
    folder = tmp_path_factory.mktemp("app-models")
    shutil.copytree(tiny_model_dir, folder / "tiny-random")
    return folder


@pytest.fixture(scope="module")
def app(app_models, page_hub):
    srv = hub_app(app_models, page_hub.endpoint)
    yield srv
    srv.stop()


def hub_link(repo, rest="&backend=wasm&autorun=0"):
    return f"?model=hub:{repo}{rest}"


def downloads(hub, since=0):
    """The graph files the page asked the Hub's CDN for (LFS blobs), by repo path."""
    blobs = {hashlib.sha256(data).hexdigest(): path for repo in hub.repos.values() for path, data in repo.files.items()}
    return [blobs.get(p.rsplit("/", 1)[-1], p) for m, p, _ in hub.requests[since:] if m == "GET" and p.startswith("/lfs/")]


def look(p, text):
    """Type a repo id into the panel and look it up: the panel's message once it has answered."""
    p.evaluate("document.getElementById('more-settings').open = true; document.getElementById('hub-open').open = true")
    p.fill("#hub-repo", text)
    p.click("#hub-look")
    p.wait_for_function("""() => { const m = document.getElementById('hub-message');
        return !document.getElementById('hub-look').disabled && !m.textContent.startsWith('Looking up'); }""")
    return p.locator("#hub-message").inner_text()


def pixels(result):
    return np.array(result["rgba"], np.uint8).reshape(64, 64, 4)[..., :3].astype(int)


def test_a_link_opens_an_fp32_repo_that_generates_as_diffusers(browser, app, page_hub, tiny_pipeline_dir):  # noqa: F811
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    try:
        page_hub.tree_page = 4  # the listing in pages, as the Hub gives a large one: the page follows its Link headers
        try:
            page = Page(context, app, hub_link("sdlens-test/tiny-sd-onnx")).ready(unfold=False)
        finally:
            page_hub.tree_page = 0
        p = page.page
        commit = page_hub.repos["sdlens-test/tiny-sd-onnx"].commit
        # The link is pinned to the commit it resolved to.
        assert parse_qs(urlsplit(p.url).query)["model"] == [f"hub:sdlens-test/tiny-sd-onnx@{commit}"]
        assert p.evaluate("window.sdlens.backend.ep") == "wasm"
        assert p.evaluate("document.getElementById('model').value") == f"hub:sdlens-test/tiny-sd-onnx@{commit}"
        # Large files came through the 302 to the CDN origin; no request left for anywhere else.
        assert {"text_encoder/model.onnx", "unet/model.onnx", "vae_decoder/model.onnx"} <= set(downloads(page_hub))
        assert page.origins <= {app.url, page_hub.endpoint, page_hub.cdn_origin, "blob", "data"}, page.origins
        for guidance in (1.0, 7.5):
            result = page.generate(prompt="a red circle", seed=7, steps=4, guidance=guidance, scheduler="ddim")
            assert np.abs(pixels(result) - diffusers_image(tiny_pipeline_dir, guidance)).max() <= 3
        # The numbers came from the repo's own files; the card and the attention view say what it is.
        manifest = p.evaluate("window.sdlens.store.main.manifest")
        assert manifest["hub"]["from_table"] == [] and manifest["hub"]["commit"] == commit
        unet = manifest["components"]["unet"]["variants"]["fp32"]
        assert {i["name"]: i["dtype"] for i in unet["inputs"]}["timestep"] == "int64"
        assert {i["name"]: i["dtype"] for i in manifest["components"]["text_encoder"]["variants"]["fp32"]["inputs"]} == {"input_ids": "int32"}
        p.evaluate("window.sdlens.explain({prompt: 'a red circle', seed: 7, steps: 2})")
        p.evaluate("document.querySelectorAll('details').forEach((d) => (d.open = true))")
        p.wait_for_function("document.body.innerText.includes('sdlens-test/tiny-sd-onnx as published on the Hugging Face Hub')")
        # The menu lists it, and the summary it opened with is shown.
        assert "tiny-sd-onnx" in p.locator("#model option:checked").inner_text()
        facts = p.locator(".hub-facts").inner_text()
        assert "runs it: WASM" in facts and "mit (from the repo's model card)" in facts, facts
        p.screenshot(path=str(ARTIFACTS / "hub-opened.png"), full_page=False)
        assert not page.errors, page.errors
    finally:
        context.close()


def test_a_later_visit_opens_the_repo_from_the_cache_with_the_hub_gone(browser, app_models, optimum_export,  # noqa: F811
                                                                      tiny_pipeline_dir):
    own = MockHub()  # a Hub of this test's own, to stop halfway
    own.repos["sdlens-test/tiny-sd-onnx"] = Repo(hub_repos.optimum_repo(optimum_export))
    own.start()
    srv = hub_app(app_models, own.endpoint)
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    try:
        first = Page(context, srv, hub_link("sdlens-test/tiny-sd-onnx")).ready(unfold=False)
        before = first.generate(prompt="a red circle", seed=7, steps=4, guidance=7.5, scheduler="ddim")
        pinned = parse_qs(urlsplit(first.page.url).query)["model"][0]  # (the URL also holds the run's settings now)
        assert pinned == f"hub:sdlens-test/tiny-sd-onnx@{own.repos['sdlens-test/tiny-sd-onnx'].commit}"
        first.page.close()
        own.stop()
        again = Page(context, srv, hub_link(pinned)).ready(unfold=False)
        after = again.generate(prompt="a red circle", seed=7, steps=4, guidance=7.5, scheduler="ddim")
        assert after["rgba"] == before["rgba"]
        # (a link without the commit too: the Hub's answer for "main" was kept)
        again.page.goto(f"{srv.url}/{hub_link('sdlens-test/tiny-sd-onnx')}")
        again.ready(unfold=False)
        assert "tiny-sd-onnx" in again.page.locator("#model option:checked").inner_text()
    finally:
        context.close()
        srv.stop()


def test_repos_the_page_cannot_open_are_named_before_any_download(browser, app, page_hub):  # noqa: F811
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    try:
        page = Page(context, app, "?autorun=0").ready(unfold=False)
        p = page.page
        start = len(page_hub.requests)
        cases = [
            ("not a repo", "is not a Hub repo id"),
            ("sdlens-test/nothing-here", "sdlens-test/nothing-here was not found"),
            ("sdlens-test/private", "private"),
            ("sdlens-test/gated", "is gated"),
            ("sdlens-test/no-unet", "unet/model.onnx"),
            ("sdlens-test/tiny-sd-onnx@0123456789abcdef0123456789abcdef01234567", 'has no revision "0123456789abcdef'),
            ("sdlens-test/too-large", "unet/model.onnx is 3.00 GiB, and a browser holds at most 2 GiB in one file"),
            ("sdlens-test/tiny-sd-onnx-fp16", "shader-f16"),
            (hub_repos.WEBNN, "shader-f16"),
        ]
        for text, words in cases:
            message = look(p, text)
            assert words in message, (text, message)
        assert "HF_TOKEN=hf_… python -m sdlens fetch sdlens-test/gated" in look(p, "sdlens-test/gated")
        assert "found: " in look(p, "sdlens-test/no-unet")  # it lists what the repo has
        look(p, hub_repos.WEBNN)
        webnn = p.locator(".hub-facts").inner_text()
        assert "CreativeML Open RAIL-M" in webnn and "WebGPU with shader-f16" in webnn, webnn
        # None of them downloaded a graph.
        assert downloads(page_hub, start) == [], downloads(page_hub, start)
        # Over 100 MB: the page asks first, and nothing large comes before the button.
        assert "large download" in look(p, "sdlens-test/large")
        button = p.locator("#hub-download")
        assert button.is_visible() and re.fullmatch(r"Download 1\d\d\.\d MB and open", button.inner_text()), button.inner_text()
        assert downloads(page_hub, start) == []
        p.screenshot(path=str(ARTIFACTS / "hub-confirm.png"))
        # Still the default model, untouched.
        assert p.evaluate("window.sdlens.backend") is not None
        assert "tiny" in p.locator("#model option:checked").inner_text()
        assert not page.errors, page.errors
    finally:
        context.close()


def test_an_fp16_link_says_what_would_run_it_and_the_default_model_opens(browser, app, page_hub):  # noqa: F811
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    try:
        start = len(page_hub.requests)
        page = Page(context, app, hub_link(hub_repos.WEBNN, "&autorun=0")).ready(unfold=False)
        p = page.page
        assert "shader-f16" in p.locator("#hub-message").inner_text()
        assert "shader-f16" in p.locator("#error").inner_text()
        assert downloads(page_hub, start) == []
        assert p.evaluate("document.getElementById('model').value") == "tiny-random", \
            p.evaluate("[document.getElementById('model').value, window.sdlens.backend]")  # the page still works
    finally:
        context.close()


def cached_urls(p):
    return p.evaluate("caches.open('sdlens-models-v1').then((c) => c.keys()).then((ks) => ks.map((r) => r.url))")


def test_a_file_that_differs_from_the_listing_is_named_and_not_kept(browser, app, page_hub):  # noqa: F811
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    page_hub.corrupt.add("unet/model.onnx")
    try:
        page = Page(context, app, hub_link("sdlens-test/tiny-sd-onnx"))
        p = page.page
        p.evaluate("window.sdlens.ready")
        message = p.locator("#hub-message").inner_text()
        assert "unet/model.onnx failed its checksum" in message and "the Hub's listing of sdlens-test/tiny-sd-onnx" in message
        assert not [u for u in cached_urls(p) if u.endswith("/unet/model.onnx")]
    finally:
        page_hub.corrupt.clear()
        context.close()


def test_a_connection_lost_mid_file_resumes_on_reload(browser, app, page_hub):  # noqa: F811
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    page_hub.cut["unet/model.onnx"] = 1
    try:
        page = Page(context, app, hub_link("sdlens-test/tiny-sd-onnx"))
        p = page.page
        p.evaluate("window.sdlens.ready")
        message = p.locator("#hub-message").inner_text()
        assert "unet/model.onnx broke off" in message and "reload the page to resume" in message, message
        start = len(page_hub.requests)
        p.reload()
        page.ready(unfold=False)
        assert "tiny-sd-onnx" in p.locator("#model option:checked").inner_text()
        again = downloads(page_hub, start)
        assert "unet/model.onnx" in again and "text_encoder/model.onnx" not in again, again  # the saved ones stay
    finally:
        page_hub.cut.clear()
        context.close()


def test_too_little_storage_is_explained(browser, app, page_hub):  # noqa: F811
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    try:
        page = Page(context, app, "?autorun=0").ready(unfold=False)
        p = page.page
        cdp = context.new_cdp_session(p)
        cdp.send("Storage.overrideQuotaForOrigin", {"origin": app.url, "quotaSize": 256 * 1024})
        message = look(p, "sdlens-test/tiny-sd-onnx")
        assert "browser storage" in message, message
        assert not [u for u in cached_urls(p) if "/resolve/" in u and "/unet/" in u]
    finally:
        context.close()


def test_the_webnn_layout_runs_in_the_page_with_its_fixed_batch_and_sd15s_tokenizer(browser, webnn_fp32_hub,  # noqa: F811
                                                                                      tiny_pipeline_dir, tmp_path):
    """The WebNN repo's layout (graphs in the root, no configs, no tokenizer: the table's numbers and
    SD 1.5's tokenizer files), here with float32 I/O so WASM runs it, fetched and served: the UNet
    fixed at batch 2 generates as diffusers in the page, with and without guidance. (The page cannot
    open this stand-in from the Hub itself: for the repos it knows by name it takes the precision
    from sdlens' table, fp16, before any graph is downloaded, and refuses as it should for the real
    repo on this machine; test_repos_the_page_cannot_open_are_named_before_any_download.)"""
    from sdlens.cpython.fetch import fetch

    fetch(hub_repos.WEBNN, tmp_path / "models" / "sd15-webnn", endpoint=webnn_fp32_hub.endpoint, log=lambda line: None)
    srv = Server(tmp_path / "models")
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    try:
        page = Page(context, srv, "?model=sd15-webnn&backend=wasm&autorun=0").ready(unfold=False)
        for guidance in (1.0, 7.5):
            result = page.generate(prompt="a red circle", seed=7, steps=4, guidance=guidance, scheduler="ddim")
            assert np.abs(pixels(result) - diffusers_image(tiny_pipeline_dir, guidance)).max() <= 3
        hub = page.page.evaluate("window.sdlens.store.main.manifest")["hub"]
        assert hub["tokenizer_from"] == "stable-diffusion-v1-5/stable-diffusion-v1-5"
        assert {"vae_scaling_factor", "scheduler_config"} <= set(hub["from_table"])
        card = page.page.locator("#model-card").text_content()
        assert "taken from sdlens' table of known repos: " in card and "the VAE scaling factor" in card, card
        assert "stable-diffusion-v1-5/stable-diffusion-v1-5's" in card
        assert not page.errors, page.errors
    finally:
        context.close()
        srv.stop()
