#!/usr/bin/env python3
"""python serve.py [--lan]: serve the sdlens app to browsers on this machine or a classroom network.

Everything is computed in the browser; the server only hands out files. The serving code lives
in the sdlens package (py/sdlens/serving/), so the installed wheel's `sdlens serve` is the same.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT / "py"))  # this checkout's sdlens, installed or not

from sdlens.serving.app_files import Layout  # noqa: E402
from sdlens.serving.cli import serve_main  # noqa: E402
from sdlens.serving.server import Handler, make_server  # noqa: E402,F401  (tests and benchmarks use them)

LAYOUT = Layout.find()


def install_runtime_if_missing() -> None:
    """A fresh clone has no node_modules: fetch the pinned browser runtime (npm ci) first."""
    if LAYOUT.missing_runtime_files() and shutil.which("npm") and (ROOT / "package-lock.json").is_file():
        print("sdlens: installing the browser runtime files first (npm ci)…", flush=True)
        subprocess.run(["npm", "ci", "--no-audit", "--no-fund"], cwd=ROOT, check=False)


if __name__ == "__main__":
    if "-h" not in sys.argv and "--help" not in sys.argv:
        install_runtime_if_missing()
    sys.exit(serve_main(prog="python serve.py"))
