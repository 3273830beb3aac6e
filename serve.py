#!/usr/bin/env python3
"""python serve.py: serve the sdlens app to browsers on this machine or a classroom network.

Standard library only. Everything is computed in the browser; this server only hands out files:
the app (web/), the sdlens Python sources that Pyodide runs (py/sdlens/), the models (models/),
and the runtime files vendored by `npm ci` (Pyodide, onnxruntime-web, d3). Nothing is fetched
from the internet, by the server or by the page.

Why the headers matter:
- MIME types are set here, never taken from the OS (Windows often maps .js to text/plain,
  which breaks ES modules; .wasm must be application/wasm for streaming compilation).
- COOP/COEP make the page cross-origin isolated, which multi-threaded WASM needs.
- Range requests, ETag and Last-Modified let big model files resume and be revalidated.
"""

from __future__ import annotations

import argparse
import email.utils
import json
import os
import re
import sys
import urllib.parse
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

ROOT = Path(__file__).resolve().parent
NODE_MODULES = ROOT / "node_modules"

MIME_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".mjs": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".json": "application/json",
    ".map": "application/json",
    ".wasm": "application/wasm",
    ".onnx": "application/octet-stream",
    ".onnx_data": "application/octet-stream",
    ".gz": "application/gzip",  # the tokenizer; no Content-Encoding, the worker unzips it itself
    ".py": "text/x-python; charset=utf-8",
    ".zip": "application/zip",
    ".png": "image/png",
    ".svg": "image/svg+xml",
    ".ico": "image/x-icon",
    ".txt": "text/plain; charset=utf-8",
    ".md": "text/plain; charset=utf-8",
}

# The runtime files the page needs, by URL prefix → folder (after `npm ci`).
VENDOR = {
    "/vendor/pyodide/": NODE_MODULES / "pyodide",
    "/vendor/ort/": NODE_MODULES / "onnxruntime-web" / "dist",
    "/vendor/d3/": NODE_MODULES / "d3" / "dist",
}
# CodeMirror 6 (the code editor) as the ES modules npm ships, one folder per package; index.html's
# import map names each package's entry file (tests/test_code_editor.py checks the two agree).
CODEMIRROR = {
    "codemirror": "dist/index.js", "@codemirror/autocomplete": "dist/index.js",
    "@codemirror/commands": "dist/index.js", "@codemirror/lang-python": "dist/index.js",
    "@codemirror/language": "dist/index.js", "@codemirror/lint": "dist/index.js",
    "@codemirror/search": "dist/index.js", "@codemirror/state": "dist/index.js",
    "@codemirror/streamparser": "dist/index.js", "@codemirror/view": "dist/index.js",
    "@lezer/common": "dist/index.js", "@lezer/highlight": "dist/index.js", "@lezer/lr": "dist/index.js",
    "@lezer/python": "dist/index.js", "@marijn/find-cluster-break": "src/index.js", "crelt": "index.js",
    "style-mod": "src/style-mod.js", "w3c-keyname": "index.js",
}
VENDOR.update({f"/vendor/npm/{name}/": NODE_MODULES / name for name in CODEMIRROR})
VENDOR["/vendor/umap/"] = NODE_MODULES / "umap-js" / "lib"  # one UMD bundle, loaded like d3
VENDOR_CHECK = [
    NODE_MODULES / "pyodide" / "pyodide.mjs",
    NODE_MODULES / "pyodide" / "pyodide.asm.wasm",
    NODE_MODULES / "pyodide" / "python_stdlib.zip",
    NODE_MODULES / "onnxruntime-web" / "dist" / "ort.webgpu.min.mjs",
    NODE_MODULES / "d3" / "dist" / "d3.min.js",
    NODE_MODULES / "@codemirror" / "view" / "dist" / "index.js",
]
# Runtime files a visit may load, cached by the service worker for offline use.
VENDOR_SHELL = [
    "/vendor/pyodide/pyodide.mjs", "/vendor/pyodide/pyodide.asm.mjs", "/vendor/pyodide/pyodide.asm.wasm",
    "/vendor/pyodide/python_stdlib.zip", "/vendor/pyodide/pyodide-lock.json",
    "/vendor/ort/ort.webgpu.min.mjs", "/vendor/ort/ort-wasm-simd-threaded.asyncify.mjs",
    "/vendor/ort/ort-wasm-simd-threaded.asyncify.wasm", "/vendor/ort/ort.wasm.min.mjs",
    "/vendor/ort/ort-wasm-simd-threaded.mjs", "/vendor/ort/ort-wasm-simd-threaded.wasm",
    "/vendor/d3/d3.min.js",
    *(f"/vendor/npm/{name}/{entry}" for name, entry in CODEMIRROR.items()),
    "/vendor/umap/umap-js.min.js",
]
RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")


def missing_vendor_files() -> list[Path]:
    return [p for p in VENDOR_CHECK if not p.is_file()]


