"""Python's boot from the built boot files (web/runtime/python_boot.js, py/sdlens/serving/snapshot.py):
the snapshot is used where it fits, and everything that does not fit boots the normal way, says why
in window.sdlens.debug.boot and still gives a working page."""

import dataclasses
import gzip
import json
import shutil
import threading

import pytest

import serve
from sdlens.serving import boot_files
from sdlens.serving.app_files import Layout
from sdlens.serving.snapshot import find_chromium, make_boot_files

from .test_browser import CHROMIUM, FLAGS

pytestmark = pytest.mark.skipif(find_chromium() is None, reason="needs Debian's chromium (scripts/install)")


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """Boot files made for this checkout's sources, in a folder of this module's own."""
    folder = tmp_path_factory.mktemp("built")
    make_boot_files(Layout.find(), folder)
    return folder


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=FLAGS)
        yield b
        b.close()


def boot_record(browser, layout, route=None):
    """The page's boot record on `layout`, once the page has made its first image (so it works)."""
    httpd = serve.make_server("127.0.0.1", 0, serve.ROOT / "models", quiet=True, layout=layout)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    context = browser.new_context()
    try:
        if route:
            context.route(*route)
        page = context.new_page()
        page.goto(f"http://localhost:{httpd.server_address[1]}/?backend=wasm")
        page.wait_for_function("window.sdlens?.startup?.firstImage", timeout=240_000, polling=100)
        return page.evaluate("window.sdlens.debug.boot"), page
    finally:
        httpd.shutdown()
        httpd.server_close()


def copy_built(built, tmp_path):
    folder = tmp_path / "built"
    shutil.copytree(built, folder)
    return folder


def test_boot_json_matches_this_checkout(built):
    layout = dataclasses.replace(Layout.find(), built=built)
    assert layout.built_staleness() is None
    assert set(layout.built_files()) == {"built/boot.json", "built/python_stdlib.pyc.zip", "built/snapshot-chromium.bin.gz"}


def test_snapshot_is_used_and_sources_are_shown(built, browser):
    record, page = boot_record(browser, dataclasses.replace(Layout.find(), built=built))
    assert record["mode"] == "snapshot", record
    assert record["reasons"] == []
    # the code editor reads the real sources through inspect.getsource: the files were written again
    assert "def guide(" in page.evaluate("window.sdlens.source('guidance')")
    assert "def step(" in page.evaluate("window.sdlens.source('step', 'ddim')")


def test_changed_source_falls_back(built, browser, tmp_path):
    layout = Layout.find()
    python = tmp_path / "py"
    shutil.copytree(layout.python / "sdlens", python / "sdlens", ignore=shutil.ignore_patterns("__pycache__"))
    guidance = python / "sdlens" / "guidance.py"
    text = guidance.read_text(encoding="utf-8")
    assert "    return eps_uncond + g" in text
    guidance.write_text(text.replace("    return eps_uncond + g", "    # a learner's local change\n    return eps_uncond + g"),
                        encoding="utf-8")
    changed = dataclasses.replace(layout, python=python, built=built)
    assert "other py/sdlens sources" in changed.built_staleness()
    record, page = boot_record(browser, changed)
    assert record["mode"] == "pyc", record
    assert any("other py/sdlens sources" in r for r in record["reasons"]), record
    assert "# a learner's local change" in page.evaluate("window.sdlens.source('guidance')")


@pytest.mark.parametrize("damage, reason", [
    ("truncate", "truncated"),
    ("corrupt", "sha256"),
])
def test_damaged_snapshot_falls_back(built, browser, tmp_path, damage, reason):
    folder = copy_built(built, tmp_path)
    snapshot = folder / boot_files.snapshot_name("chromium")
    data = snapshot.read_bytes()
    snapshot.write_bytes(data[: len(data) // 2] if damage == "truncate" else data[:1000] + bytes(1000) + data[2000:])
    record, _ = boot_record(browser, dataclasses.replace(Layout.find(), built=folder))
    assert record["mode"] == "pyc", record
    assert any(reason in r for r in record["reasons"]), record


def test_snapshot_that_fails_to_restore_falls_back(built, browser, tmp_path):
    """A heap that passes every check boot.json can make (its own size and sha256) but is not a
    Pyodide heap: Pyodide's restore refuses it, and the page boots with the .pyc zip."""
    folder = copy_built(built, tmp_path)
    name = boot_files.snapshot_name("chromium")
    heap = gzip.decompress((folder / name).read_bytes())
    (folder / name).write_bytes(gzip.compress(bytes(len(heap)), mtime=0))
    boot = json.loads((folder / boot_files.BOOT_JSON).read_text())
    boot["snapshots"]["chromium"].update({k: v for k, v in boot_files.entry(folder, name).items() if k != "path"})
    (folder / boot_files.BOOT_JSON).write_text(json.dumps(boot))
    record, _ = boot_record(browser, dataclasses.replace(Layout.find(), built=folder))
    assert record["mode"] == "pyc", record
    assert any("the snapshot boot failed" in r for r in record["reasons"]), record


def test_wrong_content_type_still_restores(built, browser):
    """A static host that sends the gzipped snapshot as text/plain: the bytes are read as bytes."""
    def as_text(route):
        response = route.fetch()
        route.fulfill(response=response, headers={**response.headers, "content-type": "text/plain"})

    record, _ = boot_record(browser, dataclasses.replace(Layout.find(), built=built), ("**/built/*.gz", as_text))
    assert record["mode"] == "snapshot", record


def test_no_built_files_boots_plainly(browser, tmp_path):
    record, _ = boot_record(browser, dataclasses.replace(Layout.find(), built=tmp_path / "nothing"))
    assert record["mode"] == "plain", record
    assert any("no built boot files" in r for r in record["reasons"]), record
