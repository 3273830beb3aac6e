"""sdlens: Stable Diffusion, step by step, in pure Python over a pluggable tensor runtime.

Everything in this package except ``sdlens.cpython`` uses the standard library only, so the
same files run in CPython and in Pyodide inside the browser.
"""

from .errors import SdlensError

__all__ = ["SdlensError"]
