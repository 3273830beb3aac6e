"""The CPython side of sdlens: an onnxruntime + numpy runtime, image files, and the CLI's I/O.

Nothing in here is imported by the browser; the browser has its own runtime over onnxruntime-web.
"""
