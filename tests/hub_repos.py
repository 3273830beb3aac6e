"""Tiny Stable Diffusion repos, laid out as the Hub's ONNX repos are, for the mock Hub.

Each is made from the tiny random-weight pipeline (`python -m export tiny`) by optimum's exporter,
then changed the way the published repos differ from optimum's plain output (shared notes,
hub-layouts.md):

* **optimum layout** (as `schmuell/sd-turbo-ort-web`): int32 `input_ids`, an int64 `timestep` of
  shape [1]; fp32 inside, or fp16 inside with float32 inputs and outputs;
* **WebNN layout** (as `microsoft/stable-diffusion-v1.5-webnn`): the three graphs in the repo root
  under Microsoft's file names, no configs and no tokenizer, a UNet fixed at batch 2 with static
  shapes; float16 inputs and outputs (or float32, to check the fixed batch against diffusers).
"""

from __future__ import annotations

from pathlib import Path

import onnx
from onnx import TensorProto, helper

from sdlens.hub.known import KNOWN, SD15_TOKENIZER

WEBNN = "microsoft/stable-diffusion-v1.5-webnn"


def _retype_input(model: onnx.ModelProto, name: str, elem_type: int, shape: list, cast_to: int,
                  scalar: bool = False) -> None:
    """Make graph input `name` arrive as another type (and shape), cast back inside the graph."""
    graph = model.graph
    old = next(i for i in graph.input if i.name == name)
    inner = name + "_as_exported"
    for node in graph.node:
        node.input[:] = [inner if x == name else x for x in node.input]
    nodes = [helper.make_node("Cast", [name], [inner + ("_cast" if scalar else "")], to=cast_to)]
    if scalar:  # [1] or [2] (one per batch row, all equal) → the scalar optimum exported
        graph.initializer.append(helper.make_tensor(inner + "_first", TensorProto.INT64, [], [0]))
        nodes.append(helper.make_node("Gather", [inner + "_cast", inner + "_first"], [inner], axis=0))
    for i, node in enumerate(nodes):
        graph.node.insert(i, node)
    graph.input.remove(old)
    graph.input.insert(0, helper.make_tensor_value_info(name, elem_type, shape))


def _fix_dims(model: onnx.ModelProto, dims: dict[str, list]) -> None:
    for value in list(model.graph.input) + list(model.graph.output):
        if value.name in dims:
            for d, size in zip(value.type.tensor_type.shape.dim, dims[value.name]):
                if size is not None:
                    d.Clear()
                    d.dim_value = size


def _fp16(model: onnx.ModelProto, keep_io_types: bool) -> onnx.ModelProto:
    from onnxruntime.transformers.float16 import convert_float_to_float16

    # The converter keeps some tensors (Resize scales) float32 by their inferred types.
    inferred = onnx.shape_inference.infer_shapes(model)
    return convert_float_to_float16(inferred, keep_io_types=keep_io_types, disable_shape_infer=True)


def _bytes(model: onnx.ModelProto) -> bytes:
    return model.SerializeToString()


def optimum_repo(export: Path, fp16: bool = False) -> dict[str, bytes]:
    files = {p.relative_to(export).as_posix(): p.read_bytes() for p in sorted(export.rglob("*")) if p.is_file()}
    for component in ("text_encoder", "unet", "vae_decoder", "vae_encoder"):
        model = onnx.load(str(export / component / "model.onnx"))
        if component == "text_encoder":
            _retype_input(model, "input_ids", TensorProto.INT32, ["batch_size", "sequence_length"], TensorProto.INT64)
        if component == "unet":
            _retype_input(model, "timestep", TensorProto.INT64, [1], TensorProto.FLOAT, scalar=True)
        if fp16:
            model = _fp16(model, keep_io_types=True)
        files[f"{component}/model.onnx"] = _bytes(model)
    return files


def webnn_repo(export: Path, fp16: bool = True) -> dict[str, bytes]:
    """The WebNN SD 1.5 repo's three graphs, from the tiny export (64×64 pictures, 16×16 latents)."""
    names = KNOWN[WEBNN]["files"]
    text = onnx.load(str(export / "text_encoder" / "model.onnx"))
    _retype_input(text, "input_ids", TensorProto.INT32, ["batch", "sequence"], TensorProto.INT64)
    unet = onnx.load(str(export / "unet" / "model.onnx"))
    _retype_input(unet, "timestep", TensorProto.INT64, [2], TensorProto.FLOAT, scalar=True)
    hidden = unet.graph.input[[i.name for i in unet.graph.input].index("encoder_hidden_states")]
    width = hidden.type.tensor_type.shape.dim[2].dim_value
    _fix_dims(unet, {"sample": [2, 4, 16, 16], "encoder_hidden_states": [2, 77, width], "out_sample": [2, 4, 16, 16]})
    vae = onnx.load(str(export / "vae_decoder" / "model.onnx"))
    _fix_dims(vae, {"latent_sample": [1, 4, 16, 16], "sample": [1, 3, 64, 64]})
    graphs = {"text_encoder": text, "unet": unet, "vae_decoder": vae}
    if fp16:
        graphs = {k: _fp16(m, keep_io_types=False) for k, m in graphs.items()}
    files = {names[k]: _bytes(m) for k, m in graphs.items()}
    files["README.md"] = b"---\nlicense: creativeml-openrail-m\n---\nA tiny random-weight stand-in.\n"
    return files


def tokenizer_repo(export: Path) -> dict[str, bytes]:
    """What the WebNN repo's tokenizer comes from (the known table): SD 1.5's tokenizer/ folder."""
    folder = SD15_TOKENIZER["folder"]
    return {f"{folder}/{p.name}": p.read_bytes() for p in sorted((export / "tokenizer").iterdir())}
