"""A file sent at its reader's pace: a reader is dropped only when it has taken nothing for the
idle timeout, however slowly it takes the rest.

A socket's own timeout cannot say that. The kernel reports room to write only once a third of
the send buffer is free, and on a fast link that buffer grows to megabytes (4 MiB on Linux's
loopback), so a reader taking 1 kB a second looks stalled for minutes to a blocking send with a
timeout, and a laptop on weak Wi-Fi would be cut off mid-download. So writes are tried without
blocking: between tries the sender waits for room, or RETRY_S, whichever comes first, and
counts the time since the last byte went out.
"""

from __future__ import annotations

import os
import select
import socket
import ssl
import time

RETRY_S = 0.5
FILE_CHUNK = 256 * 1024  # read from disk at once (TLS, or no sendfile): bounded memory per reader
SEND_PIECE = 16 * 1024  # one TLS record's worth per write


def send_file(sock: socket.socket, f, start: int, length: int, idle_timeout: float) -> None:
    """Send `length` bytes of open file `f` from `start` to `sock`; TimeoutError when the reader
    takes nothing for `idle_timeout`. The socket's own timeout is put back after."""
    timeout = sock.gettimeout()
    sock.setblocking(False)
    try:
        if hasattr(os, "sendfile") and not isinstance(sock, ssl.SSLSocket):
            # The kernel copies file to socket: the bytes never pass through Python.
            sent = 0
            while sent < length:
                written = write_when_room(sock, lambda: os.sendfile(sock.fileno(), f.fileno(), start + sent,
                                                                    min(length - sent, 1 << 30)), idle_timeout)
                if not written:
                    return  # the file shrank under us: the reader sees a short body and retries
                sent += written
            return
        f.seek(start)
        remaining = length
        while remaining:
            chunk = memoryview(f.read(min(FILE_CHUNK, remaining)))
            if not chunk:
                return  # the file shrank under us: the reader sees a short body and retries
            at = 0
            while at < len(chunk):
                piece = chunk[at:at + SEND_PIECE]
                at += write_when_room(sock, lambda: sock.send(piece), idle_timeout)
            remaining -= len(chunk)
    finally:
        sock.settimeout(timeout)


def write_when_room(sock: socket.socket, write, idle_timeout: float) -> int:
    """Call `write` (non-blocking: bytes written, or it raises for want of room) until it has room."""
    last_progress = time.monotonic()
    while True:
        try:
            return write()
        except (BlockingIOError, ssl.SSLWantWriteError, ssl.SSLWantReadError):
            pass
        if time.monotonic() - last_progress >= idle_timeout:
            raise TimeoutError(f"the reader took nothing for {idle_timeout:g} s")
        select.select([], [sock], [], RETRY_S)
