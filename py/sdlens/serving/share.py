"""A fair share of the server per client address: how many connections one client may hold.

Connections are counted per client address when they are accepted, before any thread is given
to them, so a client that opens hundreds of sockets (or stalls them, or trickles its requests,
or reads a file at a crawl) uses up its own share and nobody else's.

Why 32 per address: Chromium opens at most 6 connections per server for HTTP/1.1, and keeps a
second pool of 6 for requests sent without credentials; a second browser on the same laptop
doubles that to 24; 8 more cover sockets the browser has dropped but the server has not yet
seen close. Firefox and Safari open 6 as well. The 1024 in all leave 30 laptops at their full
share (960) room.

A client that hits a limit is logged once, not once per connection: a flood of a thousand
refusals is one line.
"""

from __future__ import annotations

import sys
import threading
from collections import Counter
from typing import Callable

PER_CLIENT = 32
TOTAL = 1024
LOGGED_CLIENTS_KEPT = 4096  # the memory of who was logged is bounded too


def log_to_stderr(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


class ClientShare:
    """Open connections per client address, against a per-client and a total limit."""

    def __init__(self, per_client: int = PER_CLIENT, total: int = TOTAL,
                 log: Callable[[str], None] = log_to_stderr):
        self.per_client = per_client
        self.total = total
        self.log = log
        self.lock = threading.Lock()
        self.open = Counter()
        self.open_in_all = 0
        self.logged: set[str] = set()

    def admit(self, address: str) -> str | None:
        """Count one more connection for `address`, or say why not (the limit it hit)."""
        with self.lock:
            if self.open[address] >= self.per_client:
                return (f"opened more than {self.per_client} connections at once: "
                        "the extra ones are refused (503 Retry-After, or closed)")
            if self.open_in_all >= self.total:
                return (f"found the server full ({self.total} connections in all): "
                        "refused (503 Retry-After, or closed)")
            self.open[address] += 1
            self.open_in_all += 1
            return None

    def release(self, address: str) -> None:
        with self.lock:
            self.open[address] -= 1
            self.open_in_all -= 1
            if not self.open[address]:
                del self.open[address]  # the counter holds only clients with open connections

    def held_by(self, address: str) -> int:
        with self.lock:
            return self.open[address]

    def limit_hit(self, address: str, what: str) -> None:
        """Log that `address` hit a limit, the first time only."""
        with self.lock:
            if address in self.logged or len(self.logged) >= LOGGED_CLIENTS_KEPT:
                return
            self.logged.add(address)
        self.log(f"sdlens: client {address} {what}; other clients are not affected (logged once per client)")
