"""Per-word cross-attention maps as a second output of an exported UNet graph.

At each UNet call, for every cross-attention layer (diffusers' `attn2`: image positions attend to
the prompt's tokens) we take the softmax probabilities, shape (batch, heads, h_l·w_l, tokens),
average them over heads, lay them out as (batch, tokens, h_l, w_l), resize them bilinearly
(PyTorch's `align_corners=False`) to the latent's (h, w) and average over layers with equal
weight. The graph returns that as `attention_maps`, (batch, tokens, h, w) float32, beside
`out_sample`. The pipeline keeps the conditional batch item.

This is done by adding nodes to the exported graph, after the existing Softmax nodes, not by
re-exporting the model: the weights stay byte for byte what they were (so every picture the model
makes stays the same), external data files are left untouched, and it works on any exported SD
UNet, fp32, fp16 or int8, whether we exported it or not. The Softmax stays a node of its own in
the graph, so no attention fusion can hide it.

`python -m export attention MODEL_DIR` adds the output to a model folder that lacks it and updates
its manifest; `python -m export convert` adds it to every UNet it exports.
"""

from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path

import onnx
from onnx import TensorProto, helper

from sdlens.errors import SdlensError

OUTPUT = "attention_maps"
PREFIX = "/sdlens_attention/"
# `/down_blocks.1/attentions.0/transformer_blocks.0/attn2/Softmax`: the transformer (group 1) that
# holds a cross-attention layer. Its input, the 4-D (batch, channels, h, w) feature map, gives h, w.
_CROSS_SOFTMAX = re.compile(r"^(/(?:.*/)?attentions\.\d+/)transformer_blocks\.\d+/attn2/Softmax$")


def has_attention_output(model: onnx.ModelProto) -> bool:
    return any(o.name == OUTPUT for o in model.graph.output)


def _layer_sources(graph: onnx.GraphProto) -> list[tuple[str, str]]:
    """(softmax output, the transformer's 4-D input) for every cross-attention layer, in graph order."""
    first_norm_input = {}
    for node in graph.node:
        match = re.match(r"^(/(?:.*/)?attentions\.\d+/)norm/", node.name)
        if match and node.op_type != "Constant" and match.group(1) not in first_norm_input:
            # GroupNorm exports as Reshape → InstanceNormalization → …: its first input is the feature map.
            first_norm_input[match.group(1)] = node.input[0]
    layers = []
    for node in graph.node:
        match = _CROSS_SOFTMAX.match(node.name)
        if node.op_type == "Softmax" and match:
            transformer = match.group(1)
            if transformer not in first_norm_input:
                raise SdlensError(f"cannot find the feature map that enters {transformer} (no {transformer}norm/ node)")
            layers.append((node.output[0], first_norm_input[transformer]))
    return layers


