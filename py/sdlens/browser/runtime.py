"""sdlens' runtime interface, implemented by calling onnxruntime-web in JavaScript.

The JavaScript side (web/runtime/ort_runtime.js) is asynchronous: running a graph or reading a GPU buffer
returns a Promise. The pipeline is plain synchronous Python, so each call waits for its Promise
with `run_sync`, which suspends WebAssembly while the browser works (JavaScript Promise
Integration). Tensors stay in JavaScript (in GPU buffers on WebGPU); Python holds `Handle`s.
"""

from __future__ import annotations

import time
from array import array

import js
from pyodide.ffi import JsProxy, run_sync, to_js


class Handle:
    """A tensor owned by onnxruntime-web. Python only knows its shape."""

    __slots__ = ("js", "shape", "_runtime")

    def __init__(self, runtime: "BrowserRuntime", js_tensor):
        self.js = js_tensor
        self.shape = tuple(js_tensor.dims.to_py())
        self._runtime = runtime

    def __del__(self):
        # GPU buffers are not garbage collected by the browser: free them as soon as Python
        # drops its last reference (CPython's reference counting makes this immediate).
        try:
            self._runtime.js.release(self.js)
            self.js.destroy()
        except Exception:
            pass


def _f32(values) -> "js.Float32Array":
    if isinstance(values, JsProxy):  # already a JavaScript Float32Array (e.g. a latent the page kept)
        return values
    data = values if isinstance(values, array) and values.typecode == "f" else array("f", values)
    out = js.Float32Array.new(len(data))
    out.assign(data)
    return out


class BrowserRuntime:
    def __init__(self, js_runtime):
        self.js = js_runtime
        self.backend = str(js_runtime.backend)
        #: Seconds spent waiting for JavaScript (onnxruntime-web), to tell Python's share of a step.
        self.waited_seconds = 0.0

    def _wait(self, promise):
        started = time.perf_counter()
        try:
            return run_sync(promise)
        finally:
            self.waited_seconds += time.perf_counter() - started

    def load(self, path, external_data=()):
        return self._wait(self.js.load(path, to_js(list(external_data))))

    def run(self, graph, feeds):
        names = list(feeds)
        outputs = self._wait(self.js.run(graph, to_js(names), to_js([feeds[n].js for n in names])))
        return {str(name): Handle(self, tensor) for name, tensor in outputs.to_py(depth=1).items()}

    def floats(self, values, shape):
        return Handle(self, self.js.floats(_f32(values), to_js(list(shape))))

    def ints(self, values, shape):
        return Handle(self, self.js.ints(to_js(list(values)), to_js(list(shape))))

    def combine(self, terms):
        coefficients = _f32([c for c, _ in terms])
        return Handle(self, self._wait(self.js.combine(coefficients, to_js([t.js for _, t in terms]))))

    def concat(self, tensors):
        return Handle(self, self._wait(self.js.concat(to_js([t.js for t in tensors]))))

    def split(self, tensor):
        return [Handle(self, t) for t in self._wait(self.js.split(tensor.js))]

    def pool(self, tensor, factor):
        return Handle(self, self._wait(self.js.pool(tensor.js, factor)))

    def read(self, tensor):
        return self._wait(self.js.read(tensor.js)).to_py().tolist()

    def read_f32(self, tensor):
        """The values as a JavaScript Float32Array, for the page (no Python list in between)."""
        return self._wait(self.js.read(tensor.js))

    def from_rgb8(self, rgb, width, height):
        pixels = js.Uint8Array.new(len(rgb))
        pixels.assign(rgb)
        return Handle(self, self.js.fromRgb8(pixels, width, height))

    def to_rgb8(self, image):
        return self._wait(self.js.toRgb8(image.js)).to_py().tobytes()
