"""Model files in the browser at small size, as a full-size model meets them: weights split over
several files, each streamed into Cache Storage and checked; a truncated piece, a wrong checksum, a
download that breaks off, a reload mid-download and a too-small quota each end in a clear message,
and a retry downloads only what the cache does not already hold (counted at the server)."""

from __future__ import annotations

import json
import shutil
import socket
import threading
import time
from pathlib import Path

import numpy as np
import pytest

import serve
from sdlens.cpython.runtime import OnnxRuntime
from sdlens.model import Model
from sdlens.pipeline import Pipeline

from .conftest import ROOT
from .test_browser import TOLERANCE, Page, browser, cpython_pixels  # noqa: F401  (shared fixtures)

ARTIFACTS = ROOT / "test-artifacts"
PIECE_BYTES = 1 << 20  # the lowered file limit of the test model
TIMEOUT = 120_000
SETTINGS = dict(prompt="a green heart", negative="", seed=11, steps=2, guidance=7.5, scheduler="euler")


@pytest.fixture(scope="module")
def models_dir(tiny_pipeline_dir, tmp_path_factory):
    """The tiny model exported with the file limit lowered to 1 MiB: every graph is a graph file
    plus several external-data files, each with its own sha256, as a full-size model's are."""
    from export.convert import convert

    folder = tmp_path_factory.mktemp("split-models")
    convert(str(tiny_pipeline_dir), folder / "tiny-split", ["fp32"], quiet=True, name="tiny-split",
            default_model=True, max_file_bytes=PIECE_BYTES)
    return folder


def fp32_files(models_dir) -> list[str]:
    """The files the browser downloads for fp32, in its order."""
    manifest = json.loads((models_dir / "tiny-split" / "manifest.json").read_text())
    files = [manifest["tokenizer"]["file"]["path"]]
    for component in ("text_encoder", "unet", "vae_decoder"):
        files += [f["path"] for f in manifest["components"][component]["variants"]["fp32"]["files"]]
    return files


class FileServer:
    """serve.py's server, counting each model-file request; `cut` makes a response stop after
    some bytes (the connection drops), `hold` makes one wait half-sent until released."""

    def __init__(self, models_dir: Path):
        self.models_dir = Path(models_dir).resolve()
        self.requests: list[str] = []
        self.cut: dict[str, int] = {}
        self.hold: dict[str, threading.Event] = {}
        self.httpd = serve.make_server("127.0.0.1", 0, self.models_dir, quiet=True)
        self.url = f"http://localhost:{self.httpd.server_address[1]}"
        outer = self

        class Handler(self.httpd.RequestHandlerClass):
            def send_file(self, path, head, cross_origin=False):
                if self.models_dir not in Path(path).resolve().parents or path.name == "manifest.json":
                    return super().send_file(path, head, cross_origin)
                relative = Path(path).resolve().relative_to(self.models_dir / "tiny-split").as_posix()
                outer.requests.append(relative)
                stop_at = outer.cut.get(relative)
                held = outer.hold.get(relative)
                if stop_at is None and held is None:
                    return super().send_file(path, head, cross_origin)
                data = Path(path).read_bytes()
                self.send_response(200)
                self.common_headers(cross_origin)
                self.send_header("Content-Type", "application/octet-stream")
                self.send_header("Content-Length", str(len(data)))  # promises the whole file
                self.end_headers()
                half = stop_at if stop_at is not None else len(data) // 2
                self.wfile.write(data[:half])
                self.wfile.flush()
                if held is not None:
                    held.wait(60)
                self.close_connection = True
                try:
                    self.connection.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

        self.httpd.RequestHandlerClass = Handler
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def stop(self):
        for event in self.hold.values():
            event.set()
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def file_server(models_dir):
    srv = FileServer(models_dir)
    yield srv
    srv.stop()


def record_progress(context):
    """Keep every progress line the page shows (they change faster than a test can poll)."""
    context.add_init_script("""
        window.progressLines = [];
        document.addEventListener('DOMContentLoaded', () => {
            const el = document.getElementById('progress-text');
            new MutationObserver(() => window.progressLines.push(el.textContent))
                .observe(el, {childList: true, characterData: true, subtree: true});
        });""")


def wait_for_error(page) -> str:
    page.page.wait_for_function("!document.getElementById('error').hidden", timeout=TIMEOUT)
    return page.page.locator("#error").text_content()


def shot(page, name, width=None):
    ARTIFACTS.mkdir(exist_ok=True)
    if width:
        page.page.set_viewport_size({"width": width, "height": 900})
    page.page.screenshot(path=str(ARTIFACTS / f"files-{name}.png"))


def test_split_model_files_are_small_and_many(models_dir):
    manifest = json.loads((models_dir / "tiny-split" / "manifest.json").read_text())
    unet = manifest["components"]["unet"]["variants"]["fp32"]["files"]
    assert len(unet) >= 4 and all(f["path"].endswith(".onnx_data") for f in unet[1:])
    for component in ("text_encoder", "unet", "vae_decoder"):
        for f in manifest["components"][component]["variants"]["fp32"]["files"]:
            assert f["bytes"] <= PIECE_BYTES


