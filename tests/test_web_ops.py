"""The browser runtime's tensor-math graphs compute exactly what the CPython runtime computes."""

import numpy as np
import onnxruntime as ort
import pytest

from export import web_ops
from sdlens.cpython.runtime import OnnxRuntime

OPS = web_ops.OUT_DIR
rng = np.random.default_rng(0)


def session(name):
    return ort.InferenceSession(str(OPS / name), providers=["CPUExecutionProvider"])


def test_committed_graphs_are_current():
    for name, model in web_ops.all_graphs().items():
        assert (OPS / name).read_bytes() == model.SerializeToString(), f"run: python -m export web-ops ({name})"


@pytest.mark.parametrize("n", range(1, web_ops.MAX_TERMS + 1))
@pytest.mark.parametrize("shape", [(1, 4, 16, 16), (2, 77, 32)])
def test_combine_is_bit_identical_to_numpy(n, shape):
    xs = [rng.standard_normal(shape).astype(np.float32) for _ in range(n)]
    coefs = list(rng.standard_normal(n) * 3)
    feeds = {f"x{i}": x for i, x in enumerate(xs)}
    feeds["coefficients"] = np.asarray(coefs, np.float32)
    (got,) = session(f"combine_{n}.onnx").run(None, feeds)
    np.testing.assert_array_equal(got, OnnxRuntime().combine(list(zip(coefs, xs))))


def test_concat_and_split():
    a, b = (rng.standard_normal((1, 4, 8, 8)).astype(np.float32) for _ in range(2))
    (both,) = session("concat_2.onnx").run(None, {"a": a, "b": b})
    np.testing.assert_array_equal(both, np.concatenate([a, b]))
    first, second = session("split_2.onnx").run(None, {"x": both})
    np.testing.assert_array_equal(first, a)
    np.testing.assert_array_equal(second, b)


def test_to_rgb_rounds_like_diffusers():
    image = rng.uniform(-1.2, 1.2, (1, 3, 8, 8)).astype(np.float32)
    image[0, 0, 0, :4] = [(k + 0.5) / 255 * 2 - 1 for k in (0, 1, 2, 3)]  # exact .5 cases
    (pixels,) = session("to_rgb.onnx").run(None, {"image": image})
    expected = np.frombuffer(OnnxRuntime().to_rgb8(image), np.uint8).reshape(1, 8, 8, 3)
    np.testing.assert_array_equal(pixels.astype(np.uint8), expected)


@pytest.mark.parametrize("factor", web_ops.POOLS)
def test_pool_averages_cells_as_numpy(factor):
    """Within float rounding: onnxruntime adds a cell's values in an order of its own."""
    x = (rng.standard_normal((1, 4, 64, 48)) * 3).astype(np.float32)
    (got,) = session(f"pool_{factor}.onnx").run(None, {"x": x})
    want = x.reshape(1, 4, 64 // factor, factor, 48 // factor, factor).astype(np.float64).mean(axis=(3, 5))
    assert got.shape == want.shape
    np.testing.assert_allclose(got, want, rtol=0, atol=2e-6)
    np.testing.assert_allclose(OnnxRuntime().pool(x, factor), got, rtol=0, atol=1e-6)
