"""Firefox ESR, as schools have it (Debian's `firefox-esr`, JSPI on by default from 153): a first
visit runs the default model's starter prompt by itself, and a generate after it, each equal to
the CLI's picture. Driven headless over WebDriver BiDi by npm puppeteer-core
(tests/web/firefox_first_visit.mjs); never a downloaded browser."""

from __future__ import annotations

import base64
import json
import shutil
import subprocess

import numpy as np
import pytest

import serve
from sdlens.cpython.runtime import OnnxRuntime
from sdlens.model import Model
from sdlens.pipeline import Pipeline, Settings

from .conftest import embedded_default
from .test_browser import TOLERANCE, Server

FIREFOX = "/usr/bin/firefox-esr"
DEFAULT_MODEL = embedded_default()  # models/objects
SCRIPT = serve.ROOT / "tests" / "web" / "firefox_first_visit.mjs"

pytestmark = [
    pytest.mark.skipif(not shutil.which(FIREFOX), reason="needs Debian's firefox-esr (scripts/install installs it)"),
    pytest.mark.skipif(not shutil.which("node"), reason="needs node (scripts/install)"),
    pytest.mark.skipif(not (serve.ROOT / "node_modules" / "puppeteer-core").is_dir(),
                       reason="needs npm puppeteer-core (npm ci)"),
    pytest.mark.skipif(not (DEFAULT_MODEL / "manifest.json").is_file(), reason="the embedded models are not built"),
]


def cli_pixels(pipeline, settings):
    """The picture `python -m sdlens generate` makes with the page's settings (as it reads them)."""
    result = pipeline.generate(Settings.from_request(settings, pipeline.model.manifest["defaults"]).checked())
    return np.frombuffer(result.rgb, np.uint8).reshape(result.height, result.width, 3).astype(int)


def page_pixels(run):
    return np.frombuffer(base64.b64decode(run["rgb"]), np.uint8).reshape(run["height"], run["width"], 3).astype(int)


def test_firefox_first_visit_runs_by_itself_and_equals_the_cli():
    srv = Server(serve.ROOT / "models")
    request = dict(prompt="a small apple on the right, beige background", seed=7, steps=6)
    try:
        out = subprocess.run(["node", str(SCRIPT), srv.url, json.dumps(request)], cwd=serve.ROOT,
                             capture_output=True, text=True, timeout=900)
    finally:
        srv.stop()
    assert out.returncode == 0, out.stderr[-3000:]
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert "Firefox" in result["userAgent"] and result["backend"]["ep"] == "wasm", result["userAgent"]
    assert not result["errors"], result["errors"]
    if serve.LAYOUT.built_staleness() is None:
        # the snapshot made in headless Chromium restores here too (python_boot.js: restores_in), and
        # the pictures below show that its Python runs right
        assert result["boot"]["mode"] == "snapshot", result["boot"]
    manifest = json.loads((DEFAULT_MODEL / "manifest.json").read_text())
    first = result["first"]
    # Nothing asked for it: the page ran the model's first starter prompt at the model's defaults.
    assert first["settings"]["prompt"] == manifest["starter_prompts"][0]
    assert int(first["settings"]["steps"]) == manifest["defaults"]["steps"]
    assert result["canvasMatches"], "#image does not show the first run's picture"
    pipeline = Pipeline(Model.from_dir(str(DEFAULT_MODEL)), OnnxRuntime())
    for run in (first, result["second"]):
        diff = np.abs(page_pixels(run) - cli_pixels(pipeline, run["settings"])).max()
        assert diff <= TOLERANCE["wasm"], (run["settings"], diff)
    assert result["second"]["settings"]["prompt"] == request["prompt"]
