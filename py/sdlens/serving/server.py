"""The HTTP(S) server: hands out the files app_files describes; the browser computes everything.

Why the headers matter:
- MIME types are set here, never taken from the OS (Windows often maps .js to text/plain,
  which breaks ES modules; .wasm must be application/wasm for streaming compilation).
- COOP/COEP make the page cross-origin isolated, which multi-threaded WASM needs.
- Range requests, ETag and Last-Modified let big model files resume and be revalidated.
- Model files carry CORS headers, so a static site elsewhere may load its weights from here.

A classroom of 30 laptops must not be able to starve it, nor one misbehaving laptop the other
29 (share.py says the limits and why):
- connections are counted per client address as they are accepted, before a thread is given to
  them; one over its client's share is refused by a single thread (refusals.py), so the accept
  loop never waits and a flood from one address takes no other client's slot;
- a request head must arrive whole within the idle timeout, however slowly its bytes trickle in
  (slowloris), and an idle keep-alive connection is dropped after it;
- a file is sent at its reader's pace (sending.py), so a slow reader is served (holding one
  connection of its own share), and one that takes nothing for the idle timeout is dropped.

With a TLS context (`--lan`) one port speaks both: a connection opening with a TLS handshake
gets HTTPS; plain http gets a redirect to the https address, so typing the address without
`https://` still lands on the secure page.
"""

from __future__ import annotations

import email.utils
import io
import json
import re
import socket
import ssl
import sys
import time
import urllib.parse
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from ..hub.known import endpoint_from
from . import app_files, sending
from .app_files import Layout
from .refusals import DEADLINE_S, TLS_HANDSHAKE, WAITING_IN_ALL, Refusals
from .share import PER_CLIENT, TOTAL, ClientShare, log_to_stderr

RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")
IDLE_TIMEOUT_S = 30.0
MAX_CONNECTIONS = TOTAL


class RequestHeadReader(io.RawIOBase):
    """A connection's input, read against a deadline: the next request head must arrive whole
    within `timeout` of the server being ready for it, however its bytes trickle in (one byte a
    second resets a socket's own timeout every time; this deadline does not move)."""

    def __init__(self, sock: socket.socket, timeout: float):
        self.sock = sock
        self.timeout = timeout
        self.deadline = time.monotonic() + timeout
        self.received = 0  # bytes of the head being waited for: none means an idle connection
        self.timed_out = False

    def readable(self) -> bool:
        return True

    def expect_head(self) -> None:
        self.deadline = time.monotonic() + self.timeout
        self.received = 0
        self.timed_out = False

    def readinto(self, buffer) -> int:
        left = self.deadline - time.monotonic()
        if left <= 0:
            self.timed_out = True
            raise TimeoutError("the request head did not arrive in time")
        self.sock.settimeout(left)
        try:
            n = self.sock.recv_into(buffer)
        except TimeoutError:
            self.timed_out = True
            raise
        finally:
            self.sock.settimeout(self.timeout)  # the deadline is for the head only: writes have their own
        self.received += n
        return n


