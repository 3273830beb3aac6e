"""serve.py's fair share per client: one misbehaving client (a flood of stalled sockets, headers
trickled byte by byte, a response read at a crawl) uses up its own share and nobody else's; a
class of well-behaved browsers is never refused; a client that hits a limit is logged once.

Clients are told apart by address, so each test speaks from its own loopback addresses
(127.0.0.2 for the misbehaving client, 127.0.0.3 for a good one), as Linux allows. The loads
are bounded: a fixed number of sockets, each closed by the server or at the test's end.
The latency the good client sees is measured by `python -m tests.bench serve`, not here.
"""

from __future__ import annotations

import http.client
import select
import socket
import threading
import time

import pytest

import serve
from sdlens.serving.refusals import RETRY_AFTER_S, WAITING_PER_CLIENT

from .test_classroom import loopback_aliases

ATTACKER, GOOD = "127.0.0.2", "127.0.0.3"
BIG_FILE = 16 << 20  # more than loopback's largest send buffer (4 MiB), so a reader that stops stalls the server

pytestmark = pytest.mark.skipif(not loopback_aliases(), reason="needs 127.0.0.2 and 127.0.0.3 (Linux loopback)")


@pytest.fixture(scope="module")
def models_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("share-models") / "m1"
    folder.mkdir()
    (folder / "manifest.json").write_text('{"name": "m1", "default": true}')
    (folder / "small.bin").write_bytes(b"small" * 100)
    (folder / "big.bin").write_bytes(bytes(range(256)) * (BIG_FILE // 256))
    return folder.parent


@pytest.fixture
def serving(models_dir):
    """Start a server with the given options; its log lines land in `server.lines`."""
    started = []

    def start(**options):
        lines = []
        server = serve.make_server("127.0.0.1", 0, models_dir, quiet=True, log=lines.append, **options)
        server.lines = lines
        threading.Thread(target=server.serve_forever, daemon=True).start()
        started.append(server)
        return server

    yield start
    for server in started:
        server.shutdown()
        server.server_close()


def connect(server, source: str, receive_buffer: int | None = None) -> socket.socket:
    sock = socket.socket()
    if receive_buffer:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, receive_buffer)
    sock.settimeout(20)
    sock.bind((source, 0))
    sock.connect(("127.0.0.1", server.server_address[1]))
    return sock


def good_get(server, path="/models/m1/small.bin"):
    conn = http.client.HTTPConnection("127.0.0.1", server.server_address[1], timeout=20, source_address=(GOOD, 0))
    try:
        started = time.monotonic()
        conn.request("GET", path)
        response = conn.getresponse()
        body = response.read()
        return response.status, body, time.monotonic() - started
    finally:
        conn.close()


def wait_until(condition, what: str, limit_s: float = 20.0):
    """Poll `condition` until it holds (bounded, so a broken server fails the test, not hangs it)."""
    deadline = time.monotonic() + limit_s
    while not condition():
        assert time.monotonic() < deadline, f"never happened: {what}"
        time.sleep(0.01)


def closed_by_server(sockets, count: int) -> list[socket.socket]:
    """Wait until `count` of `sockets` have been closed by the server; returns the closed ones."""
    closed = []
    open_ = list(sockets)
    deadline = time.monotonic() + 20
    while len(closed) < count and open_:
        assert time.monotonic() < deadline, f"{len(closed)} of {count} closed"
        readable, _, _ = select.select(open_, [], [], 0.5)
        for sock in readable:
            try:
                data = sock.recv(4096)
            except ConnectionError:
                data = b""
            if not data:
                closed.append(sock)
                open_.remove(sock)
    return closed


def lines_about(server, address: str) -> list[str]:
    return [line for line in server.lines if f"client {address} " in line]


def test_a_flood_of_stalled_sockets_leaves_other_clients_served(serving):
    server = serving(per_client=8)
    held = [connect(server, ATTACKER) for _ in range(8)]
    try:
        wait_until(lambda: server.share.held_by(ATTACKER) == 8, "the attacker holds its whole share")
        # One more, with a whole request: the protocol's answer, 503 with Retry-After.
        extra = connect(server, ATTACKER)
        extra.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        answer = extra.makefile("rb").read()
        extra.close()
        assert answer.startswith(b"HTTP/1.1 503 ") and f"Retry-After: {RETRY_AFTER_S}\r\n".encode() in answer
        # Then a flood that never sends a byte: a few wait for their request, the rest are closed at once.
        flood = [connect(server, ATTACKER) for _ in range(60)]
        held += flood
        closed_by_server(flood, 60 - WAITING_PER_CLIENT)
        status, body, _ = good_get(server)
        assert status == 200 and body == b"small" * 100
        assert server.share.held_by(ATTACKER) == 8
        wait_until(lambda: server.share.held_by(GOOD) == 0, "the good client's connection is let go")
        assert len(lines_about(server, ATTACKER)) == 1  # one line for 61 refusals
        assert "more than 8 connections" in lines_about(server, ATTACKER)[0]
        assert lines_about(server, GOOD) == []
    finally:
        for sock in held:
            sock.close()


def test_headers_trickled_byte_by_byte_are_cut_off_at_the_deadline(serving):
    server = serving(per_client=4, idle_timeout=2.0)
    trickling = [connect(server, ATTACKER) for _ in range(4)]
    for sock in trickling:
        sock.sendall(b"GET / HTTP/1.1\r\nX-Slow: ")
    stop = threading.Event()
    sent = {sock: 0 for sock in trickling}
    cut = []

    def trickle():
        # One byte per socket every 50 ms: each byte would reset a plain socket timeout.
        give_up = time.monotonic() + 30
        while len(cut) < len(trickling) and not stop.is_set() and time.monotonic() < give_up:
            live = [s for s in trickling if s not in cut]
            readable, _, _ = select.select(live, [], [], 0.05)
            for sock in live:
                try:
                    if sock in readable and not sock.recv(4096):
                        raise ConnectionResetError
                    sock.send(b"a")
                    sent[sock] += 1
                except OSError:
                    cut.append(sock)

    trickler = threading.Thread(target=trickle)
    trickler.start()
    try:
        wait_until(lambda: min(sent.values()) >= 2, "trickling has begun")
        status, body, _ = good_get(server)
        assert status == 200 and body == b"small" * 100
        trickler.join(timeout=40)
        assert len(cut) == 4, "the server let a trickled head run on"
        assert len(lines_about(server, ATTACKER)) == 1
        assert "request head too slowly" in lines_about(server, ATTACKER)[0]
        assert lines_about(server, GOOD) == []
    finally:
        stop.set()
        trickler.join(timeout=40)
        for sock in trickling:
            sock.close()


def test_a_reader_that_stops_is_dropped_and_a_slow_steady_one_is_served(serving):
    server = serving(per_client=4, idle_timeout=3.0)
    stalled = []
    for _ in range(3):
        sock = connect(server, ATTACKER, receive_buffer=4096)
        sock.sendall(b"GET /models/m1/big.bin HTTP/1.1\r\nHost: x\r\n\r\n")
        stalled.append(sock)
    steady = connect(server, ATTACKER, receive_buffer=4096)
    steady.sendall(b"GET /models/m1/big.bin HTTP/1.1\r\nHost: x\r\n\r\n")
    try:
        wait_until(lambda: server.share.held_by(ATTACKER) == 4, "the readers hold the whole share")
        status, body, _ = good_get(server)
        assert status == 200 and body == b"small" * 100
        # The steady reader takes 4 kB every 100 ms, far slower than the file would go, for
        # longer than the idle timeout; the stalled ones take nothing and are dropped meanwhile.
        received = 0
        while not lines_about(server, ATTACKER) or received < 200_000:
            chunk = steady.recv(4096)
            assert chunk, f"the steady reader was dropped after {received} bytes"
            received += len(chunk)
            time.sleep(0.1)  # the reader's pace (the load), not a wait for the server
            assert received < 1_000_000, "the stalled readers were never dropped"
        wait_until(lambda: server.share.held_by(ATTACKER) == 1, "the stalled readers are dropped")
        assert "stopped reading a response" in lines_about(server, ATTACKER)[0]
        assert len(lines_about(server, ATTACKER)) == 1
    finally:
        for sock in [*stalled, steady]:
            sock.close()


def test_thirty_laptops_with_a_browsers_connections_are_never_refused(serving):
    """Chromium opens up to 6 connections per server, and 6 more for requests sent without
    credentials; 16 per laptop, all open at once, from 30 addresses."""
    server = serving()
    laptops = [f"127.0.1.{n}" for n in range(1, 31)]
    port = server.server_address[1]
    conns = [http.client.HTTPConnection("127.0.0.1", port, timeout=30, source_address=(laptop, 0))
             for laptop in laptops for _ in range(16)]
    try:
        for conn in conns:
            conn.connect()
        wait_until(lambda: server.share.open_in_all == len(conns), "every connection is being served")
        for conn in conns:
            conn.request("GET", "/models/m1/small.bin")
        statuses = []
        for conn in conns:
            response = conn.getresponse()
            assert response.read() == b"small" * 100
            statuses.append(response.status)
        assert statuses == [200] * len(conns)
        assert server.lines == []
    finally:
        for conn in conns:
            conn.close()