def add_attention_output(model: onnx.ModelProto) -> onnx.ModelProto:
    """Add the `attention_maps` output to a UNet graph, in place; returns the model."""
    if has_attention_output(model):
        return model
    graph = model.graph
    layers = _layer_sources(graph)
    if not layers:
        raise SdlensError("this UNet graph has no cross-attention Softmax nodes (…/attn2/Softmax) to read maps from")
    sample = next((i.name for i in graph.input if i.name == "sample"), None)
    if sample is None:
        raise SdlensError("this UNet graph has no input named 'sample'")

    nodes = []

    def node(op, inputs, name, **attrs):
        out = PREFIX + name
        nodes.append(helper.make_node(op, inputs, [out], name=out, **attrs))
        return out

    def const(name, values):
        out = PREFIX + name
        nodes.append(helper.make_node("Constant", [], [out], name=out,
                                      value=helper.make_tensor(out, TensorProto.INT64, [len(values)], values)))
        return out

    heads_axis = const("heads_axis", [1])
    first_two = (const("start_0", [0]), const("end_2", [2]))
    last_two = (const("start_2", [2]), const("end_4", [4]))
    latent_hw = node("Slice", [node("Shape", [sample], "latent_shape"), *last_two], "latent_hw")

    maps = []
    for i, (probs, feature_map) in enumerate(layers):
        p = node("Cast", [probs], f"l{i}/probs", to=TensorProto.FLOAT)  # fp16 graphs: average in fp32
        mean = node("ReduceMean", [p, heads_axis], f"l{i}/head_mean", keepdims=0)  # (b, hw, tokens)
        by_token = node("Transpose", [mean], f"l{i}/by_token", perm=[0, 2, 1])  # (b, tokens, hw)
        batch_tokens = node("Slice", [node("Shape", [by_token], f"l{i}/shape"), *first_two], f"l{i}/batch_tokens")
        layer_hw = node("Slice", [node("Shape", [feature_map], f"l{i}/feature_shape"), *last_two], f"l{i}/hw")
        grid = node("Reshape", [by_token, node("Concat", [batch_tokens, layer_hw], f"l{i}/grid_shape", axis=0)],
                    f"l{i}/grid")  # (b, tokens, h_l, w_l)
        sizes = node("Concat", [batch_tokens, latent_hw], f"l{i}/sizes", axis=0)
        # torch.nn.functional.interpolate(mode="bilinear", align_corners=False) is ONNX's linear half_pixel.
        maps.append(node("Resize", [grid, "", "", sizes], f"l{i}/resized", mode="linear",
                         coordinate_transformation_mode="half_pixel"))
    total = maps[0]
    for i, m in enumerate(maps[1:], start=1):
        total = node("Add", [total, m], f"sum_{i}")
    count = PREFIX + "layer_count"
    nodes.append(helper.make_node("Constant", [], [count], name=count,
                                  value=helper.make_tensor(count, TensorProto.FLOAT, [], [float(len(maps))])))
    nodes.append(helper.make_node("Div", [total, count], [OUTPUT], name=PREFIX + "layer_mean"))

    graph.node.extend(nodes)
    # Types recorded for these names by an earlier conversion (e.g. fp16) would contradict the new nodes.
    stale = [v for v in graph.value_info if v.name.startswith(PREFIX) or v.name == OUTPUT]
    for v in stale:
        graph.value_info.remove(v)
    graph.output.append(helper.make_tensor_value_info(
        OUTPUT, TensorProto.FLOAT, ["batch_size", "sequence_length", "latent_height", "latent_width"]))
    return model


def add_to_file(path: Path) -> bool:
    """Add the output to the graph file at `path` (weights in external files stay as they are).
    Returns False when it already had it. The file is replaced atomically."""
    path = Path(path)
    model = onnx.load(os.fspath(path), load_external_data=False)
    if has_attention_output(model):
        return False
    add_attention_output(model)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    os.close(fd)
    try:
        # Initializers that live in external data keep their references: only the graph is rewritten.
        onnx.save_model(model, tmp)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return True


def add_to_model_dir(model_dir: Path) -> list[str]:
    """Add the output to every UNet variant of an exported model folder and update its manifest.
    Returns the variants changed."""
    import json

    from .manifest import file_entry, graph_io

    root = Path(model_dir)
    manifest_path = root / "manifest.json"
    if not manifest_path.is_file():
        raise SdlensError(f"{root} is not an sdlens model folder (no manifest.json)")
    manifest = json.loads(manifest_path.read_text())
    changed = []
    for variant, entry in manifest["components"]["unet"]["variants"].items():
        graph_file = root / entry["files"][0]["path"]
        if add_to_file(graph_file):
            changed.append(variant)
        entry["files"][0] = file_entry(graph_file, root)
        entry["inputs"], entry["outputs"] = graph_io(graph_file)
    if changed:
        manifest_path.write_text(json.dumps(manifest, indent=2) + "\n")
    return changed


def remove_attention_output(model: onnx.ModelProto) -> onnx.ModelProto:
    """The inverse, in place: keep only what `out_sample` needs, as the graph was exported before
    attention maps existed (for benchmarks and tests that compare the two)."""
    graph = model.graph
    needed, kept = {o.name for o in graph.output if o.name != OUTPUT}, set()
    while True:  # converted graphs are not always in topological order
        more = {i for i, n in enumerate(graph.node) if i not in kept and needed & set(n.output)}
        if not more:
            break
        kept |= more
        for i in more:
            needed |= set(graph.node[i].input)
    keep = [n for i, n in enumerate(graph.node) if i in kept]
    del graph.node[:]
    graph.node.extend(keep)
    outputs = [o for o in graph.output if o.name != OUTPUT]
    del graph.output[:]
    graph.output.extend(outputs)
    produced = {o for n in keep for o in n.output}
    stale = [v for v in graph.value_info if v.name not in produced]
    for v in stale:
        graph.value_info.remove(v)
    return model
