"""The small fixed ONNX graphs the browser runtime uses for tensor math (web/runtime/ops/*.onnx).

In the browser, latents and noise predictions stay in onnxruntime-web's tensors (GPU buffers on
WebGPU), so `combine`, `concat`, `split` and the final pixel conversion are graphs too, run by
the same backend as the UNet. They compute exactly what the CPython runtime's numpy code does,
in the same order, so both runtimes round alike. `python -m export web-ops` rewrites them;
a test checks the committed files are current.
"""

from __future__ import annotations

from pathlib import Path

import onnx
from onnx import TensorProto, helper

OPSET = 18
MAX_TERMS = 6  # the longest linear combination a scheduler forms (LMS order 4: x + 4 derivatives)
OUT_DIR = Path(__file__).resolve().parent.parent / "web" / "runtime" / "ops"


def _model(name: str, nodes, inputs, outputs, initializers=()) -> onnx.ModelProto:
    graph = helper.make_graph(nodes, name, inputs, outputs, list(initializers))
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="sdlens")
    model.ir_version = 8
    # Inputs have no fixed rank (the same combine serves latents and embeddings), which
    # onnx.checker refuses but onnxruntime runs; tests/test_web_ops.py runs every graph.
    return model


def _tensor(name: str):
    return helper.make_tensor_value_info(name, TensorProto.FLOAT, None)


def combine(n: int) -> onnx.ModelProto:
    """y = c[0]*x0 + c[1]*x1 + … : each product rounded to float32, then added left to right."""
    nodes = []
    for i in range(n):
        nodes.append(helper.make_node("Gather", ["coefficients", f"index{i}"], [f"c{i}"], axis=0))
        nodes.append(helper.make_node("Mul", [f"c{i}", f"x{i}"], [f"term{i}"]))
    acc = "term0"
    for i in range(1, n):
        out = "y" if i == n - 1 else f"sum{i}"
        nodes.append(helper.make_node("Add", [acc, f"term{i}"], [out]))
        acc = out
    if n == 1:
        nodes.append(helper.make_node("Identity", ["term0"], ["y"]))
    indices = [helper.make_tensor(f"index{i}", TensorProto.INT64, [], [i]) for i in range(n)]
    inputs = [_tensor(f"x{i}") for i in range(n)]
    inputs.append(helper.make_tensor_value_info("coefficients", TensorProto.FLOAT, [n]))
    return _model(f"combine_{n}", nodes, inputs, [_tensor("y")], indices)


def concat2() -> onnx.ModelProto:
    return _model("concat_2", [helper.make_node("Concat", ["a", "b"], ["y"], axis=0)],
                  [_tensor("a"), _tensor("b")], [_tensor("y")])


def split2() -> onnx.ModelProto:
    return _model("split_2", [helper.make_node("Split", ["x"], ["a", "b"], axis=0, num_outputs=2)],
                  [_tensor("x")], [_tensor("a"), _tensor("b")])


def pool(factor: int) -> onnx.ModelProto:
    """y = x averaged over factor×factor cells of its last two axes (a latent, before the preview
    decoder draws it small: sdlens.fast_decoder). The CPython runtime's numpy equals it within float
    rounding (onnxruntime adds a cell's values in an order of its own)."""
    return _model(f"pool_{factor}", [helper.make_node("AveragePool", ["x"], ["y"], kernel_shape=[factor, factor],
                                                      strides=[factor, factor])],
                  [_tensor("x")], [_tensor("y")])


#: the pooling factors a preview may ask for (export.preview.preview_pool: 2 at 512–1023 px, 4 above)
POOLS = (2, 4)


def to_rgb() -> onnx.ModelProto:
    """VAE output (1, 3, H, W) in [-1, 1] → (1, H, W, 3) pixel values 0…255, rounded half to even
    like numpy and torch: round(clip(x / 2 + 0.5, 0, 1) * 255)."""
    consts = [helper.make_tensor(n, TensorProto.FLOAT, [], [v])
              for n, v in (("two", 2.0), ("half", 0.5), ("zero", 0.0), ("one", 1.0), ("full", 255.0))]
    nodes = [
        helper.make_node("Div", ["image", "two"], ["halved"]),
        helper.make_node("Add", ["halved", "half"], ["shifted"]),
        helper.make_node("Clip", ["shifted", "zero", "one"], ["clipped"]),
        helper.make_node("Mul", ["clipped", "full"], ["scaled"]),
        helper.make_node("Round", ["scaled"], ["rounded"]),
        helper.make_node("Transpose", ["rounded"], ["pixels"], perm=[0, 2, 3, 1]),
    ]
    return _model("to_rgb", nodes, [_tensor("image")], [_tensor("pixels")], consts)


def f16_check() -> onnx.ModelProto:
    """The fp16 self-check of web/runtime/selfcheck.js: y = softmax(xW + b) * sigmoid(xW + b) in float16,
    with W and b given by the same formulas as there (float32 in and out)."""
    import math

    rows, width = 4, 8  # selfcheck.js ROWS, WIDTH
    weights = [math.cos(i * width + j) / 2 for i in range(width) for j in range(width)]
    bias = [j / width - 0.5 for j in range(width)]
    consts = [helper.make_tensor("W", TensorProto.FLOAT16, [width, width], weights),
              helper.make_tensor("b", TensorProto.FLOAT16, [width], bias)]
    nodes = [
        helper.make_node("Cast", ["x"], ["x16"], to=TensorProto.FLOAT16),
        helper.make_node("MatMul", ["x16", "W"], ["xw"]),
        helper.make_node("Add", ["xw", "b"], ["h"]),
        helper.make_node("Softmax", ["h"], ["p"], axis=-1),
        helper.make_node("Sigmoid", ["h"], ["s"]),
        helper.make_node("Mul", ["p", "s"], ["y16"]),
        helper.make_node("Cast", ["y16"], ["y"], to=TensorProto.FLOAT),
    ]
    io = lambda name: helper.make_tensor_value_info(name, TensorProto.FLOAT, [rows, width])  # noqa: E731
    return _model("f16_check", nodes, [io("x")], [io("y")], consts)


def cast(to: str) -> onnx.ModelProto:
    """x → x as float16 (`cast_f16`) or back as float32 (`cast_f32`): a Hub graph that takes or gives
    float16 tensors (the WebNN repos) gets them on the device, without a round trip to the CPU."""
    src, dst = (TensorProto.FLOAT, TensorProto.FLOAT16) if to == "f16" else (TensorProto.FLOAT16, TensorProto.FLOAT)
    return _model(f"cast_{to}", [helper.make_node("Cast", ["x"], ["y"], to=dst)],
                  [helper.make_tensor_value_info("x", src, None)], [helper.make_tensor_value_info("y", dst, None)])


def all_graphs() -> dict[str, onnx.ModelProto]:
    graphs = {f"combine_{n}.onnx": combine(n) for n in range(1, MAX_TERMS + 1)}
    graphs.update({"concat_2.onnx": concat2(), "split_2.onnx": split2(), "to_rgb.onnx": to_rgb(),
                   "f16_check.onnx": f16_check(), "cast_f16.onnx": cast("f16"), "cast_f32.onnx": cast("f32")})
    graphs.update({f"pool_{k}.onnx": pool(k) for k in POOLS})
    return graphs


def write(out_dir: Path = OUT_DIR) -> list[Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for name, model in all_graphs().items():
        path = out_dir / name
        path.write_bytes(model.SerializeToString())
        written.append(path)
    return written
