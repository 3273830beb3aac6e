"""Connections over their client's share, answered without a thread each.

A refused connection gets the protocol's word for it: a client that sends a complete plain-HTTP
request head gets `503 Service Unavailable` with `Retry-After`; one that sends nothing, too
little in time, or a TLS handshake (answering it would cost the handshake the share exists to
cap) gets its socket closed. One thread with a selector waits on all of them, so a flood of
refusals costs no worker threads, and each client may have only a few waiting (the rest are
closed at once), so it cannot run the server out of file descriptors either.
"""

from __future__ import annotations

import selectors
import socket
import threading
import time
from collections import Counter

RETRY_AFTER_S = 5
DEADLINE_S = 5.0  # time for a refused client to send its request head
WAITING_PER_CLIENT = 8
WAITING_IN_ALL = 256
HEAD_LIMIT = 16 * 1024
TLS_HANDSHAKE = 0x16  # the first byte of every TLS connection (a handshake record)

BODY = (b"sdlens: too many connections from this address at once; "
        b"try again in a few seconds.\n")
RESPONSE = (b"HTTP/1.1 503 Service Unavailable\r\n"
            b"Retry-After: " + str(RETRY_AFTER_S).encode() + b"\r\n"
            b"Content-Type: text/plain; charset=utf-8\r\n"
            b"Content-Length: " + str(len(BODY)).encode() + b"\r\n"
            b"Connection: close\r\n\r\n" + BODY)


class Refusal:
    def __init__(self, sock: socket.socket, address: str, deadline_s: float):
        self.sock = sock
        self.address = address
        self.deadline = time.monotonic() + deadline_s
        self.head = bytearray()


class Refusals:
    """The thread that answers refused connections (503 or close), started with the server."""

    def __init__(self, tls_port: bool, deadline_s: float = DEADLINE_S):
        self.tls_port = tls_port
        self.deadline_s = deadline_s
        self.selector = selectors.DefaultSelector()
        self.waiting: dict[socket.socket, Refusal] = {}
        self.per_client = Counter()
        self.arrived: list[Refusal] = []
        self.lock = threading.Lock()
        self.wake_read, self.wake_write = socket.socketpair()
        self.wake_read.setblocking(False)
        self.wake_write.setblocking(False)
        self.selector.register(self.wake_read, selectors.EVENT_READ)
        self.closed = False
        self.thread = threading.Thread(target=self.run, name="sdlens-refusals", daemon=True)
        self.thread.start()

    def refuse(self, sock: socket.socket, address: str) -> None:
        """Take over a connection that its client's share has no room for."""
        with self.lock:
            room = (not self.closed and self.per_client[address] < WAITING_PER_CLIENT
                    and len(self.waiting) + len(self.arrived) < WAITING_IN_ALL)
            if room:
                self.per_client[address] += 1
                self.arrived.append(Refusal(sock, address, self.deadline_s))
        if not room:
            close(sock)
            return
        try:
            self.wake_write.send(b"\0")
        except BlockingIOError:
            pass  # a wake-up is already pending

    def run(self) -> None:
        while not self.closed:
            now = time.monotonic()
            soonest = min((r.deadline for r in self.waiting.values()), default=now + 1.0)
            for key, _ in self.selector.select(max(0.0, soonest - now)):
                if key.fileobj is self.wake_read:
                    self.drain_wakeups()
                else:
                    self.read(self.waiting[key.fileobj])
            self.take_arrivals()
            now = time.monotonic()
            for refusal in [r for r in self.waiting.values() if r.deadline <= now]:
                self.done(refusal)  # never finished its request: closed

    def drain_wakeups(self) -> None:
        try:
            while self.wake_read.recv(4096):
                pass
        except (BlockingIOError, OSError):
            pass

    def take_arrivals(self) -> None:
        with self.lock:
            arrived, self.arrived = self.arrived, []
        for refusal in arrived:
            try:
                refusal.sock.setblocking(False)
                self.selector.register(refusal.sock, selectors.EVENT_READ)
            except (OSError, ValueError):
                self.forget(refusal)
                continue
            self.waiting[refusal.sock] = refusal

    def read(self, refusal: Refusal) -> None:
        try:
            data = refusal.sock.recv(4096)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if not data or (self.tls_port and not refusal.head and data[0] == TLS_HANDSHAKE):
            return self.done(refusal)
        refusal.head += data
        if b"\r\n\r\n" in refusal.head:
            try:
                refusal.sock.send(RESPONSE)  # small enough for any socket's buffer
                refusal.sock.shutdown(socket.SHUT_WR)
            except OSError:
                pass
            return self.done(refusal)
        if len(refusal.head) > HEAD_LIMIT:
            self.done(refusal)

    def done(self, refusal: Refusal) -> None:
        if self.waiting.pop(refusal.sock, None) is not None:
            try:
                self.selector.unregister(refusal.sock)
            except (KeyError, ValueError):
                pass
        close(refusal.sock)
        self.forget(refusal)

    def forget(self, refusal: Refusal) -> None:
        with self.lock:
            self.per_client[refusal.address] -= 1
            if not self.per_client[refusal.address]:
                del self.per_client[refusal.address]

    def waiting_for(self, address: str) -> int:
        with self.lock:
            return self.per_client[address]

    def close(self) -> None:
        self.closed = True
        try:
            self.wake_write.send(b"\0")
        except OSError:
            pass
        self.thread.join(timeout=5)
        for refusal in list(self.waiting.values()):
            self.done(refusal)
        with self.lock:
            arrived, self.arrived = self.arrived, []
        for refusal in arrived:
            close(refusal.sock)
        self.selector.close()
        self.wake_read.close()
        self.wake_write.close()


def close(sock: socket.socket) -> None:
    try:
        sock.close()
    except OSError:
        pass
