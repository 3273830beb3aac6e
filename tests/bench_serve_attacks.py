"""`python -m tests.bench serve`'s adversarial half: one client misbehaves, another asks for `/`.

Each case starts `python serve.py` on a models folder holding a 24 MB file, starts one
misbehaving client in its own process (from 127.0.0.2), and meanwhile times a good client's
`GET /` from 127.0.0.3, each on a new connection, as a browser opening the page would:
- none: nobody misbehaves (the baseline);
- stalled: 700 connections that never send a byte, reopened as the server closes them;
- slowloris: 200 connections trickling a request head one byte per socket every 100 ms, reopened;
- slow-reader: 40 connections reading the 24 MB file at 1 kB/s each, reopened when refused.
It prints the good client's median and slowest answer, how many were not 200, what the
misbehaving client got, and the server's resident memory (peak) during the case.
"""

from __future__ import annotations

import http.client
import multiprocessing
import re
import selectors
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ATTACKER, GOOD = "127.0.0.2", "127.0.0.3"
BIG_FILE = 24_000_000
CASES = ("none", "stalled", "slowloris", "slow-reader")
SETTLE_S = 3.0  # the attack reaches its steady state (share full, refusals churning) before timing


def bench_serve_attacks(cases: list[str], samples: int, rss_mb) -> None:
    root = Path(__file__).resolve().parent.parent
    with tempfile.TemporaryDirectory() as models:
        folder = Path(models) / "m1"
        folder.mkdir()
        (folder / "manifest.json").write_text('{"name": "m1", "default": true}')
        with open(folder / "big.bin", "wb") as f:
            f.write(bytes(range(256)) * (BIG_FILE // 256))
        for case in cases:
            server = subprocess.Popen([sys.executable, str(root / "serve.py"), "--port", "0", "--models", models],
                                      stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            log = []
            try:
                port = int(re.search(r":(\d+)", server.stdout.readline()).group(1))
                threading.Thread(target=server.stdout.read, daemon=True).start()
                threading.Thread(target=lambda: log.extend(server.stderr), daemon=True).start()
                before = rss_mb(server.pid)[0]
                stop = multiprocessing.get_context("spawn").Event()
                tally = multiprocessing.get_context("spawn").Queue()
                attacker = multiprocessing.get_context("spawn").Process(target=attack, args=(case, port, stop, tally))
                attacker.start()
                time.sleep(SETTLE_S)  # let the attack build up: the bench times the steady state
                times, failures = good_client(port, samples)
                stop.set()
                attacker.join(timeout=60)
                got = tally.get(timeout=10) if case != "none" else {}
                after, peak = rss_mb(server.pid)
            finally:
                server.terminate()
                server.wait()
            limit_lines = [line for line in log if "hit" in line or "client " in line]
            print(f"{case}: good client's GET / on a new connection, {len(times)} times: median "
                  f"{statistics.median(times) * 1000:.1f} ms, slowest {max(times) * 1000:.1f} ms, "
                  f"{failures} not 200; misbehaving client got {got or 'nothing (no attack)'}; "
                  f"{len(limit_lines)} log line(s) about limits; server memory {before:.0f} → {after:.0f} MB "
                  f"(peak {peak:.0f} MB)")
            for line in limit_lines:
                print("   ", line.strip())


def good_client(port: int, samples: int) -> tuple[list[float], int]:
    times, failures = [], 0
    for _ in range(samples):
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60, source_address=(GOOD, 0))
        started = time.perf_counter()
        try:
            conn.request("GET", "/")
            response = conn.getresponse()
            response.read()
            failures += response.status != 200
        except OSError:
            failures += 1
        times.append(time.perf_counter() - started)
        conn.close()
        time.sleep(0.05)  # the good client's own pace: a page opened every 50 ms
    return times, failures


# -- the misbehaving client (its own process, so it shares no GIL with the good one) -----------

ATTACKS = {  # what each connection sends first, how many it keeps open, how often it acts
    "stalled": (b"", 700, None),
    "slowloris": (b"GET / HTTP/1.1\r\nX-Slow: ", 200, 0.1),  # then one byte per socket per tick
    "slow-reader": (b"GET /models/m1/big.bin HTTP/1.1\r\nHost: x\r\n\r\n", 40, 0.1),  # 100 B per tick
}


def attack(case: str, port: int, stop, tally) -> None:
    if case == "none":
        return
    opening, wanted, interval = ATTACKS[case]
    selector = selectors.DefaultSelector()
    counts = {"opened": 0, "closed by the server": 0, "answered 503": 0, "bytes read": 0}

    def open_one():
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # a slow reader's small window
        sock.bind((ATTACKER, 0))
        sock.setblocking(False)
        try:
            sock.connect(("127.0.0.1", port))
        except BlockingIOError:
            pass
        selector.register(sock, selectors.EVENT_READ, {"sent": not opening})
        counts["opened"] += 1

    def received(sock, data: bytes) -> None:
        if data.startswith(b"HTTP/1.1 503"):
            counts["answered 503"] += 1
        if not data or data.startswith(b"HTTP/1.1 503"):
            selector.unregister(sock)
            sock.close()
            counts["closed by the server"] += 1
        else:
            counts["bytes read"] += len(data)

    while not stop.is_set():
        while len(selector.get_map()) < wanted:
            open_one()
        if interval is None:  # stalled: only notice closes, and reopen
            for key, _ in selector.select(timeout=0.05):
                try:
                    received(key.fileobj, key.fileobj.recv(4096))
                except (BlockingIOError, InterruptedError):
                    pass
                except OSError:
                    received(key.fileobj, b"")
            continue
        time.sleep(interval)  # the attacker's pace (the load it makes), not a wait for the server
        for key in list(selector.get_map().values()):
            sock, state = key.fileobj, key.data
            try:
                if not state["sent"]:
                    sock.send(opening)
                    state["sent"] = True
                elif case == "slowloris":
                    try:
                        received(sock, sock.recv(4096))  # a refusal, or a close
                        continue
                    except BlockingIOError:
                        sock.send(b"a")
                else:
                    received(sock, sock.recv(100))  # 100 bytes every 100 ms: 1 kB/s
            except (BlockingIOError, InterruptedError):
                pass  # still connecting, or nothing to read yet
            except OSError:
                received(sock, b"")
    for key in list(selector.get_map().values()):
        key.fileobj.close()
    tally.put(counts)
