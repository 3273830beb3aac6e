"""serve.py: right files, right headers, nothing outside the served folders."""

import http.client
import json
import os
import threading

import pytest

from pathlib import Path

import serve
from sdlens.serving.app_files import RUNTIME_FILES


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    models = tmp_path_factory.mktemp("served-models")
    (models / "m1").mkdir()
    (models / "m1" / "manifest.json").write_text(json.dumps({"name": "Model one", "default": True}))
    (models / "m1" / "model.onnx").write_bytes(bytes(range(256)) * 40)
    (models / "m1" / "model.onnx_data").write_bytes(b"x" * 100)
    (models / "m1" / "tokenizer.json.gz").write_bytes(b"\x1f\x8b" + b"z" * 50)
    outside = tmp_path_factory.mktemp("outside")
    (outside / "secret.txt").write_text("secret")
    os.symlink(outside / "secret.txt", models / "m1" / "link.txt")
    srv = serve.make_server("127.0.0.1", 0, models, quiet=True)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    yield srv
    srv.shutdown()
    srv.server_close()


def get(server, path, headers=None, method="GET"):
    conn = http.client.HTTPConnection("127.0.0.1", server.server_address[1], timeout=10)
    # http.client would normalise nothing, so traversal attempts reach the server as written.
    conn.putrequest(method, path, skip_accept_encoding=True)
    for k, v in (headers or {}).items():
        conn.putheader(k, v)
    conn.endheaders()
    response = conn.getresponse()
    body = response.read()
    conn.close()
    return response, body


@pytest.mark.parametrize("path", [
    "/../serve.py", "/%2e%2e/serve.py", "/%2E%2E/%2e%2e/etc/passwd", "/models/../serve.py",
    "/models/%2e%2e/%2e%2e/etc/passwd", "/models/m1/link.txt", "/py/%2e%2e/serve.py", "//etc/passwd",
    "/models/m1/..%5c..%5cserve.py", "/vendor/ort/%2e%2e/%2e%2e/package.json", "/models/%00/x",
])
def test_traversal_is_refused(server, path):
    response, body = get(server, path)
    assert response.status in (403, 404), (path, response.status)
    assert b"secret" not in body and b"import" not in body


def test_mime_types_and_isolation_headers(server):
    cases = {
        "/": "text/html; charset=utf-8",
        "/app.js": "text/javascript; charset=utf-8",
        "/vendor/pyodide/pyodide.mjs": "text/javascript; charset=utf-8",
        "/vendor/ort/ort-wasm-simd-threaded.wasm": "application/wasm",
        "/models/m1/manifest.json": "application/json",
        "/models/m1/tokenizer.json.gz": "application/gzip",
        "/models/m1/model.onnx": "application/octet-stream",
        "/models/m1/model.onnx_data": "application/octet-stream",
        "/py/sdlens/pipeline.py": "text/x-python; charset=utf-8",
        "/runtime/ops/combine_2.onnx": "application/octet-stream",
    }
    for path, mime in cases.items():
        response, _ = get(server, path, method="HEAD")
        assert response.status == 200, path
        assert response.getheader("Content-Type") == mime, path
        assert response.getheader("Content-Encoding") is None, path  # bytes as stored: sha256 checks them
        assert response.getheader("Cross-Origin-Opener-Policy") == "same-origin"
        assert response.getheader("Cross-Origin-Embedder-Policy") == "require-corp"
        assert response.getheader("Accept-Ranges") == "bytes"


def test_range_requests(server):
    data = bytes(range(256)) * 40
    for header, (start, end) in {"bytes=0-99": (0, 99), "bytes=1000-": (1000, len(data) - 1),
                                 "bytes=-10": (len(data) - 10, len(data) - 1), "bytes=5-5": (5, 5),
                                 "bytes=10000-20000": (10000, len(data) - 1)}.items():
        response, body = get(server, "/models/m1/model.onnx", {"Range": header})
        assert response.status == 206, header
        assert body == data[start:end + 1], header
        assert response.getheader("Content-Range") == f"bytes {start}-{end}/{len(data)}"
    for bad in ["bytes=20000-", "bytes=9-3", "bytes=-0"]:
        response, _ = get(server, "/models/m1/model.onnx", {"Range": bad})
        assert response.status == 416 and response.getheader("Content-Range") == f"bytes */{len(data)}"


