"""`python -m sdlens snapshot`: makes the built boot files (boot_files.py) in headless Chromium.

Chromium is started as a plain subprocess (Debian's, never a downloaded one) on a page of a
throwaway local server; the page's worker (web/runtime/make_snapshot.js) boots Pyodide as the app
does and POSTs back the compiled standard library and the heap. A snapshot must be made in the
browser family that restores it: one made in Node fails run_sync in Chromium.
"""

from __future__ import annotations

import gzip
import json
import os
import shutil
import subprocess
import tempfile
import threading
import urllib.parse
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from . import app_files, boot_files
from .app_files import Layout

CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
FLAGS = ["--headless", "--no-sandbox", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--disable-quic"]
# The browser families a snapshot made in a family restores in, as measured: a heap made in headless
# Chromium 156 restores in Firefox ESR 153 with run_sync working and the same pixels
# (tests/test_firefox.py); one made in Node fails run_sync in Chromium, so Node is not a family.
RESTORES_IN = {"chromium": ["chromium", "firefox"]}
PAGE = b"""<!doctype html><script type=module>
new Worker("runtime/make_snapshot.js", {type: "module"});
</script>"""


class SnapshotError(Exception):
    pass


def find_chromium() -> str | None:
    return next((path for name in CHROMIUM_NAMES if (path := shutil.which(name))), None)


def _handler(layout: Layout, results: dict, finished: threading.Event):
    files = {**layout.web_files(), **layout.python_files(), **layout.runtime_files()}
    python_json = json.dumps(app_files.python_sources(layout.python)).encode()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            url = urllib.parse.urlsplit(self.path).path.lstrip("/")
            if url in ("", "index.html"):
                return self.reply(PAGE, "text/html")
            if url == app_files.API_PYTHON:
                return self.reply(python_json, "application/json")
            if url not in files:
                return self.send_error(HTTPStatus.NOT_FOUND)
            self.reply(files[url].read_bytes(), app_files.mime_type(url))

        def do_POST(self):
            name = self.path.rsplit("/", 1)[-1]
            results[name] = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            self.reply(b"", "text/plain")
            if name in ("done", "error"):
                finished.set()

        def reply(self, body: bytes, content_type: str):
            self.send_response(HTTPStatus.OK)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            # as serve.py: cross-origin isolated, so the heap is made under the page's conditions
            self.send_header("Cross-Origin-Opener-Policy", "same-origin")
            self.send_header("Cross-Origin-Embedder-Policy", "require-corp")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    return Handler


def make_boot_files(layout: Layout, out: Path | None = None, chromium: str | None = None,
                    timeout_s: float = 300) -> dict:
    """Builds the .pyc standard library and the Chromium snapshot into `out` (default: the layout's
    built folder) and returns the boot.json written. Files are replaced atomically, boot.json last,
    so a page never reads a boot.json naming files of another build."""
    out = Path(out or layout.built)
    chromium = chromium or find_chromium()
    if chromium is None:
        raise SnapshotError("no Chromium found (Debian: apt-get install chromium); the app works without "
                            "the snapshot, only its start is slower")
    missing = layout.missing_runtime_files()
    if missing:
        raise SnapshotError(f"the browser runtime files are missing ({missing[0]}); {layout.setup_hint}")
    results: dict[str, bytes] = {}
    finished = threading.Event()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(layout, results, finished))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    with tempfile.TemporaryDirectory(prefix="sdlens-snapshot-") as profile:
        browser = subprocess.Popen([chromium, *FLAGS, f"--user-data-dir={profile}",
                                    f"http://127.0.0.1:{server.server_address[1]}/"],
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            if not finished.wait(timeout_s):
                raise SnapshotError(f"Chromium made no snapshot within {timeout_s:.0f} s")
        finally:
            browser.terminate()
            try:
                browser.wait(10)
            except subprocess.TimeoutExpired:
                browser.kill()
                browser.wait()
            server.shutdown()
            server.server_close()
    if "error" in results:
        raise SnapshotError(f"making the snapshot failed in Chromium: {results['error'].decode(errors='replace')}")
    made = json.loads(results["done"])
    files = app_files.python_sources(layout.python)
    if made["sources_sha256"] != boot_files.sources_sha256(layout.python, files):
        raise SnapshotError("the page's sha256 of py/sdlens differs from CPython's (python_boot.js and "
                            "boot_files.py must hash alike)")
    family = made["family"]
    out.mkdir(parents=True, exist_ok=True)
    stdlib, snapshot = boot_files.STDLIB_ZIP, boot_files.snapshot_name(family)
    _write_atomic(out / stdlib, results["stdlib"])
    _write_atomic(out / snapshot, gzip.compress(results["snapshot"], compresslevel=9, mtime=0))
    pyodide_dir = layout.vendor["vendor/pyodide/"]
    boot = {
        "pyodide": made["pyodide"],
        "pyodide_wasm_sha256": boot_files.file_sha256(pyodide_dir / boot_files.PYODIDE_WASM),
        "stdlib": boot_files.entry(out, stdlib),
        "snapshots": {family: {**boot_files.entry(out, snapshot), "heap_bytes": len(results["snapshot"]),
                               "restores_in": RESTORES_IN.get(family, [family]),
                               "sources_sha256": made["sources_sha256"],
                               "stdlib_sha256": boot_files.entry(out, stdlib)["sha256"]}},
    }
    _write_atomic(out / boot_files.BOOT_JSON, json.dumps(boot, indent=1).encode())
    return boot


def ensure_boot_files(layout: Layout) -> str:
    """Makes the built boot files where they are missing or do not fit these sources (serve.py,
    `sdlens site` and the wheel build call this) and says in one line what came of it. Where they
    cannot be made (no Chromium), the app still works: its Python then boots the normal way."""
    reason = layout.built_staleness()
    if reason is None:
        return f"Python snapshot: up to date in {layout.built}"
    try:
        make_boot_files(layout)
    except (SnapshotError, OSError) as err:
        return f"Python snapshot not made ({reason}): {err}; pages boot Python the slower way"
    return f"Python snapshot: made in {layout.built} ({reason})"


def _write_atomic(path: Path, data: bytes) -> None:
    temporary = path.with_name(path.name + ".tmp-" + str(os.getpid()))
    temporary.write_bytes(data)
    os.replace(temporary, path)


def add_arguments(parser) -> None:
    parser.add_argument("--out", type=Path, help="folder to write (default: where serve.py serves them from)")
    parser.add_argument("--chromium", help="the Chromium binary (default: found on PATH)")
    parser.add_argument("--if-stale", action="store_true", help="only when the built files do not fit these sources")


def run(args, layout: Layout) -> int:
    import sys

    if args.if_stale and args.out is None and layout.built_staleness() is None:
        print(f"sdlens snapshot: {layout.built} is up to date")
        return 0
    try:
        boot = make_boot_files(layout, args.out, args.chromium)
    except SnapshotError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    where = args.out or layout.built
    for name, item in [("standard library (.pyc)", boot["stdlib"]),
                       *((f"snapshot ({family})", s) for family, s in boot["snapshots"].items())]:
        print(f"{name}: {where / item['path'].removeprefix(boot_files.URL_PREFIX)} ({item['bytes'] / 1e6:.1f} MB)")
    return 0
