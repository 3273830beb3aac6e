"""The three new ways in, end to end in headless Chromium, on the embedded default model: the
wheel installed with --no-index into a fresh virtual environment and `sdlens serve` started from
an empty folder, its page opened over plain http as from another machine (no secure context);
and the static site served by `python -m http.server` under a sub-path, with the same pixels,
and with weights from another origin (serve.py, CORS) too. One Pyodide start per page keeps it
affordable: two pages in all."""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest

import serve
from sdlens.cpython.runtime import OnnxRuntime
from sdlens.model import Model
from sdlens.pipeline import Pipeline, Settings
from sdlens.serving import app_files
from sdlens.serving.app_files import Layout
from sdlens.serving.site import write_site

from .conftest import OBJECTS, SHAPES, embedded_default
from .test_browser import CHROMIUM, FLAGS, TOLERANCE, Page, Server, served  # noqa: F401  (shared fixture)

ROOT = Path(serve.__file__).resolve().parent
DEFAULT_MODEL = embedded_default()  # what a fresh clone opens: models/objects
ARTIFACTS = ROOT / "test-artifacts"
# A name that is not localhost: Chromium treats http://classroom.test as what a student's laptop
# sees, a plain-http page from another machine (no secure context).
LAN_NAME = "classroom.test"
SETTINGS = dict(prompt="a big cat on the left, light blue background", negative="", seed=1,
                steps=3, guidance=7.5, scheduler="ddim")

pytestmark = [
    pytest.mark.skipif(not shutil.which(CHROMIUM), reason="needs Debian's chromium (scripts/install)"),
    pytest.mark.skipif(not (DEFAULT_MODEL / "manifest.json").is_file(), reason="the embedded models are not built"),
    pytest.mark.skipif(bool(Layout.find().missing_runtime_files()), reason="needs npm ci"),
]


class At:
    """A server somewhere, as test_browser's Page expects it."""

    def __init__(self, url):
        self.url = url


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(port: int, process: subprocess.Popen, seconds: float = 30):
    import time

    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        assert process.poll() is None, "the server exited"
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.2)
    raise AssertionError(f"nothing listens on {port}")


def pixels(result) -> np.ndarray:
    return np.array(result["rgba"], np.uint8).reshape(result["height"], result["width"], 4)[..., :3].astype(int)


def screenshots(page, name):
    ARTIFACTS.mkdir(exist_ok=True)
    for width, height in ((1280, 900), (390, 844)):
        page.set_viewport_size({"width": width, "height": height})
        page.screenshot(path=str(ARTIFACTS / f"classroom-{name}-{width}.png"))
    page.set_viewport_size({"width": 1280, "height": 900})


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True,
                              args=[*FLAGS, f"--host-resolver-rules=MAP {LAN_NAME} 127.0.0.1"])
        yield b
        b.close()


