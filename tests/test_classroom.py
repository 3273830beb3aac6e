"""Classroom serving without a browser: `serve --lan` (certificate, HTTPS, the banner), idle and
slow connections timed out, the static site and the wheel holding what the server serves, and
the JavaScript SHA-256 that plain-http pages use."""

from __future__ import annotations

import http.client
import json
import re
import shutil
import socket
import ssl
import subprocess
import sys
import threading
import time
import zipfile
from pathlib import Path

import pytest

import serve
from sdlens.serving import app_files, lan
from sdlens.serving.app_files import Layout
from sdlens.serving.site import SiteError, write_site

ROOT = Path(serve.__file__).resolve().parent
DEFAULT_MODEL = ROOT / "models" / "shapes"


def start(server):
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def get(port, path, context=None, host="127.0.0.1", timeout=10):
    conn = (http.client.HTTPSConnection(host, port, context=context, timeout=timeout) if context
            else http.client.HTTPConnection(host, port, timeout=timeout))
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        return response, response.read()
    finally:
        conn.close()


@pytest.fixture(scope="module")
def models_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("classroom-models") / "m1"
    folder.mkdir()
    (folder / "manifest.json").write_text(json.dumps({"name": "m1", "default": True}))
    (folder / "model.onnx").write_bytes(b"onnx" * 100)
    return folder.parent


# -- idle and slow clients ----------------------------------------------------------------------

def test_idle_and_slow_connections_are_timed_out(models_dir):
    """More idle sockets than one client's share, and a request head never finished: they are
    dropped (the idle timeout, or refused), another client's request gets through at once, and no
    thread is left behind. (test_serve_share.py checks the share itself.)"""
    if not loopback_aliases():
        pytest.skip("needs 127.0.0.2 and 127.0.0.3 (Linux loopback)")
    server = start(serve.make_server("127.0.0.1", 0, models_dir, quiet=True, idle_timeout=1.0, per_client=4,
                                     log=lambda line: None))
    port = server.server_address[1]
    threads_before = threading.active_count()
    idle = [socket.create_connection(("127.0.0.1", port), source_address=("127.0.0.2", 0)) for _ in range(10)]
    slow = socket.create_connection(("127.0.0.1", port), source_address=("127.0.0.2", 0))
    slow.sendall(b"GET /models/m1/model.onnx HTTP/1.1\r\nHost: x\r\n")  # a header never finished
    try:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=20, source_address=("127.0.0.3", 0))
        conn.request("GET", "/models/m1/model.onnx")
        response = conn.getresponse()
        assert response.status == 200 and response.read() == b"onnx" * 100
        conn.close()
        for sock in [*idle, slow]:
            sock.settimeout(10)
            assert sock.recv(1024) == b""  # closed by the server
        deadline = time.monotonic() + 10
        while threading.active_count() > threads_before + 1 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert threading.active_count() <= threads_before + 1
    finally:
        for sock in [*idle, slow]:
            sock.close()
        server.shutdown()
        server.server_close()


def loopback_aliases() -> bool:
    """Whether this machine's loopback answers from 127.0.0.2 and .3, as Linux's does (macOS: not by default)."""
    try:
        for address in ("127.0.0.2", "127.0.0.3"):
            with socket.socket() as probe:
                probe.bind((address, 0))
        return True
    except OSError:
        return False


# -- --lan: certificate, HTTPS, redirect, banner -----------------------------------------------

def test_certificate_is_made_once_and_kept(tmp_path):
    from cryptography import x509

    cert, key, made = lan.ensure_certificate(tmp_path, ["192.0.2.7"])
    assert made and cert.is_file() and key.is_file()
    assert key.stat().st_mode & 0o077 == 0  # the private key is readable by its owner only
    names = x509.load_pem_x509_certificate(cert.read_bytes()).extensions.get_extension_for_class(
        x509.SubjectAlternativeName).value
    assert "localhost" in names.get_values_for_type(x509.DNSName)
    assert "192.0.2.7" in [str(ip) for ip in names.get_values_for_type(x509.IPAddress)]
    first = cert.read_bytes()
    assert lan.ensure_certificate(tmp_path, ["192.0.2.8"])[2] is False  # the next lesson: kept
    assert cert.read_bytes() == first


