#!/usr/bin/env python3
"""python serve.py [--lan]: serve the sdlens app to browsers on this machine or a classroom network.

Everything is computed in the browser; the server only hands out files. The serving code lives
in the sdlens package (py/sdlens/serving/), so the installed wheel's `sdlens serve` is the same.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT / "py"))  # this checkout's sdlens, installed or not

from sdlens.serving.app_files import Layout  # noqa: E402
from sdlens.serving.cli import serve_main  # noqa: E402
from sdlens.serving.server import Handler, make_server  # noqa: E402,F401  (tests and benchmarks use them)

LAYOUT = Layout.find()

if __name__ == "__main__":
    sys.exit(serve_main(prog="python serve.py"))