@pytest.fixture(scope="module")
def wheel(tmp_path_factory):
    """The wheel, built once from a clean copy of the sources (the checkout is left untouched)."""
    source = tmp_path_factory.mktemp("wheel-src")
    for name in ("py", "web"):
        shutil.copytree(ROOT / name, source / name, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    for name in ("setup.py", "pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    for name in ("models", "node_modules"):
        os.symlink((ROOT / name).resolve(), source / name)
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run([sys.executable, "-m", "pip", "wheel", str(source), "--no-deps", "--no-build-isolation",
                    "-q", "-w", str(out)], check=True, capture_output=True)
    (built,) = out.glob("sdlens-*.whl")
    print(f"wheel {built.name}: {built.stat().st_size / 1e6:.1f} MB")
    return built


@pytest.fixture(scope="module")
def wheel_server(wheel, tmp_path_factory):
    """The wheel installed with --no-index into a fresh virtual environment, and `sdlens serve`
    started from an empty folder, with no PYTHONPATH: nothing of this checkout is used."""
    tmp = tmp_path_factory.mktemp("offline-laptop")
    venv = tmp / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    bin_dir = venv / ("Scripts" if os.name == "nt" else "bin")
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PIP_INDEX_URL", "PIP_FIND_LINKS")}
    subprocess.run([str(bin_dir / "pip"), "install", "-q", "--no-index", str(wheel)], check=True, env=env)
    help_text = subprocess.run([str(bin_dir / "python"), "-m", "sdlens", "serve", "--help"], check=True,
                               capture_output=True, text=True, env=env, cwd=tmp).stdout
    assert "--lan" in help_text
    empty = tmp / "empty"
    empty.mkdir()
    process = subprocess.Popen([str(bin_dir / "sdlens"), "serve", "--port", "0", "--quiet"], cwd=empty, env=env,
                               stdout=subprocess.PIPE, text=True)
    port = int(re.search(r"localhost:(\d+)", process.stdout.readline()).group(1))
    yield port, empty
    process.terminate()
    process.wait()


@pytest.fixture(scope="module")
def plain_http(browser, wheel_server):
    """The installed wheel's `sdlens serve` (serve.py's code, from site-packages) opened the way a
    student's laptop opens it, over plain http: the reference pixels for the static site."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    port, _ = wheel_server
    page = Page(context, At(f"http://{LAN_NAME}:{port}")).ready()
    seen = page.page.evaluate("""() => ({secure: isSecureContext, caches: typeof caches,
        sw: "serviceWorker" in navigator, note: document.getElementById("context-note").textContent,
        noteShown: !document.getElementById("context-note").hidden, badge: window.sdlens.backend.label})""")
    result = page.generate(**SETTINGS)
    screenshots(page.page, "plain-http")
    context.close()
    return {"seen": seen, "pixels": pixels(result), "errors": page.errors, "origins": page.origins, "port": port}


def test_offline_wheel_serves_a_plain_http_page_that_works_on_wasm(plain_http, wheel_server):
    seen = plain_http["seen"]
    assert seen["secure"] is False and seen["caches"] == "undefined" and seen["sw"] is False
    assert seen["noteShown"] and "Plain http" in seen["note"] and "https://" in seen["note"]
    assert "--lan" in seen["note"]
    assert seen["badge"] == "WASM: plain http: WebGPU needs https"
    native = Pipeline(Model.from_dir(str(DEFAULT_MODEL)), OnnxRuntime())
    expected = np.frombuffer(native.generate(Settings(**SETTINGS)).rgb, np.uint8).reshape(plain_http["pixels"].shape)
    assert np.abs(plain_http["pixels"] - expected.astype(int)).max() <= TOLERANCE["wasm"]
    # Chromium notes that it ignores serve.py's COOP header on an untrustworthy origin; nothing else.
    assert [e for e in plain_http["errors"] if "Cross-Origin-Opener-Policy header has been ignored" not in e] == []
    assert plain_http["origins"] == {f"http://{LAN_NAME}:{plain_http['port']}"}
    assert list(wheel_server[1].iterdir()) == []  # `sdlens serve` wrote nothing where it was started


@pytest.fixture(scope="module")
def static_host(tmp_path_factory, served):
    """`python -m sdlens site` under /sdlens/ of a plain static server, with the default model
    copied in and, as a second model, the same weights left on serve.py's origin."""
    www = tmp_path_factory.mktemp("www")
    remote = tmp_path_factory.mktemp("remote-model") / "elsewhere"
    remote.mkdir()
    manifest = app_files.read_manifest(DEFAULT_MODEL)
    manifest.update(name=f"{DEFAULT_MODEL.name} (weights on another origin)", default=False)
    (remote / "manifest.json").write_text(__import__("json").dumps(manifest))
    weights = f"http://127.0.0.1:{served.httpd.server_address[1]}/models/{DEFAULT_MODEL.name}"
    write_site(www / "sdlens", Layout.find(), [SHAPES, OBJECTS, remote], {"elsewhere": weights})
    port = free_port()
    process = subprocess.Popen([sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1",
                                "--directory", str(www)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_for_port(port, process)
    yield At(f"http://localhost:{port}/sdlens"), weights
    process.terminate()
    process.wait()


def test_static_site_generates_the_same_pixels_as_the_server(browser, static_host, plain_http):
    site, weights = static_host
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    try:
        page = Page(context, site, "?backend=wasm").ready()
        seen = page.page.evaluate("""() => ({isolated: crossOriginIsolated,
            note: document.getElementById("context-note").textContent})""")
        assert seen["isolated"] is False and "COOP/COEP" in seen["note"] and "one thread" in seen["note"]
        offered = page.page.eval_on_selector_all("#model option", "options => options.map((o) => o.value)")
        assert {"shapes", "objects", "elsewhere"} <= set(offered), offered  # the site carries both embedded models
        assert page.page.locator("#model").input_value() == DEFAULT_MODEL.name
        result = page.generate(**SETTINGS)
        screenshots(page.page, "static-site")
        assert np.array_equal(pixels(result), plain_http["pixels"])
        # The same weights, fetched from another origin with CORS and checked against their sha256.
        downloads = []
        page.page.context.on("request", lambda r: r.url.startswith(weights) and downloads.append(r.url))
        again = page.generate(**SETTINGS, model="elsewhere")
        assert np.array_equal(pixels(again), plain_http["pixels"])
        assert any(url.endswith("unet/model_fp32.onnx") for url in downloads)
        assert page.errors == []
    finally:
        context.close()


def test_wheel_holds_what_the_server_serves(wheel):
    layout = Layout.find()
    names = set(zipfile.ZipFile(wheel).namelist())
    for url in {**layout.web_files(), **layout.runtime_files()}:
        assert f"sdlens/_app/{'web/' if not url.startswith('vendor/') else ''}{url}" in names, url
    for model in (SHAPES, OBJECTS):  # both embedded models
        for entry in app_files.manifest_files(app_files.read_manifest(model)):
            assert f"sdlens/_app/models/{model.name}/{entry['path']}" in names
    for url in layout.python_files():
        assert url.removeprefix("py/") in names
    assert layout.built_files(), "the wheel build makes the Python snapshot and the .pyc stdlib"
    for url in layout.built_files():
        assert f"sdlens/_app/{url}" in names, url
    assert not any("node_modules" in n or n.endswith(".map") for n in names)


def test_lan_https_page_is_a_secure_isolated_context(browser, tmp_path):
    """`serve --lan` as a student's browser sees it once the certificate warning is accepted
    (Playwright's ignore_https_errors stands in for the click): WebGPU, Cache Storage and threads."""
    from sdlens.serving import lan

    cert, key, _ = lan.ensure_certificate(tmp_path)
    srv = Server.__new__(Server)
    srv.httpd = serve.make_server("127.0.0.1", 0, ROOT / "models", quiet=True, ssl_context=lan.server_context(cert, key))
    port = srv.httpd.server_address[1]
    import threading

    threading.Thread(target=srv.httpd.serve_forever, daemon=True).start()
    context = browser.new_context(ignore_https_errors=True)
    try:
        page = context.new_page()
        page.goto(f"http://{LAN_NAME}:{port}/")  # typed without https://: redirected
        assert page.url == f"https://{LAN_NAME}:{port}/"
        seen = page.evaluate("""async () => ({secure: isSecureContext, isolated: crossOriginIsolated,
            caches: typeof caches, gpu: "gpu" in navigator, subtle: Boolean(crypto.subtle),
            note: document.getElementById("context-note").textContent})""")
        assert seen == {"secure": True, "isolated": True, "caches": "object", "gpu": True, "subtle": True, "note": ""}
    finally:
        context.close()
        srv.stop()
