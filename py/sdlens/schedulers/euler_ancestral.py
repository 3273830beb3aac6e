"""Euler ancestral ("Euler a"): diffusers' ``EulerAncestralDiscreteScheduler``.

Like Euler, but each step goes down further than the next noise level, to sigma_down, and
then adds fresh noise of size sigma_up so that the latent lands on sigma_next again
(sigma_down² + sigma_up² = sigma_next²):

    sigma_up   = sqrt(sigma_next² · (sigma² - sigma_next²) / sigma²)
    sigma_down = sqrt(sigma_next² - sigma_up²)
    x_next     = x + (sigma_down - sigma)·d + sigma_up·z,   z ~ N(0, I) from the run's generator

The noise z is drawn at every step (also the last, where sigma_up = 0), exactly where diffusers
draws it, so the same seed gives the same image.
"""

from __future__ import annotations

import math
import random

from ..rng import Generator
from .base import StepResult
from .euler import _SigmaScheduler


class EulerAncestralDiscreteScheduler(_SigmaScheduler):
    name = "euler_a"
    label = "Euler a"
    summary = (
        "Euler a (ancestral) steps below the next noise level and adds fresh random noise back, so the picture keeps changing a little at every step."
    )
    prediction_types = ("epsilon", "v_prediction")  # diffusers does not implement "sample"

    def step(self, model_output, index: int, sample, ops, generator=None) -> StepResult:
        self._require_timesteps(index)
        sigma, sigma_next = self.sigmas[index], self.sigmas[index + 1]
        sigma_up = math.sqrt(sigma_next**2 * (sigma**2 - sigma_next**2) / sigma**2)
        sigma_down = math.sqrt(max(sigma_next**2 - sigma_up**2, 0.0))

        if generator is None:  # diffusers falls back to torch's global generator
            generator = Generator(random.getrandbits(63))
        shape = tuple(model_output.shape)
        noise = ops.floats(generator.randn(shape), shape)

        return self._euler_step(
            model_output, index, sample, ops, sigma_to=sigma_down,
            noise_terms=[(sigma_up, noise)],
            extra_coefficients={"sigma_up": sigma_up, "sigma_down": sigma_down, "noise_coef": sigma_up},
        )
