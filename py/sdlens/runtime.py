"""The runtime interface: everything the pipeline asks of the machine that holds the tensors.

The pipeline, the schedulers and guidance are plain Python. They never loop over tensor
elements. Instead they ask a *runtime* to run ONNX graphs and to form linear combinations
such as ``a*x + b*y``. In CPython the runtime is onnxruntime + numpy (``sdlens.cpython``);
in the browser it is onnxruntime-web, where tensors stay in GPU buffers between UNet calls
and Python only holds handles to them.

A ``Tensor`` is whatever handle the runtime returns. The only thing Python may look at
directly is its ``shape`` (a tuple of ints); its values come back only through ``read``.
"""

from __future__ import annotations

from typing import Any, Protocol, Sequence

Tensor = Any
Graph = Any


class Runtime(Protocol):
    #: Human-readable name of the backend actually in use, e.g. "onnxruntime CPU".
    backend: str

    def load(self, path: str, external_data: Sequence[str] = ()) -> Graph:
        """Load an ONNX graph from ``path`` (a file inside the model folder)."""

    def run(self, graph: Graph, feeds: dict[str, Tensor]) -> dict[str, Tensor]:
        """Run ``graph`` on named input tensors, returning its named outputs."""

    def floats(self, values: Sequence[float], shape: Sequence[int]) -> Tensor:
        """A float32 tensor of ``shape`` from a flat list of values (row-major)."""

    def ints(self, values: Sequence[int], shape: Sequence[int]) -> Tensor:
        """An int64 tensor of ``shape`` from a flat list of values (row-major)."""

    def combine(self, terms: Sequence[tuple[float, Tensor]]) -> Tensor:
        """The linear combination ``sum(c * t for c, t in terms)`` of same-shaped tensors."""

    def concat(self, tensors: Sequence[Tensor]) -> Tensor:
        """Stack tensors along their first (batch) axis."""

    def split(self, tensor: Tensor) -> list[Tensor]:
        """Split a tensor into its batch items, each keeping a batch axis of 1."""

    def pool(self, tensor: Tensor, factor: int) -> Tensor:
        """Average over factor×factor cells of the last two axes (a latent drawn small)."""

    def read(self, tensor: Tensor) -> list[float]:
        """Copy a tensor's values back to Python as a flat row-major list."""

    def from_rgb8(self, rgb: bytes, width: int, height: int) -> Tensor:
        """H*W*3 RGB bytes -> (1, 3, H, W) float32 in [-1, 1], as diffusers' image processor makes
        the VAE encoder's input: x / 255 * 2 - 1, in float32."""

    def to_rgb8(self, image: Tensor) -> bytes:
        """VAE output in [-1, 1], shape (1, 3, H, W) -> H*W*3 RGB bytes, as diffusers rounds them."""
