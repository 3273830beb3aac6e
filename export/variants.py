"""Precision variants of an exported fp32 ONNX graph, for what each browser backend can run.

- fp32: as exported. Every backend runs it; the reference the others are measured against.
- fp16: onnxruntime's float16 converter, keeping float32 inputs/outputs. Half the bytes; WebGPU
  runs it fast, but only on adapters with `shader-f16` (elsewhere it fails or, worse, is wrong).
- int8: dynamic quantization of weights (uint8). A quarter of the bytes; onnxruntime-web's WASM
  backend runs it correctly, its WebGPU backend does not (known upstream).
- q4: 4-bit block-quantized MatMul weights (MatMulNBits, block 32) on top of fp16.
"""

from __future__ import annotations

import os
from pathlib import Path

import onnx

VARIANTS = ("fp32", "fp16", "int8", "q4")

# Which browser backends each variant suits; the browser picks among them (see web/).
BACKENDS = {
    "fp32": ["webgpu", "wasm"],
    "fp16": ["webgpu-f16"],
    "int8": ["wasm"],
    "q4": ["webgpu-f16", "wasm"],
}

# A graph whose weights pass this size is saved as a small model.onnx plus one external data file:
# protobuf caps a single message at 2 GB and onnxruntime-web fails to allocate single files above ~1 GB.
EXTERNAL_DATA_BYTES = 1 << 30


def initializer_bytes(model: onnx.ModelProto) -> int:
    """Bytes of weights, summed by hand: ByteSize() fails on graphs over 2 GB."""
    total = 0
    for tensor in model.graph.initializer:
        if tensor.raw_data:
            total += len(tensor.raw_data)
        else:
            total += onnx.numpy_helper.to_array(tensor).nbytes
    return total


def save(model: onnx.ModelProto, path: Path) -> list[Path]:
    """Save a graph, with external data when it is large. Returns the files written."""
    path = Path(path)
    if initializer_bytes(model) > EXTERNAL_DATA_BYTES:
        data_name = path.name + "_data"
        onnx.save_model(
            model,
            os.fspath(path),
            save_as_external_data=True,
            all_tensors_to_one_file=True,
            location=data_name,
            size_threshold=1024,
        )
        return [path, path.with_name(data_name)]
    onnx.save_model(model, os.fspath(path))
    return [path]


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


def to_int8(fp32_path: Path, out_path: Path) -> list[Path]:
    from onnxruntime.quantization import QuantType, quantize_dynamic

    model = onnx.load(os.fspath(fp32_path), load_external_data=False)
    large = os.path.getsize(fp32_path) > EXTERNAL_DATA_BYTES or any(
        t.data_location == onnx.TensorProto.EXTERNAL for t in model.graph.initializer
    )
    quantize_dynamic(
        os.fspath(fp32_path),
        os.fspath(out_path),
        weight_type=QuantType.QUInt8,
        use_external_data_format=large,
    )
    # Re-save through `save` so the file layout follows the same size rule as the other variants.
    return save(onnx.load(os.fspath(out_path)), out_path)


def to_q4(fp16_model: onnx.ModelProto) -> onnx.ModelProto:
    import logging

    from onnxruntime.quantization.matmul_nbits_quantizer import MatMulNBitsQuantizer

    # It logs one INFO line for every node it skips.
    logging.getLogger("onnxruntime.quantization.matmul_nbits_quantizer").setLevel(logging.WARNING)
    quantizer = MatMulNBitsQuantizer(fp16_model, bits=4, block_size=32, is_symmetric=True)
    quantizer.process()
    return quantizer.model.model


def write_variant(variant: str, fp32_path: Path, out_path: Path) -> list[Path]:
    """Write one variant of the graph at `fp32_path` to `out_path`; returns the files written."""
    if variant == "fp32":
        return save(onnx.load(os.fspath(fp32_path)), out_path)
    if variant == "fp16":
        return save(to_fp16(fp32_path), out_path)
    if variant == "int8":
        return to_int8(fp32_path, out_path)
    if variant == "q4":
        return save(to_q4(to_fp16(fp32_path)), out_path)
    raise ValueError(f"unknown variant {variant!r}")
