"""LCM, latent consistency models (Luo et al. 2023): diffusers' ``LCMScheduler``.

A consistency model is trained to jump from any noise level straight to the clean latent. So each
step makes the jump, and then, except on the last step, noises the result again to the next
(lower) noise level and jumps from there:

    x̂_0      = (x_t - sqrt(1-ᾱ_t)·ε) / sqrt(ᾱ_t)
    denoised = c_out·x̂_0 + c_skip·x_t           (the consistency "boundary condition")
    x_next   = sqrt(ᾱ_next)·denoised + sqrt(1-ᾱ_next)·z,   z ~ N(0, I)

with c_skip = σ_d²/((10t)² + σ_d²), c_out = 10t/sqrt((10t)² + σ_d²), σ_d = 0.5. Its timesteps are
picked from the grid the model was distilled on (``original_inference_steps`` of them, 50 by
default), which is also the most steps it allows. It is meant for LCM-distilled models; on other
models it runs (as in diffusers) but gives poor images.
"""

from __future__ import annotations

import math
import random

from ..errors import SdlensError
from ..rng import Generator
from .base import Scheduler, StepResult, as_bool, check_steps, combine

SIGMA_DATA = 0.5


class LCMScheduler(Scheduler):
    name = "lcm"
    label = "LCM"
    summary = (
        "LCM is for latent-consistency models, which jump straight to a clean image at every step and re-noise it for the next: 2 to 8 steps."
    )
    defaults = {
        "beta_start": 0.00085,
        "beta_end": 0.012,
        "beta_schedule": "scaled_linear",
        "original_inference_steps": 50,
        "set_alpha_to_one": True,
        "timestep_spacing": "leading",
        "timestep_scaling": 10.0,
        "clip_sample": False,
        "thresholding": False,
    }
    unsupported_flags = ("clip_sample", "thresholding")

    def __init__(self, config: dict | None = None):
        super().__init__(config)
        self.final_alpha_cumprod = 1.0 if as_bool(self.config["set_alpha_to_one"]) else self.alphas_cumprod[0]
        try:
            self.original_steps = int(self.config["original_inference_steps"])
            self.timestep_scaling = float(self.config["timestep_scaling"])
        except (TypeError, ValueError):
            raise SdlensError("original_inference_steps and timestep_scaling in the scheduler config must be numbers") from None
        if not 1 <= self.original_steps <= self.num_train_timesteps:
            raise SdlensError(
                f"original_inference_steps ({self.original_steps}) must be from 1 to num_train_timesteps "
                f"({self.num_train_timesteps})"
            )
        self._int_timesteps: list[int] = []

    @property
    def max_steps(self) -> int:
        return min(super().max_steps, self.original_steps)

    def check_steps(self, num_inference_steps) -> int:
        n = check_steps(num_inference_steps, super().max_steps)
        if n > self.original_steps:
            raise SdlensError(
                f"LCM allows at most {self.original_steps} steps (the timesteps it was distilled on, "
                f"original_inference_steps), got {n}; LCM models are made for 2 to 8 steps"
            )
        return n

    def _set_timesteps(self, n: int) -> None:
        k = self.num_train_timesteps // self.original_steps
        origin = [i * k - 1 for i in range(1, self.original_steps + 1)][::-1]
        # n indices spread evenly over the grid (numpy.linspace without its end point, floored)
        spacing = len(origin) / n
        indices = [math.floor(i * spacing) for i in range(n)]
        self._int_timesteps = [origin[i] for i in indices]
        self.timesteps = [float(t) for t in self._int_timesteps]

    def _alpha_prod(self, timestep: int) -> float:
        return self._alpha_prod_at(timestep, self.final_alpha_cumprod)

    def sigma(self, index: int) -> float:
        self._require_timesteps(index)
        a = self._alpha_prod(self._int_timesteps[index])
        return math.sqrt((1.0 - a) / a)

    def boundary_scalings(self, timestep: int) -> tuple[float, float]:
        """(c_skip, c_out) of the consistency parametrisation at ``timestep``."""
        scaled = timestep * self.timestep_scaling
        c_skip = SIGMA_DATA**2 / (scaled**2 + SIGMA_DATA**2)
        c_out = scaled / math.sqrt(scaled**2 + SIGMA_DATA**2)
        return c_skip, c_out

    def step(self, model_output, index: int, sample, ops, generator=None) -> StepResult:
        self._require_timesteps(index)
        t = self._int_timesteps[index]
        last = index == len(self._int_timesteps) - 1
        prev_t = t if last else self._int_timesteps[index + 1]
        a_t, a_prev = self._alpha_prod(t), self._alpha_prod(prev_t)
        x0 = self._x0_coefficients_alpha(a_t)
        c_skip, c_out = self.boundary_scalings(t)
        # denoised = c_out·x̂_0 + c_skip·x_t
        denoised_coefs = (c_out * x0[0] + c_skip, c_out * x0[1])
        denoised = combine(ops, [(denoised_coefs[0], sample), (denoised_coefs[1], model_output)])

        coefficients = {
            "timestep": float(t),
            "prev_timestep": float(prev_t),
            "alpha_prod_t": a_t,
            "alpha_prod_t_prev": a_prev,
            "sigma": math.sqrt(1.0 - a_t) / math.sqrt(a_t),
            "c_skip": c_skip,
            "c_out": c_out,
            "x0_sample_coef": denoised_coefs[0],
            "x0_model_coef": denoised_coefs[1],
        }
        if last:
            coefficients.update(denoised_coef=1.0, noise_coef=0.0)
            return StepResult(denoised, denoised, coefficients)
        if generator is None:  # diffusers falls back to torch's global generator
            generator = Generator(random.getrandbits(63))
        shape = tuple(model_output.shape)
        noise = ops.floats(generator.randn(shape), shape)
        denoised_coef, noise_coef = math.sqrt(a_prev), math.sqrt(1.0 - a_prev)
        prev_sample = combine(ops, [(denoised_coef, denoised), (noise_coef, noise)])
        coefficients.update(denoised_coef=denoised_coef, noise_coef=noise_coef)
        return StepResult(prev_sample, denoised, coefficients)