def test_https_and_plain_http_on_one_port(tmp_path, models_dir):
    cert, key, _ = lan.ensure_certificate(tmp_path)
    server = start(serve.make_server("127.0.0.1", 0, models_dir, quiet=True,
                                     ssl_context=lan.server_context(cert, key), idle_timeout=5))
    port = server.server_address[1]
    try:
        trusting = ssl.create_default_context(cafile=str(cert))
        response, body = get(port, "/api/models.json", trusting, host="localhost")
        assert response.status == 200 and json.loads(body)[0]["id"] == "m1"
        assert response.getheader("Cross-Origin-Embedder-Policy") == "require-corp"
        # A browser that rejects the certificate aborts the handshake; the server carries on.
        with pytest.raises(ssl.SSLCertVerificationError):
            get(port, "/", ssl.create_default_context(), host="localhost")
        response, _ = get(port, "/models/m1/model.onnx?x=1", host="127.0.0.1")
        assert response.status == 301
        assert response.getheader("Location") == f"https://127.0.0.1:{port}/models/m1/model.onnx?x=1"
        assert get(port, "/models/m1/model.onnx", trusting, host="localhost")[1] == b"onnx" * 100
    finally:
        server.shutdown()
        server.server_close()


def test_lan_banner_names_addresses_qr_and_warning(tmp_path):
    process = subprocess.Popen([sys.executable, str(ROOT / "serve.py"), "--lan", "--port", "0", "--quiet",
                                "--cert-dir", str(tmp_path)], stdout=subprocess.PIPE, text=True)
    try:
        lines = []
        while not lines or not lines[-1].startswith("certificate"):
            lines.append(process.stdout.readline())
            assert lines[-1], "".join(lines)
    finally:
        process.terminate()
        process.wait()
    text = "".join(lines)
    port = re.search(r"localhost:(\d+)", lines[0]).group(1)
    addresses = lan.lan_addresses()
    for address in addresses:
        assert f"https://{address}:{port}" in text
    if addresses:
        assert "█" in text  # the QR code
    assert lan.CERT_WARNING in text
    assert f"certificate made in {tmp_path}" in text


def test_model_files_allow_other_origins(models_dir):
    server = start(serve.make_server("127.0.0.1", 0, models_dir, quiet=True))
    try:
        response, _ = get(server.server_address[1], "/models/m1/model.onnx")
        assert response.getheader("Access-Control-Allow-Origin") == "*"
        assert response.getheader("Cross-Origin-Resource-Policy") == "cross-origin"
        response, _ = get(server.server_address[1], "/app.js")
        assert response.getheader("Access-Control-Allow-Origin") is None
        assert response.getheader("Cross-Origin-Resource-Policy") == "same-origin"
    finally:
        server.shutdown()
        server.server_close()


# -- the static site -----------------------------------------------------------------------------

needs_default_model = pytest.mark.skipif(not (DEFAULT_MODEL / "manifest.json").is_file(),
                                         reason="models/shapes is not built")
needs_runtime = pytest.mark.skipif(bool(Layout.find().missing_runtime_files()), reason="needs npm ci")