def test_conditional_requests(server):
    response, _ = get(server, "/models/m1/model.onnx")
    etag, modified = response.getheader("ETag"), response.getheader("Last-Modified")
    assert etag and modified
    assert get(server, "/models/m1/model.onnx", {"If-None-Match": etag})[0].status == 304
    assert get(server, "/models/m1/model.onnx", {"If-Modified-Since": modified})[0].status == 304
    assert get(server, "/models/m1/model.onnx", {"If-None-Match": '"other"'})[0].status == 200
    # A stale If-Range means the client's partial copy is outdated: send the whole file.
    response, body = get(server, "/models/m1/model.onnx", {"Range": "bytes=0-9", "If-Range": '"old"'})
    assert response.status == 200 and len(body) == 10240


def test_api_lists(server):
    models = json.loads(get(server, "/api/models.json")[1])
    assert models == [{"id": "m1", "name": "Model one", "default": True, "manifest": "models/m1/manifest.json"}]
    python = json.loads(get(server, "/api/python.json")[1])
    assert "sdlens/pipeline.py" in python and "sdlens/browser/runtime.py" in python
    assert not any("cpython" in f or "serving" in f or f.endswith("__main__.py") for f in python)
    shell = json.loads(get(server, "/api/shell.json")[1])
    assert "./" in shell and "app.js" in shell and "vendor/pyodide/pyodide.asm.wasm" in shell
    for url in shell:  # page-relative: the page is at /
        assert get(server, "/" + url.removeprefix("./"), method="HEAD")[0].status == 200, url


def test_api_hub_says_where_the_page_opens_hub_repos(server, tmp_path):
    from sdlens.hub.known import KNOWN, endpoint_from

    hub = json.loads(get(server, "/api/hub.json")[1])
    assert hub["endpoint"] == endpoint_from(None)  # https://huggingface.co unless HF_ENDPOINT says otherwise
    assert {k["repo"] for k in hub["known"]} == set(KNOWN) and all(k["licence"] and k["title"] for k in hub["known"])
    mirror = serve.make_server("127.0.0.1", 0, tmp_path, quiet=True, hub_endpoint="http://hub-mirror.test/")
    threading.Thread(target=mirror.serve_forever, daemon=True).start()
    try:
        assert json.loads(get(mirror, "/api/hub.json")[1])["endpoint"] == "http://hub-mirror.test"
    finally:
        mirror.shutdown()
        mirror.server_close()


def test_missing_runtime_files_say_what_to_run(server, monkeypatch):
    monkeypatch.setitem(RUNTIME_FILES, "vendor/nope/", ("nope", ["missing.mjs"]))
    monkeypatch.setitem(server.RequestHandlerClass.layout.vendor, "vendor/nope/", Path("/nonexistent/nope"))
    response, body = get(server, "/")
    assert response.status == 503 and b"npm ci" in body


def test_only_get_and_head(server):
    assert get(server, "/", method="POST")[0].status == 501


def raw_exchange(server, data: bytes) -> bytes:
    """Send bytes as written (no HTTP client to tidy them) and read until the server closes."""
    import socket

    with socket.create_connection(("127.0.0.1", server.server_address[1]), timeout=10) as sock:
        sock.sendall(data)
        return sock.makefile("rb").read()


def test_bad_requests_get_the_protocols_answer(server):
    # A request line that names no HTTP version gets the old (HTTP/0.9) form: the error page alone.
    assert b"Error code: 400" in raw_exchange(server, b"\x16\x03garbage\r\n\r\n")
    assert b"Error code: 400" in raw_exchange(server, bytes(range(1, 256)) + b"\r\n\r\n")
    assert raw_exchange(server, b"GET /" + b"a" * 70_000 + b" HTTP/1.1\r\nHost: x\r\n\r\n").startswith(b"HTTP/1.1 414 ")
    assert raw_exchange(server, b"GET /%00 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").startswith(b"HTTP/1.1 403 ")
