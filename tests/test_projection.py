"""web/explainer/projection.js (hand-written PCA) against numpy's SVD, run under node."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

MODULE = Path(__file__).resolve().parent.parent / "web" / "explainer" / "projection.js"

pytestmark = pytest.mark.skipif(not shutil.which("node"), reason="needs node")


def js_pca2(tmp_path, data):
    """Run pca2 under node on `data` (a list of lists) and return its result."""
    (tmp_path / "data.json").write_text(json.dumps(data))
    script = tmp_path / "run.mjs"
    script.write_text(
        f"import {{ pca2 }} from {json.dumps(MODULE.as_uri())};\n"
        "import { readFileSync } from 'node:fs';\n"
        f"const data = JSON.parse(readFileSync({json.dumps(str(tmp_path / 'data.json'))}, 'utf8'));\n"
        "process.stdout.write(JSON.stringify(pca2(data.map((r) => Float32Array.from(r)))));\n")
    out = subprocess.run(["node", str(script)], capture_output=True, text=True, check=True, timeout=60)
    return json.loads(out.stdout)


def numpy_pca2(data):
    x = np.asarray(data, np.float32).astype(np.float64)  # the module reads Float32Arrays
    x = x - x.mean(axis=0)
    u, s, _ = np.linalg.svd(x, full_matrices=False)
    return u[:, :2] * s[:2], s[:2] ** 2, (x * x).sum()


def assert_equal_up_to_sign(got, want):
    scale = np.abs(want).max()
    for k in range(2):
        sign = 1.0 if np.dot(got[:, k], want[:, k]) >= 0 else -1.0
        np.testing.assert_allclose(sign * got[:, k], want[:, k], rtol=1e-6, atol=1e-6 * scale)


@pytest.mark.parametrize("n, d, seed", [(2, 5, 0), (7, 3, 1), (40, 300, 2), (120, 1024, 3)])
def test_pca2_matches_numpy_svd(tmp_path, n, d, seed):
    rng = np.random.default_rng(seed)
    # Anisotropic data, like a trajectory: a few strong directions plus noise.
    data = rng.normal(size=(n, d)) * np.geomspace(10, 0.1, d)
    data = data.astype(np.float32).tolist()
    result = js_pca2(tmp_path, data)
    want, variance, total = numpy_pca2(data)
    got = np.array(result["points"])
    assert got.shape == (n, 2)
    assert_equal_up_to_sign(got, want)
    np.testing.assert_allclose(result["variance"], variance, rtol=1e-6, atol=1e-9 * total)
    np.testing.assert_allclose(result["total"], total, rtol=1e-9)


def test_pca2_trajectory_and_degenerate_cases(tmp_path):
    # A smooth curve in a high-dimensional space (what a denoising trajectory looks like).
    t = np.linspace(0, 1, 30)[:, None]
    rng = np.random.default_rng(4)
    a, b = rng.normal(size=(2, 512))
    data = (np.cos(3 * t) * a + np.sin(3 * t) * b * 0.5 + 0.01 * rng.normal(size=(30, 512))).astype(np.float32)
    want, _, _ = numpy_pca2(data.tolist())
    assert_equal_up_to_sign(np.array(js_pca2(tmp_path, data.tolist())["points"]), want)
    # Far from the origin (centring is done on the Gram matrix: no precision may be lost there).
    far = (data + 50.0).astype(np.float32)
    want, _, _ = numpy_pca2(far.tolist())
    assert_equal_up_to_sign(np.array(js_pca2(tmp_path, far.tolist())["points"]), want)
    # One point, and identical points: everything projects to the origin, nothing is NaN.
    assert js_pca2(tmp_path, [[1.0, 2.0, 3.0]])["points"] == [[0, 0]]
    assert js_pca2(tmp_path, [[1.0, 2.0]] * 3)["points"] == [[0, 0]] * 3
