"""Precision variants of an exported fp32 ONNX graph, for what each browser backend can run.

- fp32: as exported. Every backend runs it; the reference the others are measured against.
- fp16: onnxruntime's float16 converter, keeping float32 inputs/outputs. Half the bytes; WebGPU
  runs it fast, but only on adapters with `shader-f16` (elsewhere it fails or, worse, is wrong).
- int8: dynamic quantization of weights (uint8). A quarter of the bytes; onnxruntime-web's WASM
  backend runs it correctly, its WebGPU backend does not (known upstream).
- q4: 4-bit block-quantized MatMul weights (MatMulNBits, block 32) on top of fp16.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

import onnx

from sdlens.errors import SdlensError

VARIANTS = ("fp32", "fp16", "int8", "q4")

# Which browser backends each variant suits; the browser picks among them (see web/).
BACKENDS = {
    "fp32": ["webgpu", "wasm"],
    "fp16": ["webgpu-f16"],
    "int8": ["wasm"],
    "q4": ["webgpu-f16", "wasm"],
}

# The largest file the browser must hash, cache or hold as one buffer. Every graph file and every
# external-data file is at most this big. Why 512 MiB: in Chromium `crypto.subtle.digest` rejected a
# 3.46 GB buffer while a 1.36 GB one passed; one ArrayBuffer caps near 2 GB; and hashing, caching and
# handing bytes to onnxruntime-web all happen per file, so the page holds at most one file's bytes
# extra at a time. 512 MiB leaves a wide margin under all of those and still keeps an SD UNet at
# a handful of files (fp32 3.46 GB → 7). Protobuf caps a graph file at 2 GiB whatever the limit.
MAX_FILE_BYTES = 512 * 1024 * 1024
PROTOBUF_LIMIT = 2**31 - 1
# Weights smaller than this stay inside the graph file (shapes, scales, biases of a few values).
EXTERNAL_MIN_BYTES = 1024
# External tensors start at offsets aligned to this, so a runtime may view them as typed arrays.
ALIGN = 64


def release_memory() -> None:
    """Collect freed torch/onnx objects and hand freed heap back to the OS (glibc keeps it otherwise)."""
    import ctypes
    import gc

    gc.collect()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except OSError:  # not glibc
        pass


def check_file_limit(max_file_bytes: int) -> int:
    limit = int(max_file_bytes)
    if not 1 << 16 <= limit < PROTOBUF_LIMIT:
        raise SdlensError(f"file size limit {limit} bytes is out of range (64 KiB to 2 GiB)")
    return limit


def initializer_bytes(model: onnx.ModelProto) -> int:
    """Bytes of weights, summed by hand: ByteSize() fails on graphs over 2 GB."""
    total = 0
    for tensor in model.graph.initializer:
        if tensor.raw_data:
            total += len(tensor.raw_data)
        else:
            total += onnx.numpy_helper.to_array(tensor).nbytes
    return total


def data_file_name(graph_path: Path, index: int) -> str:
    """`model_fp32.onnx` → `model_fp32-00.onnx_data`, `-01`, …; serve.py types files by that suffix."""
    return f"{Path(graph_path).stem}-{index:02d}.onnx_data"


def save(model: onnx.ModelProto, path: Path, max_file_bytes: int = MAX_FILE_BYTES) -> list[Path]:
    """Save a graph so that no file is over `max_file_bytes`. Returns the files written, graph first.

    A graph that fits is one self-contained file. A larger one is the graph alone plus its weights
    spread over several external-data files, each under the limit (ONNX lets every tensor name its
    own file, offset and length). Both runtimes pass the files after the first as external data
    under their base names, which is what the graph records. `model` is emptied of its weights."""
    limit = check_file_limit(max_file_bytes)
    path = Path(path)
    if initializer_bytes(model) < limit and not any(_is_external(t) for t in model.graph.initializer):
        data = model.SerializeToString()
        if len(data) <= limit:
            path.write_bytes(data)
            return [path]
        del data
    return _save_split(model, path, limit)


def _is_external(tensor: onnx.TensorProto) -> bool:
    return tensor.data_location == onnx.TensorProto.EXTERNAL


def _save_split(model: onnx.ModelProto, path: Path, limit: int) -> list[Path]:
    _split_oversized_initializers(model, limit)
    written: list[Path] = []
    out = None
    used = 0
    try:
        for tensor in model.graph.initializer:
            if _is_external(tensor):
                raise ValueError(f"tensor {tensor.name} still refers to external data; load it first")
            if not tensor.HasField("raw_data"):
                if onnx.numpy_helper.to_array(tensor).nbytes < EXTERNAL_MIN_BYTES:
                    continue
                tensor.CopyFrom(onnx.numpy_helper.from_array(onnx.numpy_helper.to_array(tensor), tensor.name))
            size = len(tensor.raw_data)
            if size < EXTERNAL_MIN_BYTES:
                continue
            offset = -used % ALIGN + used
            if out is None or offset + size > limit:
                if out is not None:
                    out.close()
                written.append(path.with_name(data_file_name(path, len(written))))
                out = open(written[-1], "wb")
                used = offset = 0
            out.write(b"\0" * (offset - used))
            out.write(tensor.raw_data)
            used = offset + size
            onnx.external_data_helper.set_external_data(tensor, written[-1].name, offset=offset, length=size)
            tensor.ClearField("raw_data")  # frees the bytes as we go
    finally:
        if out is not None:
            out.close()
    graph = model.SerializeToString()
    if len(graph) > limit:
        raise SdlensError(f"{path.name}: the graph alone is {len(graph)} bytes, over the {limit}-byte file limit "
                          "(large constants inside nodes?); raise --max-file-mib")
    path.write_bytes(graph)
    return [path, *written]


def _split_oversized_initializers(model: onnx.ModelProto, limit: int) -> None:
    """A tensor bigger than the file limit becomes several row blocks joined by a Concat node.

    Only a lowered limit needs this (at 512 MiB SD's largest tensor, the 202 MB token embedding,
    fits): it keeps the rule "no file over the limit" true for every limit."""
    from onnx import helper, numpy_helper

    replaced = []
    for index, tensor in enumerate(model.graph.initializer):
        nbytes = len(tensor.raw_data) if tensor.HasField("raw_data") else numpy_helper.to_array(tensor).nbytes
        if nbytes <= limit - ALIGN:
            continue
        array = numpy_helper.to_array(tensor)
        row_bytes = array[0].nbytes if array.ndim else array.nbytes
        if array.ndim == 0 or row_bytes > limit - ALIGN:
            raise SdlensError(f"tensor {tensor.name} ({nbytes} bytes) cannot be split under the {limit}-byte "
                              "file limit; raise --max-file-mib")
        rows = (limit - ALIGN) // row_bytes
        pieces = [numpy_helper.from_array(array[start:start + rows], f"{tensor.name}__part{i}")
                  for i, start in enumerate(range(0, len(array), rows))]
        replaced.append((index, tensor.name, pieces))
    for index, name, pieces in reversed(replaced):
        del model.graph.initializer[index]
        model.graph.initializer.extend(pieces)
        model.graph.node.insert(0, helper.make_node("Concat", [p.name for p in pieces], [name], axis=0,
                                                    name=f"{name}__join"))


def to_fp16(fp32_path: Path) -> onnx.ModelProto:
    from onnxruntime.transformers.float16 import convert_float_to_float16

    # The converter needs every tensor's type (to keep e.g. Resize scales in float32). In-memory
    # shape inference fails on graphs over 2 GB, so infer from the file, beside the original so
    # that external data paths still resolve, and tell the converter not to infer again.
    inferred = Path(fp32_path).with_name(Path(fp32_path).stem + ".inferred.onnx")
    onnx.shape_inference.infer_shapes_path(os.fspath(fp32_path), os.fspath(inferred))
    model = onnx.load(os.fspath(inferred))
    inferred.unlink()
    return convert_float_to_float16(model, keep_io_types=True, disable_shape_infer=True)


@contextlib.contextmanager
def _shape_inference_without_copies():
    """onnxruntime's dynamic quantizer refreshes its shape information by deep-copying the model,
    saving the copy and loading it back (`save_and_reload_model_with_shape_infer`): three copies
    of the weights at once, 10.4 GiB for SD's 3.5 GB fp32 UNet. Shape inference needs only each
    weight's type and shape, so this runs the same inference on a skeleton without weight bytes and
    puts its result into the model itself, as the reloaded copy would have it (same graph, same
    weights, value_info inferred, the quantizer's metadata mark)."""
    from onnxruntime.quantization import onnx_quantizer
    from onnxruntime.quantization.quant_utils import add_infer_metadata

    def in_place(model: onnx.ModelProto) -> onnx.ModelProto:
        skeleton = onnx.ModelProto(ir_version=model.ir_version, opset_import=model.opset_import)
        graph = skeleton.graph
        skeleton.functions.extend(model.functions)
        for field in ("node", "input", "output", "value_info"):
            getattr(graph, field).extend(getattr(model.graph, field))
        for tensor in model.graph.initializer:
            graph.initializer.add(name=tensor.name, data_type=tensor.data_type, dims=tensor.dims)
        inferred = onnx.shape_inference.infer_shapes(skeleton)
        del model.graph.value_info[:]
        model.graph.value_info.extend(inferred.graph.value_info)
        add_infer_metadata(model)
        return model

    saved = onnx_quantizer.save_and_reload_model_with_shape_infer
    onnx_quantizer.save_and_reload_model_with_shape_infer = in_place
    try:
        yield
    finally:
        onnx_quantizer.save_and_reload_model_with_shape_infer = saved


def to_int8(fp32_path: Path, out_path: Path, max_file_bytes: int = MAX_FILE_BYTES) -> list[Path]:
    import shutil
    import tempfile

    from onnxruntime.quantization import QuantType, quantize_dynamic

    # quantize_dynamic writes its own layout (`X.onnx` + `X.onnx.data`, one file of any size), so it
    # writes into a scratch folder beside the fp32 graph; the result is re-saved by the size rule
    # and the scratch folder removed, leaving nothing behind that the manifest does not list.
    model = onnx.load(os.fspath(fp32_path), load_external_data=False)
    large = os.path.getsize(fp32_path) > max_file_bytes or any(_is_external(t) for t in model.graph.initializer)
    del model
    scratch = Path(tempfile.mkdtemp(prefix="int8-", dir=Path(fp32_path).parent))
    try:
        quantized = scratch / "model.onnx"
        with _shape_inference_without_copies():
            quantize_dynamic(os.fspath(fp32_path), os.fspath(quantized), weight_type=QuantType.QUInt8,
                             use_external_data_format=large)
        release_memory()  # the quantizer's fp32 graph goes back to the OS before the result is loaded
        return save(onnx.load(os.fspath(quantized)), out_path, max_file_bytes)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def to_q4(fp16_model: onnx.ModelProto) -> onnx.ModelProto:
    import logging

    from onnxruntime.quantization.matmul_nbits_quantizer import MatMulNBitsQuantizer

    # It logs one INFO line for every node it skips.
    logging.getLogger("onnxruntime.quantization.matmul_nbits_quantizer").setLevel(logging.WARNING)
    quantizer = MatMulNBitsQuantizer(fp16_model, bits=4, block_size=32, is_symmetric=True)
    quantizer.process()
    return quantizer.model.model


def write_variant(variant: str, fp32_path: Path, out_path: Path, max_file_bytes: int = MAX_FILE_BYTES,
                  fp16_path: Path | None = None) -> list[Path]:
    """Write one variant of the graph at `fp32_path` to `out_path`; returns the files written, graph first.

    q4 is built on fp16: given the fp16 variant already written (`fp16_path`), it starts from that
    file, so the fp32 weights (3.5 GB for an SD UNet) are not loaded and converted a second time."""
    if variant == "fp32":
        return save(onnx.load(os.fspath(fp32_path)), out_path, max_file_bytes)
    if variant == "fp16":
        return save(to_fp16(fp32_path), out_path, max_file_bytes)
    if variant == "int8":
        return to_int8(fp32_path, out_path, max_file_bytes)
    if variant == "q4":
        fp16 = onnx.load(os.fspath(fp16_path)) if fp16_path else to_fp16(fp32_path)
        return save(to_q4(fp16), out_path, max_file_bytes)
    raise ValueError(f"unknown variant {variant!r}")
