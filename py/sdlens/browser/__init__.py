"""The Pyodide side of sdlens: the runtime interface over onnxruntime-web (web/runtime/ort_runtime.js).

Only the browser imports this package (it needs Pyodide's `pyodide.ffi`).
"""
