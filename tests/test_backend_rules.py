"""The browser's backend and variant rules (web/runtime/backend.js) and the fp16 self-check's judgement
(web/runtime/selfcheck.js), as units under Node for the adapters this machine's Chromium cannot show; and
the self-check graph (web/runtime/ops/f16_check.onnx) against the reference the browser compares with."""

from __future__ import annotations

import json
import shutil
import subprocess

import numpy as np
import onnxruntime as ort
import pytest

from .conftest import ROOT

pytestmark = pytest.mark.skipif(not shutil.which("node"), reason="needs node (scripts/install)")


def test_backend_rules_under_node():
    result = subprocess.run(["node", "--test", "tests/web/"], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert "# fail 0" in result.stdout


def node_eval(script: str):
    code = f"import * as m from {json.dumps((ROOT / 'web' / 'runtime' / 'selfcheck.js').as_uri())}; {script}"
    out = subprocess.run(["node", "--input-type=module", "-e", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def test_f16_check_graph_computes_the_reference():
    x = np.asarray(node_eval("console.log(JSON.stringify(Array.from(m.checkInput())))"), np.float32)
    session = ort.InferenceSession(str(ROOT / "web" / "runtime" / "ops" / "f16_check.onnx"), providers=["CPUExecutionProvider"])
    (y,) = session.run(None, {"x": x.reshape(4, 8)})
    verdict = node_eval(f"console.log(JSON.stringify(m.judge({json.dumps(y.ravel().tolist())})))")
    assert verdict["ok"], verdict
    assert verdict["maxError"] < 2e-3  # float16 rounding only
    # and a graph computing something else is refused
    bad = node_eval(f"console.log(JSON.stringify(m.judge({json.dumps((y.ravel() * 1.05).tolist())})))")
    assert not bad["ok"]