def python_sources() -> list[str]:
    """The sdlens modules the browser imports: the pure-Python core, not the CPython adapter."""
    package = ROOT / "py" / "sdlens"
    files = []
    for path in sorted(package.rglob("*.py")):
        relative = path.relative_to(package.parent).as_posix()
        if "/cpython/" in relative or relative.endswith("__main__.py"):
            continue
        files.append(relative)
    return files


def shell_urls() -> list[str]:
    """Every app file a visit may need offline: the page, its scripts, the Python, the runtime."""
    web = ROOT / "web"
    urls = ["/", "/api/python.json", "/api/models.json"]
    urls += ["/" + p.relative_to(web).as_posix() for p in sorted(web.rglob("*")) if p.is_file()]
    urls += ["/py/" + f for f in python_sources()]
    return urls + VENDOR_SHELL


def list_models(models_dir: Path) -> list[dict]:
    models = []
    for manifest_path in sorted(models_dir.glob("*/manifest.json")):
        try:
            manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        models.append({
            "id": manifest_path.parent.name,
            "name": manifest.get("name", manifest_path.parent.name),
            "default": bool(manifest.get("default")),
            "manifest": f"/models/{urllib.parse.quote(manifest_path.parent.name)}/manifest.json",
        })
    if models and not any(m["default"] for m in models):
        models[0]["default"] = True
    return models