@needs_default_model
@needs_runtime
def test_site_holds_exactly_what_the_server_serves(tmp_path):
    out = tmp_path / "site"
    # No --model: every model of models/, as `python serve.py` serves them (both embedded ones).
    assert subprocess.run([sys.executable, "-m", "sdlens", "site", str(out)],
                          check=True, capture_output=True, text=True).stdout.startswith("wrote ")
    assert (out / "models" / "objects" / "manifest.json").is_file() and (out / "models" / "shapes" / "manifest.json").is_file()
    server = start(serve.make_server("127.0.0.1", 0, DEFAULT_MODEL.parent, quiet=True))
    try:
        files = sorted(p for p in out.rglob("*") if p.is_file() and p.name != ".nojekyll")
        for path in files:
            url = path.relative_to(out).as_posix()
            response, body = get(server.server_address[1], "/" + url)
            assert response.status == 200, url
            if url.endswith(".json"):
                assert json.loads(body) == json.loads(path.read_bytes()), url
            else:
                assert body == path.read_bytes(), url
        shell = json.loads((out / "api" / "shell.json").read_text())
        for url in shell:
            assert (out / (url if url != "./" else "index.html")).is_file(), url
        python = json.loads((out / "api" / "python.json").read_text())
        assert not any(f.startswith(("sdlens/serving/", "sdlens/cpython/")) for f in python)
    finally:
        server.shutdown()
        server.server_close()


@needs_default_model
@needs_runtime
def test_site_points_its_hub_requests_where_told(tmp_path):
    out = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "sdlens", "site", str(out), "--model", str(DEFAULT_MODEL),
                    "--hub-endpoint", "https://hub-mirror.example.org/"], check=True, capture_output=True)
    assert json.loads((out / "api" / "hub.json").read_text())["endpoint"] == "https://hub-mirror.example.org"


@needs_default_model
@needs_runtime
def test_site_can_point_at_weights_elsewhere(tmp_path):
    out = tmp_path / "site"
    write_site(out, Layout.find(), [DEFAULT_MODEL], {"shapes": "https://weights.example.org/shapes"})
    manifest = json.loads((out / "models" / "shapes" / "manifest.json").read_text())
    entries = app_files.manifest_files(manifest)
    assert entries and all(e["path"].startswith("https://weights.example.org/shapes/") for e in entries)
    assert all(len(e["sha256"]) == 64 for e in entries)  # still checked in the browser
    assert [p.name for p in (out / "models" / "shapes").iterdir()] == ["manifest.json"]


def test_site_refuses_what_it_cannot_write(tmp_path):
    taken = tmp_path / "taken"
    taken.mkdir()
    (taken / "notes.txt").write_text("mine")
    with pytest.raises(SiteError, match="not an empty folder"):
        write_site(taken, Layout.find(), [DEFAULT_MODEL])
    assert (taken / "notes.txt").read_text() == "mine"
    with pytest.raises(SiteError, match="no readable manifest"):
        write_site(tmp_path / "new", Layout.find(), [tmp_path])
    result = subprocess.run([sys.executable, "-m", "sdlens", "site", str(taken)], capture_output=True, text=True)
    assert result.returncode == 2 and "not an empty folder" in result.stderr


# -- the JavaScript SHA-256 (plain-http pages have no crypto.subtle) ----------------------------

@pytest.mark.skipif(not shutil.which("node"), reason="needs node (npm ci)")
def test_portable_sha256_equals_hashlib(tmp_path):
    import hashlib

    sizes = [0, 1, 3, 55, 56, 57, 63, 64, 65, 119, 120, 127, 128, 1000, 65_537, 1 << 20]
    script = tmp_path / "sha.mjs"
    script.write_text(
        f'import {{ sha256HexPortable }} from "{(ROOT / "web" / "runtime" / "sha256.js").as_uri()}";\n'
        f"for (const n of {json.dumps(sizes)}) {{\n"
        "  const b = new Uint8Array(n).map((_, i) => (i * 2654435761) >>> 24);\n"
        "  console.log(sha256HexPortable(b.subarray(0)));\n"
        "}\n")
    out = subprocess.run(["node", str(script)], check=True, capture_output=True, text=True).stdout.split()
    expected = [hashlib.sha256(bytes(((i * 2654435761) % 2**32) >> 24 for i in range(n))).hexdigest() for n in sizes]
    assert out == expected