class Handler(BaseHTTPRequestHandler):
    server_version = "sdlens"
    protocol_version = "HTTP/1.1"
    # Set per server by make_server.
    layout: Layout
    models_dir: Path
    hub_endpoint: str  # api/hub.json: where the page opens Hub repos
    quiet = False
    timeout = IDLE_TIMEOUT_S  # StreamRequestHandler applies it to the socket: idle clients are dropped

    # -- connection -----------------------------------------------------------------------------
    def setup(self):
        self.plain_on_tls_port = False
        self.raw_request = self.request
        context = self.server.ssl_context
        if context is not None:
            self.request.settimeout(self.timeout)
            first = self.request.recv(1, socket.MSG_PEEK)
            if first and first[0] == TLS_HANDSHAKE:
                # The handshake runs here, in this connection's thread, under the idle timeout:
                # a client that stalls mid-handshake cannot hold up anyone else.
                self.request = context.wrap_socket(self.request, server_side=True)
            else:
                self.plain_on_tls_port = True
        super().setup()
        self.rfile.close()  # the socket's own reader: replaced, and released so close() closes the socket
        self.head_reader = RequestHeadReader(self.connection, self.timeout)
        self.rfile = io.BufferedReader(self.head_reader)

    def handle_one_request(self):
        self.head_reader.expect_head()
        super().handle_one_request()

    def log_error(self, format, *args):
        if isinstance(sys.exc_info()[1], TimeoutError):
            # The stdlib logs every timed-out connection; the share logs a client once, and an
            # idle keep-alive connection (every browser leaves some) is not worth a line.
            if self.head_reader.timed_out and self.head_reader.received:
                self.server.share.limit_hit(self.client_address[0], "sent a request head too slowly "
                                            f"(not whole within {self.timeout:g} s): its connection is closed")
            elif not self.head_reader.timed_out:
                self.server.share.limit_hit(self.client_address[0], "stopped reading a response "
                                            f"(nothing taken for {self.timeout:g} s): its connection is dropped")
            return
        super().log_error(format, *args)

    def finish(self):
        try:
            super().finish()
        finally:
            if self.request is not self.raw_request:
                self.request.close()  # the TLS socket; the server closes only the raw one it accepted

    # -- routing --------------------------------------------------------------------------------
    def do_HEAD(self):
        self.handle_get(head=True)

    def do_GET(self):
        self.handle_get(head=False)

    def handle_get(self, head: bool):
        if self.plain_on_tls_port:
            return self.redirect_to_https(head)
        path = urllib.parse.urlsplit(self.path).path
        if not path.startswith("/"):
            return self.send_error(HTTPStatus.BAD_REQUEST)
        url = path[1:]
        documents = app_files.api_documents(self.layout, app_files.model_folders(self.models_dir), self.hub_endpoint) \
            if url.startswith("api/") else {}
        if url in documents:
            return self.send_json(documents[url], head)
        if url in ("", "index.html") and self.layout.missing_runtime_files():
            return self.send_missing_runtime(head)
        if url.startswith(("vendor/", "py/", "built/")):
            # Only the listed files: nothing else of node_modules or site-packages is reachable.
            target = {**self.layout.runtime_files(), **self.layout.python_files(), **self.layout.built_files()}.get(url)
            if target is None or not target.is_file():
                return self.send_error(HTTPStatus.NOT_FOUND)
            return self.send_file(target, head)
        folder, relative = (self.models_dir, url[len("models/"):]) if url.startswith("models/") \
            else (self.layout.web, url)
        target = self.resolve(folder, relative)
        if target is None:
            return self.send_error(HTTPStatus.FORBIDDEN, "path outside the served folders")
        if target.is_dir():
            target = target / "index.html"
        if not target.is_file():
            return self.send_error(HTTPStatus.NOT_FOUND)
        return self.send_file(target, head, cross_origin=folder is self.models_dir)

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
    def common_headers(self, cross_origin: bool = False):
        self.send_header("Cross-Origin-Opener-Policy", "same-origin")
        self.send_header("Cross-Origin-Embedder-Policy", "require-corp")
        if cross_origin:
            # Model files may be used by a page on another origin (a static site's weights).
            self.send_header("Access-Control-Allow-Origin", "*")
            self.send_header("Access-Control-Expose-Headers", "Content-Length, Content-Range, ETag")
            self.send_header("Cross-Origin-Resource-Policy", "cross-origin")
        else:
            self.send_header("Cross-Origin-Resource-Policy", "same-origin")
        self.send_header("X-Content-Type-Options", "nosniff")

    def send_body(self, status, content_type: str, body: bytes, head: bool, extra: dict | None = None):
        self.send_response(status)
        self.common_headers()
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for key, value in (extra or {}).items():
            self.send_header(key, value)
        self.end_headers()
        if not head:
            self.wfile.write(body)

    def send_json(self, data, head: bool):
        self.send_body(HTTPStatus.OK, "application/json", json.dumps(data).encode(), head, {"Cache-Control": "no-cache"})

    def redirect_to_https(self, head: bool):
        host = self.headers.get("Host") or f"{self.server.server_address[0]}:{self.server.server_address[1]}"
        location = f"https://{host}{self.path if self.path.startswith('/') else '/'}"
        body = f"sdlens is served over https: {location}\n".encode()
        self.close_connection = True
        self.send_body(HTTPStatus.MOVED_PERMANENTLY, "text/plain; charset=utf-8", body, head,
                       {"Location": location, "Connection": "close"})

    def send_missing_runtime(self, head: bool):
        missing = ", ".join(str(p) for p in self.layout.missing_runtime_files())
        body = (
            "<!doctype html><meta charset=utf-8><title>sdlens: setup needed</title>"
            "<h1>sdlens needs its browser runtime files</h1>"
            f"<p>Missing: {missing}</p><p>To fix it, {self.layout.setup_hint}, then reload this page.</p>"
        ).encode()
        self.send_body(HTTPStatus.SERVICE_UNAVAILABLE, "text/html; charset=utf-8", body, head)

    def send_file(self, path: Path, head: bool, cross_origin: bool = False):
        stat = path.stat()
        size = stat.st_size
        etag = f'"{size:x}-{stat.st_mtime_ns:x}"'
        last_modified = email.utils.formatdate(stat.st_mtime, usegmt=True)
        if self.not_modified(etag, stat.st_mtime):
            self.send_response(HTTPStatus.NOT_MODIFIED)
            self.common_headers(cross_origin)
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
                self.common_headers(cross_origin)
                self.send_header("Content-Range", f"bytes */{size}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            start, end = parsed
            status = HTTPStatus.PARTIAL_CONTENT

        length = end - start + 1 if size else 0
        self.send_response(status)
        self.common_headers(cross_origin)
        self.send_header("Content-Type", app_files.mime_type(path.name))
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
            sending.send_file(self.connection, f, start, length, self.timeout)

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


class Server(ThreadingHTTPServer):
    """ThreadingHTTPServer with a fair share of connections per client and quiet network errors."""

    daemon_threads = True
    request_queue_size = 1024  # a class opening the page at once waits in the queue, not refused

    def __init__(self, address, handler, ssl_context: ssl.SSLContext | None, share: ClientShare):
        self.ssl_context = ssl_context
        self.share = share
        super().__init__(address, handler)
        self.refusals = Refusals(tls_port=ssl_context is not None, deadline_s=min(DEADLINE_S, handler.timeout))

    def process_request(self, request, client_address):
        # Checked here, in the accept loop, before a thread is started: the loop never waits, so
        # a client over its share cannot keep anyone else's connection in the listen queue.
        address = client_address[0]
        refused = self.share.admit(address)
        if refused:
            self.share.limit_hit(address, refused)
            self.refusals.refuse(request, address)
            return
        try:
            super().process_request(request, client_address)
        except BaseException:
            self.share.release(address)
            raise

    def process_request_thread(self, request, client_address):
        try:
            super().process_request_thread(request, client_address)
        finally:
            self.share.release(client_address[0])

    def server_close(self):
        super().server_close()
        self.refusals.close()

    def handle_error(self, request, client_address):
        error = sys.exc_info()[1]
        # Timeouts, resets and rejected certificates are a classroom's daily weather, not bugs.
        if isinstance(error, (TimeoutError, ConnectionError, ssl.SSLError, OSError)):
            return
        super().handle_error(request, client_address)


def raise_open_file_limit(needed: int) -> None:
    """Each connection is a file descriptor; macOS allows a process 256 by default, fewer than a
    class needs. Raise the soft limit towards the hard one where the system has the notion."""
    try:
        import resource
    except ImportError:  # Windows: no such per-process soft limit on sockets
        return
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = needed if hard == resource.RLIM_INFINITY else min(needed, hard)
    if soft != resource.RLIM_INFINITY and soft < wanted:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
        except (ValueError, OSError):
            pass


def make_server(host: str, port: int, models_dir: Path, quiet: bool = False, *,
                ssl_context: ssl.SSLContext | None = None, layout: Layout | None = None,
                idle_timeout: float = IDLE_TIMEOUT_S, max_connections: int = MAX_CONNECTIONS,
                per_client: int = PER_CLIENT, log=log_to_stderr, hub_endpoint: str | None = None) -> Server:
    """`log` receives the one line per client that hits a limit (even when `quiet`, which silences
    the line per request)."""
    # A descriptor per connection, per file being sent, per refusal waiting, and some to spare.
    raise_open_file_limit(2 * max_connections + WAITING_IN_ALL + 64)
    handler = type("SdlensHandler", (Handler,), {
        "layout": layout or Layout.find(), "models_dir": Path(models_dir).resolve(), "quiet": quiet,
        "hub_endpoint": endpoint_from(hub_endpoint),
        "timeout": idle_timeout,
    })
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    server_class = type("SdlensServer", (Server,), {"address_family": family})
    return server_class((host, port), handler, ssl_context, ClientShare(per_client, max_connections, log))
