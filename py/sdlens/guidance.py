"""Classifier-free guidance: steer the noise prediction towards the prompt.

The UNet predicts the noise twice per step: once without the prompt (ε_uncond, from the empty or
negative prompt) and once with it (ε_cond). Their difference is what the prompt adds; guidance
scales it up:   ε = ε_uncond + g · (ε_cond − ε_uncond)

As in diffusers, g ≤ 1 switches guidance off: the unconditional pass is skipped and ε = ε_cond,
so g = 0 and g = 1 give the same image. `formula_below_one` (off by default, so the default stays
equal to diffusers) uses the formula at every g instead: g = 0 then gives ε = ε_uncond and ignores
the prompt, as the formula says. At g = 1 both give ε_cond, with one pass.
Both passes go through the UNet as one batch of two, uncond first.
"""

from __future__ import annotations

import math

from .errors import SdlensError, as_typed

GUIDANCE_RULE = "guidance must be a number, 0 or more (7.5 is usual)"


def check_guidance(scale) -> float:
    """A guidance scale as a float ≥ 0 (also from text such as "7.5"), or SdlensError."""
    try:
        value = float(scale)
    except (TypeError, ValueError):
        value = math.nan
    if not math.isfinite(value) or value < 0:  # "nan" and "inf" are numbers only to Python
        raise SdlensError(f"{GUIDANCE_RULE}, {as_typed(scale)}")
    return value


def uses_guidance(scale: float, formula_below_one: bool = False) -> bool:
    """Whether a step runs the unconditional pass and the formula."""
    return scale > 1.0 or (formula_below_one and scale != 1.0)


def check_flag(value, name: str) -> bool:
    """A yes/no setting from a command line, a form or a link: True/False, "1"/"0", "true"/"false", ""."""
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("", "0", "false", "no", "off"):
        return False
    raise SdlensError(f"{name} must be true or false, {as_typed(value)}")


def guide(ops, eps_uncond, eps_cond, g: float):
    """ε_uncond + g·(ε_cond − ε_uncond), g the guidance scale: one linear combination (formula.py)."""
    return eps_uncond + g * (eps_cond - eps_uncond)