class Handler(BaseHTTPRequestHandler):
    server_version = "sdlens"
    protocol_version = "HTTP/1.1"
    models_dir: Path = ROOT / "models"
    quiet = False

    # -- routing --------------------------------------------------------------------------------
    def roots(self) -> list[tuple[str, Path]]:
        return [*VENDOR.items(), ("/py/", ROOT / "py"), ("/models/", self.models_dir), ("/", ROOT / "web")]

    def do_HEAD(self):
        self.handle_get(head=True)

    def do_GET(self):
        self.handle_get(head=False)

    def handle_get(self, head: bool):
        path = urllib.parse.urlsplit(self.path).path
        if path == "/api/models.json":
            return self.send_json(list_models(self.models_dir), head)
        if path == "/api/python.json":
            return self.send_json(python_sources(), head)
        if path == "/api/shell.json":
            return self.send_json(shell_urls(), head)
        if path in ("/", "/index.html") and missing_vendor_files():
            return self.send_missing_vendor(head)
        for prefix, folder in self.roots():
            if path.startswith(prefix):
                target = self.resolve(folder, path[len(prefix):])
                if target is None:
                    return self.send_error(HTTPStatus.FORBIDDEN, "path outside the served folders")
                if target.is_dir():
                    target = target / "index.html"
                if not target.is_file():
                    return self.send_error(HTTPStatus.NOT_FOUND)
                return self.send_file(target, head)
        self.send_error(HTTPStatus.NOT_FOUND)

    @staticmethod
    def resolve(folder: Path, relative: str) -> Path | None:
        """The file a URL path names inside `folder`, or None if it would leave the folder
        (`..`, encoded `%2e%2e`, backslashes, absolute paths, symlinks pointing outside)."""
        decoded = urllib.parse.unquote(relative)
        if "\x00" in decoded or "\\" in decoded or decoded.startswith("/") or re.match(r"^[A-Za-z]:", decoded):
            return None
        parts = [p for p in decoded.split("/") if p]
        if any(p in (".", "..") for p in parts):
            return None
        base = folder.resolve()
        target = base.joinpath(*parts).resolve()
        if target != base and base not in target.parents:
            return None
        return target

    # -- responses ------------------------------------------------------------------------------
    def common_headers(self):
        self.send_header("Cross-Origin-Opener-Policy", "same-origin")
        self.send_header("Cross-Origin-Embedder-Policy", "require-corp")
        self.send_header("Cross-Origin-Resource-Policy", "same-origin")
        self.send_header("X-Content-Type-Options", "nosniff")

    def send_json(self, data, head: bool):
        body = json.dumps(data).encode()
        self.send_response(HTTPStatus.OK)
        self.common_headers()
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-cache")
        self.end_headers()
        if not head:
            self.wfile.write(body)

    def send_missing_vendor(self, head: bool):
        missing = ", ".join(str(p.relative_to(ROOT)) for p in missing_vendor_files())
        body = (
            "<!doctype html><meta charset=utf-8><title>sdlens: setup needed</title>"
            "<h1>sdlens needs its browser runtime files</h1>"
            f"<p>Missing: {missing}</p><p>In the sdlens folder, run: <code>npm ci</code>, "
            "then reload this page.</p>"
        ).encode()
        self.send_response(HTTPStatus.SERVICE_UNAVAILABLE)
        self.common_headers()
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if not head:
            self.wfile.write(body)

    def send_file(self, path: Path, head: bool):
        stat = path.stat()
        size = stat.st_size
        etag = f'"{size:x}-{stat.st_mtime_ns:x}"'
        last_modified = email.utils.formatdate(stat.st_mtime, usegmt=True)
        if self.not_modified(etag, stat.st_mtime):
            self.send_response(HTTPStatus.NOT_MODIFIED)
            self.common_headers()
            self.send_header("ETag", etag)
            self.send_header("Last-Modified", last_modified)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return

        start, end = 0, size - 1
        status = HTTPStatus.OK
        range_header = self.headers.get("Range")
        if range_header and self.headers.get("If-Range", etag) == etag:
            parsed = self.parse_range(range_header, size)
            if parsed is None:
                self.send_response(HTTPStatus.REQUESTED_RANGE_NOT_SATISFIABLE)
                self.common_headers()
                self.send_header("Content-Range", f"bytes */{size}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            start, end = parsed
            status = HTTPStatus.PARTIAL_CONTENT

        length = end - start + 1 if size else 0
        self.send_response(status)
        self.common_headers()
        self.send_header("Content-Type", MIME_TYPES.get(self.suffix(path), "application/octet-stream"))
        self.send_header("Content-Length", str(length))
        self.send_header("Accept-Ranges", "bytes")
        self.send_header("ETag", etag)
        self.send_header("Last-Modified", last_modified)
        self.send_header("Cache-Control", "no-cache")
        if status == HTTPStatus.PARTIAL_CONTENT:
            self.send_header("Content-Range", f"bytes {start}-{end}/{size}")
        self.end_headers()
        if head or not length:
            return
        with open(path, "rb") as f:
            f.seek(start)
            remaining = length
            while remaining:
                chunk = f.read(min(1 << 20, remaining))
                if not chunk:
                    break
                self.wfile.write(chunk)
                remaining -= len(chunk)

    @staticmethod
    def suffix(path: Path) -> str:
        return ".onnx_data" if path.name.endswith(".onnx_data") else path.suffix.lower()

    def not_modified(self, etag: str, mtime: float) -> bool:
        if_none_match = self.headers.get("If-None-Match")
        if if_none_match is not None:
            return etag in [t.strip() for t in if_none_match.split(",")] or if_none_match.strip() == "*"
        since = self.headers.get("If-Modified-Since")
        if since:
            try:
                return int(mtime) <= email.utils.parsedate_to_datetime(since).timestamp()
            except (TypeError, ValueError):
                return False
        return False

    @staticmethod
    def parse_range(header: str, size: int) -> tuple[int, int] | None:
        """One byte range (`bytes=a-b`, `bytes=a-`, `bytes=-n`) → inclusive (start, end), or None."""
        match = RANGE.match(header.strip())
        if not match or match.groups() == ("", ""):
            return None
        first, last = match.groups()
        if first == "":
            suffix = int(last)
            if suffix == 0:
                return None
            return max(size - suffix, 0), size - 1
        start = int(first)
        end = min(int(last), size - 1) if last else size - 1
        if start >= size or end < start:
            return None
        return start, end

    def log_message(self, format, *args):
        if not self.quiet:
            super().log_message(format, *args)


def make_server(host: str, port: int, models_dir: Path, quiet: bool = False) -> ThreadingHTTPServer:
    handler = type("SdlensHandler", (Handler,), {"models_dir": Path(models_dir).resolve(), "quiet": quiet})
    server = ThreadingHTTPServer((host, port), handler)
    server.daemon_threads = True
    return server


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Serve the sdlens app (everything runs in the browser).")
    parser.add_argument("--host", default="127.0.0.1",
                        help="address to listen on (default 127.0.0.1; 0.0.0.0 for a classroom network)")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--models", type=Path, default=ROOT / "models", help="folder of exported models")
    parser.add_argument("--quiet", action="store_true", help="do not log each request")
    args = parser.parse_args(argv)

    if not args.models.is_dir():
        print(f"error: models folder {args.models} does not exist", file=sys.stderr)
        return 2
    missing = missing_vendor_files()
    if missing:
        print("warning: the browser runtime files are missing "
              f"({', '.join(str(p.relative_to(ROOT)) for p in missing)}); run: npm ci", file=sys.stderr)
    models = list_models(args.models)
    if not models:
        print(f"warning: no models in {args.models}; make one with: python -m export convert …", file=sys.stderr)
    try:
        server = make_server(args.host, args.port, args.models, args.quiet)
    except OSError as err:
        print(f"error: cannot listen on {args.host}:{args.port}: {err.strerror}", file=sys.stderr)
        return 2
    shown_host = "localhost" if args.host in ("127.0.0.1", "0.0.0.0", "::1", "localhost") else args.host
    print(f"sdlens: http://{shown_host}:{server.server_address[1]}", flush=True)
    if args.host not in ("127.0.0.1", "localhost", "::1"):
        print("note: WebGPU needs a secure context; other machines must reach this one via HTTPS or "
              "use the WASM backend", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
