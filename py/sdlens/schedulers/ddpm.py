"""DDPM (Ho et al. 2020), the original ancestral sampler: diffusers' ``DDPMScheduler``.

Each step predicts the clean latent x̂_0, takes the mean of the true posterior q(x_{t-1} | x_t, x̂_0)
and adds fresh noise of that posterior's size:

    x̂_0     = (x_t - sqrt(1-ᾱ_t)·ε) / sqrt(ᾱ_t)
    x_{t-1} = sqrt(ᾱ_prev)·β_t/(1-ᾱ_t) · x̂_0  +  sqrt(α_t)·(1-ᾱ_prev)/(1-ᾱ_t) · x_t  +  σ_t·z

with α_t = ᾱ_t/ᾱ_prev, β_t = 1 - α_t and σ_t² = (1-ᾱ_prev)/(1-ᾱ_t)·β_t ("fixed_small"). The noise z
is drawn from the run's generator at every step with t > 0, where diffusers draws it.
"""

from __future__ import annotations

import math
import random

from ..errors import SdlensError
from ..rng import Generator
from .base import Scheduler, StepResult, combine

VARIANCE_TYPES = ("fixed_small", "fixed_small_log", "fixed_large")


class DDPMScheduler(Scheduler):
    name = "ddpm"
    label = "DDPM"
    summary = (
        "DDPM, the original sampler (2020), moves to the average of where the image could have come from and adds fresh noise; it needs hundreds of steps."
    )
    defaults = {
        "timestep_spacing": "leading",
        "variance_type": "fixed_small",
        # diffusers' default is clip_sample=True, but clipping is not a linear combination and
        # Stable Diffusion configs set it to false; a config that asks for it is refused (as for DDIM).
        "clip_sample": False,
        "thresholding": False,
    }
    unsupported_flags = ("clip_sample", "thresholding")

    def __init__(self, config: dict | None = None):
        super().__init__(config)
        self.variance_type = str(self.config["variance_type"])
        if self.variance_type not in VARIANCE_TYPES:
            raise SdlensError(
                f"variance_type {self.variance_type!r} is not supported by sdlens's DDPM scheduler; "
                f"expected one of {', '.join(VARIANCE_TYPES)}"
            )
        self._int_timesteps: list[int] = []

    def _set_timesteps(self, n: int) -> None:
        self._int_timesteps = self._int_spaced_timesteps(n)
        self.timesteps = [float(t) for t in self._int_timesteps]

    def prev_timestep(self, index: int) -> int:
        """The next timestep of the run, -1 after the last (diffusers' ``previous_timestep``)."""
        return self._int_timesteps[index + 1] if index + 1 < len(self._int_timesteps) else -1

    def _alpha_prod(self, timestep: int) -> float:
        return self._alpha_prod_at(timestep, 1.0)

    def sigma(self, index: int) -> float:
        self._require_timesteps(index)
        a = self._alpha_prod(self._int_timesteps[index])
        return math.sqrt((1.0 - a) / a)

    def step(self, model_output, index: int, sample, ops, generator=None) -> StepResult:
        self._require_timesteps(index)
        t, prev_t = self._int_timesteps[index], self.prev_timestep(index)
        a_t, a_prev = self._alpha_prod(t), self._alpha_prod(prev_t)
        b_t, b_prev = 1.0 - a_t, 1.0 - a_prev
        alpha_t = a_t / a_prev
        beta_t = 1.0 - alpha_t
        x0 = self._x0_coefficients_alpha(a_t)
        x0_coef = math.sqrt(a_prev) * beta_t / b_t
        current_coef = math.sqrt(alpha_t) * b_prev / b_t
        sample_coef = x0_coef * x0[0] + current_coef
        model_coef = x0_coef * x0[1]

        noise_terms, noise_coef = [], 0.0
        if t > 0:
            if generator is None:  # diffusers falls back to torch's global generator
                generator = Generator(random.getrandbits(63))
            shape = tuple(model_output.shape)
            noise = ops.floats(generator.randn(shape), shape)
            variance = max(b_prev / b_t * beta_t, 1e-20)
            if self.variance_type == "fixed_small":
                noise_coef = math.sqrt(variance)
            elif self.variance_type == "fixed_small_log":
                noise_coef = math.exp(0.5 * math.log(variance))
            else:  # fixed_large
                noise_coef = math.sqrt(beta_t)
            noise_terms = [(noise_coef, noise)]

        pred_original = combine(ops, [(x0[0], sample), (x0[1], model_output)])
        prev_sample = combine(ops, [(sample_coef, sample), (model_coef, model_output), *noise_terms])
        coefficients = {
            "timestep": float(t),
            "prev_timestep": float(prev_t),
            "alpha_prod_t": a_t,
            "alpha_prod_t_prev": a_prev,
            "beta_t": beta_t,
            "sigma": math.sqrt(b_t / a_t),
            "x0_sample_coef": x0[0],
            "x0_model_coef": x0[1],
            "posterior_x0_coef": x0_coef,
            "posterior_sample_coef": current_coef,
            "sample_coef": sample_coef,
            "model_coef": model_coef,
            "noise_coef": noise_coef,
        }
        return StepResult(prev_sample, pred_original, coefficients)
