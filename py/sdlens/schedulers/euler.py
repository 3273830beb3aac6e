"""Euler (Karras et al. 2022, "k-diffusion" sampler): diffusers' ``EulerDiscreteScheduler``.

The latent is kept at the scale ``x = x_0 + sigma·ε`` (the UNet sees it divided by
sqrt(sigma²+1)). One Euler step of the probability-flow ODE dx/dsigma = (x - x̂_0)/sigma:

    x̂_0     = x - sigma·ε                       (epsilon prediction)
    d       = (x - x̂_0) / sigma                  (= ε)
    x_next  = x + (sigma_next - sigma)·d

With sd-turbo's "trailing" spacing and 1 step, sigma_next = 0 and the single step lands on x̂_0.
"""

from __future__ import annotations

import math

from ..errors import SdlensError
from .base import Scheduler, StepResult, combine, f32, f32_list, np_interp, sigma_to_t


class _SigmaScheduler(Scheduler):
    """The Euler / LMS family: a decreasing list of sigmas, one per step plus a final one."""

    def __init__(self, config: dict | None = None):
        super().__init__(config)
        #: float32 sigmas of the run: sigmas[i] at step i, sigmas[n] after the last step
        self.sigmas: list[float] = []

    def _final_sigma(self) -> float:
        return 0.0

    def _set_timesteps(self, n: int) -> None:
        timesteps, sigmas = self._timesteps_and_sigmas(n)
        self.timesteps = timesteps
        self.sigmas = f32_list(sigmas + [self._final_sigma()])
        self._reset()

    def _timesteps_and_sigmas(self, n: int) -> tuple[list[float], list[float]]:
        """The float32 timesteps and the (float64) sigmas of the steps, before the final sigma."""
        timesteps = self._spaced_timesteps(n)
        sigmas = [np_interp(t, self.train_sigmas) for t in timesteps]
        if self.karras:
            # Karras spacing between the same end points; the UNet gets the fractional timestep
            # of each new sigma
            sigmas = self._karras_sigmas(sigmas[0], sigmas[-1], n)
            timesteps = f32_list(sigma_to_t(s, self.log_sigmas) for s in sigmas)
        return timesteps, sigmas

    def _reset(self) -> None:
        pass

    @property
    def init_noise_sigma(self) -> float:
        if not self.sigmas:
            raise RuntimeError("call set_timesteps before reading init_noise_sigma")
        top = max(self.sigmas)
        if self.timestep_spacing in ("linspace", "trailing"):
            return top
        return f32(math.sqrt(f32(f32(top * top) + 1.0)))

    def sigma(self, index: int) -> float:
        self._require_timesteps(index)
        return self.sigmas[index]

    def add_noise_coefficients(self) -> tuple[float, float]:
        """x_t = x_0 + sigma·ε: this family keeps the latent at that scale (diffusers' add_noise)."""
        return 1.0, self.sigmas[self.begin_index]

    def input_scale(self, index: int) -> float:
        sigma = self.sigma(index)
        return 1.0 / math.sqrt(sigma * sigma + 1.0)

    def _euler_step(self, model_output, index: int, sample, ops, sigma_to: float,
                    noise_terms=(), extra_coefficients=None) -> StepResult:
        """One Euler step of the ODE from sigma down to ``sigma_to``: x + (sigma_to - sigma)·d,
        with d = (x - x̂_0)/sigma, plus any ``noise_terms`` (coef, tensor) an ancestral step adds."""
        sigma, sigma_next = self.sigmas[index], self.sigmas[index + 1]
        # x̂_0 = a·x + b·model_output
        a, b = self._x0_coefficients(sigma)
        # derivative d = (x - x̂_0)/sigma, as a combination of (x, model_output)
        d_sample, d_model = (1.0 - a) / sigma, -b / sigma
        dt = sigma_to - sigma
        sample_coef, model_coef = 1.0 + dt * d_sample, dt * d_model

        pred_original = combine(ops, [(a, sample), (b, model_output)])
        prev_sample = combine(ops, [(sample_coef, sample), (model_coef, model_output), *noise_terms])
        coefficients = {
            "timestep": self.timesteps[index],
            "sigma": sigma,
            "sigma_next": sigma_next,
            **(extra_coefficients or {}),
            "dt": dt,
            "x0_sample_coef": a,
            "x0_model_coef": b,
            "derivative_sample_coef": d_sample,
            "derivative_model_coef": d_model,
            "sample_coef": sample_coef,
            "model_coef": model_coef,
        }
        return StepResult(prev_sample, pred_original, coefficients)


class EulerDiscreteScheduler(_SigmaScheduler):
    name = "euler"
    label = "Euler"
    summary = (
        "Euler follows the predicted denoising direction in a straight line from one noise level to the next."
    )
    defaults = {
        "interpolation_type": "linear",
        "use_karras_sigmas": False,
        "use_exponential_sigmas": False,
        "use_beta_sigmas": False,
        "timestep_type": "discrete",
        "final_sigmas_type": "zero",
        "sigma_min": None,
        "sigma_max": None,
    }
    unsupported_flags = ("use_exponential_sigmas", "use_beta_sigmas")
    supports_karras = True

    def __init__(self, config: dict | None = None):
        super().__init__(config)
        if self.config["interpolation_type"] != "linear":
            raise SdlensError(
                f"interpolation_type {self.config['interpolation_type']!r} is not supported by sdlens's "
                "Euler scheduler; expected 'linear'"
            )
        if self.config["timestep_type"] == "continuous" and self.prediction_type == "v_prediction":
            raise SdlensError("timestep_type 'continuous' is not supported by sdlens's Euler scheduler")
        if self.config["final_sigmas_type"] not in ("zero", "sigma_min"):
            raise SdlensError(
                f"final_sigmas_type {self.config['final_sigmas_type']!r} is not supported; "
                "expected 'zero' or 'sigma_min'"
            )

    def _final_sigma(self) -> float:
        if self.config["final_sigmas_type"] == "sigma_min":
            return self.train_sigmas[0]
        return 0.0

    def step(self, model_output, index: int, sample, ops, generator=None) -> StepResult:
        self._require_timesteps(index)
        return self._euler_step(model_output, index, sample, ops, sigma_to=self.sigmas[index + 1])