@pytest.mark.parametrize("backend", ["wasm", "webgpu"])
def test_split_model_matches_the_cli(browser, file_server, models_dir, backend):  # noqa: F811
    cpython = Pipeline(Model.from_dir(str(models_dir / "tiny-split")), OnnxRuntime())
    context = browser.new_context()
    try:
        page = Page(context, file_server, f"?backend={backend}").ready()
        assert sorted(file_server.requests) == sorted(fp32_files(models_dir))  # each piece once
        # On SwiftShader one UNet pass (guidance off) is what this check can afford.
        settings = SETTINGS if backend == "wasm" else {**SETTINGS, "steps": 1, "guidance": 1.0}
        result = page.generate(**settings)
        got = np.array(result["rgba"], np.uint8).reshape(result["height"], result["width"], 4)[..., :3]
        assert np.abs(got.astype(int) - cpython_pixels(cpython, settings)).max() <= TOLERANCE[backend]
        assert page.errors == [] and page.origins == {file_server.url}
    finally:
        context.close()


def test_damaged_pieces_are_named(browser, models_dir, tmp_path):  # noqa: F811
    """A truncated piece, then (after a reload) a piece with one bit flipped: each is named."""
    folder = tmp_path / "models"
    shutil.copytree(models_dir, folder)
    piece = "unet/model_fp32-01.onnx_data"
    path = folder / "tiny-split" / piece
    data = path.read_bytes()
    path.write_bytes(data[:-4096])
    srv = FileServer(folder)
    context = browser.new_context()
    try:
        page = Page(context, srv, "?backend=wasm")
        text = wait_for_error(page)
        assert f"Model file {piece} is {len(data) - 4096} bytes, manifest.json says {len(data)}: truncated" in text, text
        path.write_bytes(data[:100] + bytes([data[100] ^ 1]) + data[101:])
        page.page.reload()
        page.page.wait_for_function(
            "document.getElementById('error').textContent.includes('checksum')", timeout=TIMEOUT)
        text = page.page.locator("#error").text_content()
        assert f"Model file {piece} failed its checksum" in text, text
        assert page.page.evaluate("typeof window.sdlens.generate") == "function"  # no dead page
        shot(page, "error-checksum")
    finally:
        context.close()
        srv.stop()


def test_interrupted_downloads_resume_from_the_verified_pieces(browser, file_server, models_dir):  # noqa: F811
    """A download that breaks off, then a reload in the middle of the next one: each retry
    fetches only the pieces the cache does not hold (counted at the server)."""
    files = fp32_files(models_dir)
    broken, held = "unet/model_fp32-01.onnx_data", "vae_decoder/model_fp32-00.onnx_data"
    file_server.cut[broken] = 300_000  # the connection drops after 300 kB of this piece
    context = browser.new_context()
    record_progress(context)
    resumed = lambda n: any(line.startswith(f"Resuming an unfinished download ({n} files already here)")  # noqa: E731
                            for line in page.page.evaluate("window.progressLines"))
    try:
        page = Page(context, file_server, "?backend=wasm")
        text = wait_for_error(page)
        saved = files.index(broken)
        size = (models_dir / "tiny-split" / broken).stat().st_size
        assert f"The download of {broken} broke off at" in text and f"KiB of {size / 1024:.0f} KiB" in text, text
        assert f"{saved} of {len(files)} files are saved; reload the page to resume from there." in text, text
        assert file_server.requests == files[: files.index(broken) + 1]
        shot(page, "error-broke-off")
        shot(page, "error-broke-off-390", width=390)
        page.page.set_viewport_size({"width": 1280, "height": 900})

        # The server is back; this time the page is reloaded while a later piece is half-sent.
        file_server.cut.clear()
        file_server.requests.clear()
        file_server.hold[held] = threading.Event()
        page.page.reload()
        deadline = time.time() + 120
        while held not in file_server.requests and time.time() < deadline:
            time.sleep(0.2)
        assert file_server.requests == files[files.index(broken): files.index(held) + 1]
        assert resumed(files.index(broken))
        page.page.wait_for_function(
            f"document.getElementById('progress-text').textContent.includes({json.dumps(held)})", timeout=TIMEOUT)
        shot(page, "download-progress")
        shot(page, "download-progress-390", width=390)
        page.page.set_viewport_size({"width": 1280, "height": 900})

        del file_server.hold[held]
        file_server.requests.clear()
        page.page.reload()  # the half-sent piece is abandoned with the old worker
        page.ready()
        assert file_server.requests == files[files.index(held):]
        assert resumed(files.index(held))
        assert page.errors == []
    finally:
        context.close()


def test_too_small_quota_is_explained(browser, file_server, models_dir):  # noqa: F811
    context = browser.new_context()
    try:
        page = context.new_page()
        page.goto(f"{file_server.url}/api/models.json")
        cdp = context.new_cdp_session(page)
        cdp.send("Storage.overrideQuotaForOrigin", {"origin": file_server.url, "quotaSize": 3 * 1024 * 1024})
        errors = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto(f"{file_server.url}/?backend=wasm")
        page.wait_for_function("!document.getElementById('error').hidden", timeout=TIMEOUT)
        text = page.locator("#error").text_content()
        # Chromium's estimate() in the worker ignores the override; its refusal to store is what shows.
        assert "more of browser storage, but the browser refused to store more for this site" in text, text
        assert "then reload: what is downloaded already is kept" in text, text
        assert len(file_server.requests) < len(fp32_files(models_dir))  # stopped, not gone on regardless
        page.screenshot(path=str(ARTIFACTS / "files-error-quota.png"))
    finally:
        context.close()
