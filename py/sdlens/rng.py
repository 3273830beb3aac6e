"""Gaussian noise that equals ``torch.randn(shape, generator=torch.Generator("cpu").manual_seed(seed))``.

Stable Diffusion starts from noise, and a seed only means something if every runtime draws the
same noise from it. torch's CPU generator is MT19937; Python's ``random`` module is the same
MT19937 (in C), so we load it with the state torch would have and read raw 32-bit words.
What remains is torch's way of turning those words into normal floats:

* 16 or more float32 values: fill with uniforms, then Box-Muller in blocks of 16 (the first 8
  of a block are the radii's inputs, the last 8 the angles'). If the count is not a multiple
  of 16, the last 16 values are drawn again and transformed as one more block.
* fewer than 16 values: one double-precision Box-Muller draw per value, keeping the second
  result of each pair for the next call, exactly like ``at::normal_distribution<double>``.

torch does the 16-block transform in float32 (with SIMD ``log``/``cos``/``sin``); we round to
float32 at the same points, so results agree to within a couple of float32 ulps.
"""

from __future__ import annotations

import math
import random
import struct
from typing import Sequence

from .errors import SdlensError, as_typed

SEED_MAX = 2**64 - 1
_F24 = 2.0**-24
_F53 = 2.0**-53
_MASK24 = (1 << 24) - 1
_MASK53 = (1 << 53) - 1
_f32 = struct.Struct("f")


def _to_f32(x: float) -> float:
    return _f32.unpack(_f32.pack(x))[0]


def check_seed(seed) -> int:
    """A seed as torch accepts it for ``manual_seed``: an integer in 0 … 2**64-1."""
    typed = seed
    if isinstance(seed, bool) or not isinstance(seed, int):
        try:
            seed = int(str(seed).strip(), 10)
        except ValueError:
            raise SdlensError(f"seed must be a whole number, 0 or more, {as_typed(typed)}") from None
    if seed < 0:
        raise SdlensError(f"seed must be a whole number, 0 or more, {as_typed(typed)}")
    if seed > SEED_MAX:  # torch's limit, 2**64 - 1: twenty digits nobody reads, so not quoted
        raise SdlensError("seed must be a whole number, 0 or more, and this one is too large "
                          "(at most 2⁶⁴ − 1, about 18 billion billion)")
    return seed


class Generator:
    """A stream of torch-compatible random numbers; successive calls continue the stream,
    as one ``torch.Generator`` does across the pipeline's initial noise and ancestral steps."""

    def __init__(self, seed: int):
        self.seed = check_seed(seed)
        # torch's mt19937 keeps only the low 32 bits of the seed.
        state = [self.seed & 0xFFFFFFFF]
        for i in range(1, 624):
            prev = state[-1]
            state.append((1812433253 * (prev ^ (prev >> 30)) + i) & 0xFFFFFFFF)
        self._mt = random.Random()
        self._mt.setstate((3, tuple(state) + (624,), None))
        self._cached_normal: float | None = None

    def _word(self) -> int:
        return self._mt.getrandbits(32)

    def _uniform_f32(self) -> float:
        return (self._word() & _MASK24) * _F24

    def _uniform_f64(self) -> float:
        hi, lo = self._word(), self._word()
        return (((hi << 32) | lo) & _MASK53) * _F53

    def _normal_f64(self) -> float:
        if self._cached_normal is not None:
            value, self._cached_normal = self._cached_normal, None
            return value
        u1 = self._uniform_f64()
        u2 = self._uniform_f64()
        radius = math.sqrt(-2.0 * math.log1p(-u2))
        theta = 2.0 * math.pi * u1
        self._cached_normal = radius * math.sin(theta)
        return radius * math.cos(theta)

    def randn(self, shape: Sequence[int]) -> list[float]:
        """Standard normal float32 values for a tensor of ``shape``, flat and row-major."""
        size = math.prod(shape)
        if size < 16:
            return [_to_f32(self._normal_f64()) for _ in range(size)]
        data = [self._uniform_f32() for _ in range(size)]
        for start in range(0, size - 15, 16):
            _box_muller_16(data, start)
        if size % 16:
            start = size - 16
            for i in range(start, size):
                data[i] = self._uniform_f32()
            _box_muller_16(data, start)
        return data


def _box_muller_16(data: list[float], start: int) -> None:
    two_pi = _to_f32(2.0 * math.pi)  # torch broadcasts 2π as a float32 constant
    for j in range(start, start + 8):
        u1 = 1.0 - data[j]  # [0, 1) -> (0, 1] so the log is finite; exact in float32
        radius = _to_f32(math.sqrt(_to_f32(-2.0 * _to_f32(math.log(u1)))))
        theta = _to_f32(two_pi * data[j + 8])
        data[j] = _to_f32(radius * _to_f32(math.cos(theta)))
        data[j + 8] = _to_f32(radius * _to_f32(math.sin(theta)))


def randn(shape: Sequence[int], seed: int) -> list[float]:
    """``torch.randn(shape, generator=torch.Generator("cpu").manual_seed(seed))`` as a flat list."""
    return Generator(seed).randn(shape)
