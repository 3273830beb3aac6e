"""The sdlens runtime on onnxruntime (CPU) with numpy arrays as tensors."""

from __future__ import annotations

import os
from typing import Sequence

import numpy as np
import onnxruntime as ort

#: The element types a graph may declare for its inputs, as numpy types. Hub graphs take int32 ids
#: or float16 tensors; the pipeline's tensors stay float32/int64 and are cast at the graph's door.
INPUT_TYPES = {"tensor(float)": np.float32, "tensor(float16)": np.float16, "tensor(int32)": np.int32,
               "tensor(int64)": np.int64}


class OnnxRuntime:
    """Runs graphs with onnxruntime's CPU provider; tensors are float32/int64 numpy arrays."""

    def __init__(self, threads: int | None = None):
        self.options = ort.SessionOptions()
        self.options.log_severity_level = 3
        if threads:
            self.options.intra_op_num_threads = threads
        self.backend = f"onnxruntime {ort.__version__} CPU"

    def load(self, path: str, external_data: Sequence[str] = ()):
        # External data files sit beside the graph; onnxruntime finds them by the graph's path.
        return ort.InferenceSession(os.fspath(path), self.options, providers=["CPUExecutionProvider"])

    def run(self, graph, feeds):
        names = [o.name for o in graph.get_outputs()]
        types = {i.name: INPUT_TYPES.get(i.type) for i in graph.get_inputs()}
        # (np.ascontiguousarray would turn the 0-d timestep into shape (1,).)
        outputs = graph.run(names, {k: np.asarray(v, dtype=types.get(k), order="C") for k, v in feeds.items()})
        # float16 outputs come back as float32, the only float type the pipeline's tensors have
        return {n: o.astype(np.float32) if o.dtype == np.float16 else o for n, o in zip(names, outputs)}

    def floats(self, values, shape):
        return np.asarray(values, dtype=np.float32).reshape(tuple(shape))

    def ints(self, values, shape):
        return np.asarray(values, dtype=np.int64).reshape(tuple(shape))

    def combine(self, terms):
        (c0, t0), *rest = terms
        out = np.float32(c0) * t0
        for c, t in rest:
            out += np.float32(c) * t
        return out.astype(np.float32, copy=False)

    def concat(self, tensors):
        return np.concatenate(tensors, axis=0)

    def split(self, tensor):
        return [tensor[i : i + 1] for i in range(tensor.shape[0])]

    def pool(self, tensor, factor):
        # The browser's pool graph (onnx AveragePool) within float rounding: onnxruntime's kernels add a
        # cell's values in an order of their own (measured: equal to the last bit for 4×4 cells, not 2×2).
        total = None
        for dy in range(factor):
            for dx in range(factor):
                part = tensor[..., dy::factor, dx::factor]
                total = part.copy() if total is None else total + part
        return (total / np.float32(factor * factor)).astype(np.float32, copy=False)

    def read(self, tensor):
        return np.asarray(tensor, dtype=np.float32).ravel().tolist()

    def from_rgb8(self, rgb, width, height):
        # diffusers' VaeImageProcessor: float32 / 255, then 2·x − 1
        pixels = np.frombuffer(bytes(rgb), dtype=np.uint8).reshape(height, width, 3).astype(np.float32) / 255.0
        return np.ascontiguousarray((2.0 * pixels - 1.0).transpose(2, 0, 1)[None], dtype=np.float32)

    def to_rgb8(self, image):
        # diffusers: (x / 2 + 0.5).clamp(0, 1), then (x * 255).round() to uint8.
        pixels = np.clip(image[0] / 2 + 0.5, 0, 1).transpose(1, 2, 0)
        return (pixels * 255).round().astype(np.uint8).tobytes()
