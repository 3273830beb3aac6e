"""Heun (Karras et al. 2022, Algorithm 1): diffusers' ``HeunDiscreteScheduler``.

Euler follows the slope d = (x - x̂_0)/sigma at the start of a step. Heun also looks at the
slope where that Euler step lands, and then takes the step again with the average of the two
slopes (the trapezoidal rule, second order). So every step but the last calls the UNet twice:

    call 1 (at sigma):       d₁ = (x - x̂_0)/sigma,                 x̃ = x + (sigma_next - sigma)·d₁
    call 2 (at sigma_next):  d₂ = (x̃ - x̃̂_0)/sigma_next,           x_next = x + (sigma_next - sigma)·(d₁ + d₂)/2

The last step lands on sigma = 0, where a second slope cannot be taken: it is a plain Euler step.
As in diffusers, ``timesteps`` lists every UNet call (2·steps - 1 of them), each sigma but the
first and last twice; ``call(index)`` says which step a call belongs to.
"""

from __future__ import annotations

from .base import Call, StepResult, combine, f32_list
from .euler import _SigmaScheduler


class HeunDiscreteScheduler(_SigmaScheduler):
    name = "heun"
    label = "Heun"
    summary = (
        "Heun takes a trial Euler step, asks the UNet again where it lands, and redoes the step with the average of both slopes: more accurate, but two UNet calls per step."
    )
    defaults = {
        "beta_start": 0.00085,  # diffusers' Heun has SD's range as its defaults
        "beta_end": 0.012,
        "use_karras_sigmas": False,
        "use_exponential_sigmas": False,
        "use_beta_sigmas": False,
        "clip_sample": False,
    }
    unsupported_flags = ("use_exponential_sigmas", "use_beta_sigmas", "clip_sample")
    supports_karras = True
    order = 2

    def _set_timesteps(self, n: int) -> None:
        timesteps, sigmas = self._timesteps_and_sigmas(n)
        per_step = f32_list(sigmas + [0.0])
        # every sigma between the first and the last twice: once as a step's target, once as the
        # point where the second slope is taken
        self.sigmas = [per_step[0]] + [s for s in per_step[1:-1] for _ in (0, 1)] + [per_step[-1]]
        self.timesteps = [timesteps[0]] + [t for t in timesteps[1:] for _ in (0, 1)]
        self._first = None  # (x at the step's start, its slope as (coef_x, coef_eps, eps), dt)
        self._next_index = 0

    def call(self, index: int) -> Call:
        self._require_timesteps(index)
        step, part = index // 2, index % 2
        if index == len(self.timesteps) - 1:
            return Call(step, 0, 1, "the last step lands on σ = 0, where there is no second slope to take: "
                                    "one UNet call, a plain Euler step")
        if part == 0:
            return Call(step, 0, 2, "UNet call 1 of 2: the slope at σ, and a trial Euler step to σ_next")
        return Call(step, 1, 2, "UNet call 2 of 2: the slope at the trial point; the step is redone from its "
                                "start with the average of both slopes (Heun's method)")

    def step(self, model_output, index: int, sample, ops, generator=None) -> StepResult:
        self._require_timesteps(index)
        if index != self._next_index:
            raise RuntimeError(
                f"Heun keeps the first half of a step: calls must run in order (expected {self._next_index}, got {index})"
            )
        self._next_index = index + 1
        first_order = index % 2 == 0
        if first_order:
            sigma, sigma_next = self.sigmas[index], self.sigmas[index + 1]
            sigma_input = sigma
        else:
            sigma, sigma_next = self.sigmas[index - 1], self.sigmas[index]
            sigma_input = sigma_next
        # x̂_0 = a·x + b·model_output, and the slope d = (x - x̂_0)/sigma_input (sigma_hat = sigma)
        a, b = self._x0_coefficients(sigma_input)
        d_sample, d_model = (1.0 - a) / sigma_input, -b / sigma_input
        pred_original = combine(ops, [(a, sample), (b, model_output)])
        coefficients = {
            "timestep": self.timesteps[index],
            "sigma": sigma_input,  # where this UNet call looks
            "step_sigma": sigma,  # the step goes from step_sigma to sigma_next
            "sigma_next": sigma_next,
            "order": 1 if first_order else 2,
            "x0_sample_coef": a,
            "x0_model_coef": b,
            "derivative_sample_coef": d_sample,
            "derivative_model_coef": d_model,
        }
        if first_order:
            dt = sigma_next - sigma
            sample_coef, model_coef = 1.0 + dt * d_sample, dt * d_model
            prev_sample = combine(ops, [(sample_coef, sample), (model_coef, model_output)])
            self._first = (sample, model_output, d_sample, d_model, dt)
            coefficients.update(dt=dt, sample_coef=sample_coef, model_coef=model_coef)
            return StepResult(prev_sample, pred_original, coefficients)

        # x_next = x_start + dt·(d₁ + d₂)/2, with d₁ from the first call and d₂ from this one
        start, start_model, d1_sample, d1_model, dt = self._first
        self._first = None
        half = dt / 2
        weights = {
            "start_sample_coef": 1.0 + half * d1_sample,
            "start_model_coef": half * d1_model,
            "sample_coef": half * d_sample,
            "model_coef": half * d_model,
        }
        prev_sample = combine(ops, [
            (weights["start_sample_coef"], start), (weights["start_model_coef"], start_model),
            (weights["sample_coef"], sample), (weights["model_coef"], model_output),
        ])
        coefficients.update(dt=dt, **weights)
        return StepResult(prev_sample, pred_original, coefficients)

    def _reset(self) -> None:
        self._first = None
        self._next_index = 0

