"""Classifier-free guidance: steer the noise prediction towards the prompt.

The UNet predicts the noise twice per step: once without the prompt (ε_uncond, from the empty or
negative prompt) and once with it (ε_cond). Their difference is what the prompt adds; guidance
scales it up:   ε = ε_uncond + g · (ε_cond − ε_uncond)

As in diffusers, g ≤ 1 switches guidance off: the unconditional pass is skipped and ε = ε_cond.
Both passes go through the UNet as one batch of two, uncond first.
"""

from __future__ import annotations

import math

from .errors import SdlensError


def check_guidance(scale) -> float:
    try:
        value = float(scale)
    except (TypeError, ValueError):
        raise SdlensError(f"guidance must be a number, got {scale!r}") from None
    if not math.isfinite(value) or value < 0:
        raise SdlensError(f"guidance must be a finite number ≥ 0, got {scale}")
    return value


def uses_guidance(scale: float) -> bool:
    return scale > 1.0


def guide(ops, eps_uncond, eps_cond, scale: float):
    """ε_uncond + g·(ε_cond − ε_uncond), written as one linear combination for the runtime."""
    return ops.combine([(1.0 - scale, eps_uncond), (scale, eps_cond)])
