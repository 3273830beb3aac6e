"""PNDM (Liu et al. 2022, pseudo numerical methods): diffusers' ``PNDMScheduler``.

It is the scheduler Stable Diffusion 1.x ships with. Each step moves the latent along the
DDIM-style transfer (the paper's eq. 9), from timestep t to t - Δ,

    x_{t-Δ} = sqrt(ᾱ_{t-Δ}/ᾱ_t)·x_t - (ᾱ_{t-Δ} - ᾱ_t) / (ᾱ_t·sqrt(1-ᾱ_{t-Δ}) + sqrt(ᾱ_t(1-ᾱ_t)ᾱ_{t-Δ}))·ε'

but with a better noise estimate ε' than the UNet's latest ε: a linear multistep (Adams-Bashforth)
blend of the last predictions, (3ε₀ - ε₋₁)/2, (23ε₀ - 16ε₋₁ + 5ε₋₂)/12, then
(55ε₀ - 59ε₋₁ + 37ε₋₂ - 9ε₋₃)/24 ("PLMS").

The first step has no earlier predictions, so it warms up:
* with ``skip_prk_steps`` (SD's config): the first step is taken with ε₀, the UNet is called again
  where it lands, and the first step is redone with (ε₀ + ε₁)/2 -- two UNet calls;
* without (diffusers' default): the first three steps are Runge-Kutta steps, four UNet calls each.

As in diffusers, ``timesteps`` lists every UNet call; ``call(index)`` says which step it belongs to.
"""

from __future__ import annotations

import math

from ..errors import SdlensError
from .base import Call, Scheduler, StepResult, as_bool, combine

#: the Adams-Bashforth weights of the newest, previous, … noise predictions
PLMS_WEIGHTS = {
    1: (1.0,),
    2: (3 / 2, -1 / 2),
    3: (23 / 12, -16 / 12, 5 / 12),
    4: (55 / 24, -59 / 24, 37 / 24, -9 / 24),
}
PNDM_ORDER = 4


class PNDMScheduler(Scheduler):
    name = "pndm"
    label = "PNDM"
    summary = (
        "PNDM, what Stable Diffusion 1.x ships with, takes DDIM-like steps whose noise estimate blends the last four predictions; its first step calls the UNet twice to warm up."
    )
    defaults = {
        "timestep_spacing": "leading",
        "skip_prk_steps": False,
        "set_alpha_to_one": False,
    }
    prediction_types = ("epsilon", "v_prediction")  # diffusers does not implement "sample"

    def __init__(self, config: dict | None = None):
        super().__init__(config)
        self.skip_prk_steps = as_bool(self.config["skip_prk_steps"])
        self.final_alpha_cumprod = 1.0 if as_bool(self.config["set_alpha_to_one"]) else self.alphas_cumprod[0]
        self.prk_timesteps: list[int] = []
        self._int_timesteps: list[int] = []
        self._reset()

    def _reset(self) -> None:
        self.ets: list = []  # the UNet's noise predictions the multistep formula blends, oldest first
        self.cur_sample = None  # the latent a warm-up step started from
        self.cur_model_output: list = []  # Runge-Kutta: the weighted predictions so far, as (coef, tensor)
        self.counter = 0

    @property
    def _ratio(self) -> int:
        return self.num_train_timesteps // self.num_inference_steps

    def _set_timesteps(self, n: int) -> None:
        ascending = self._int_spaced_timesteps(n)[::-1]
        if self.skip_prk_steps:
            self.prk_timesteps = []
            plms = (ascending[:-1] + ascending[-2:-1] + ascending[-1:])[::-1]
        else:
            if n < PNDM_ORDER:
                raise SdlensError(
                    f"PNDM with its Runge-Kutta warm-up (skip_prk_steps false) needs at least {PNDM_ORDER} steps, "
                    f"got {n}; diffusers cannot run fewer either"
                )
            half = self._ratio // 2
            prk = [t + offset for t in ascending[-PNDM_ORDER:] for offset in (0, half)]
            self.prk_timesteps = [t for t in prk[:-1] for _ in (0, 1)][1:-1][::-1]
            plms = ascending[:-3][::-1]
        self._int_timesteps = self.prk_timesteps + plms
        self.timesteps = [float(t) for t in self._int_timesteps]
        self._reset()

    def call(self, index: int) -> Call:
        self._require_timesteps(index)
        prk = len(self.prk_timesteps)
        # The warm-up is counted from the run's first call: diffusers' PNDM counts its calls, so a
        # run from a picture (begin_index > 0) warms up again at its own first step.
        count, first = index - self.begin_index, self.begin_index
        last = self.num_inference_steps - 1
        if count < prk:
            return Call(min(first + count // 4, last), count % 4, 4,
                        f"Runge-Kutta warm-up, UNet call {count % 4 + 1} of 4: the first three steps have no earlier "
                        "predictions to blend, so each looks at the noise four times (start, two midpoints, end)")
        if self.skip_prk_steps and len(self.timesteps) - first > 1 and count < 2:
            if count == 0:
                return Call(first, 0, 2, "warm-up, UNet call 1 of 2: there are no earlier predictions to blend yet, "
                                         "so this is a trial step with this one prediction")
            return Call(first, 1, 2, "warm-up, UNet call 2 of 2: the UNet at the trial point; the first step is "
                                     "redone from its start with the average of both predictions")
        step = first + prk // 4 + count - prk - (1 if self.skip_prk_steps and count >= 2 else 0)
        return Call(min(step, last), 0, 1)

    def sigma(self, index: int) -> float:
        self._require_timesteps(index)
        a = self._alpha_prod(self._int_timesteps[index])
        return math.sqrt((1.0 - a) / a)

    def _alpha_prod(self, timestep: int) -> float:
        return self._alpha_prod_at(timestep, self.final_alpha_cumprod)

    def step(self, model_output, index: int, sample, ops, generator=None) -> StepResult:
        self._require_timesteps(index)
        if index != self.begin_index + self.counter:
            raise RuntimeError(
                f"PNDM keeps a history: calls must run in order (expected {self.begin_index + self.counter}, got {index})"
            )
        x0 = self._x0(model_output, index, sample, ops)
        # diffusers decides by its call counter, not the timestep: a run from a picture warms up too
        if self.counter < len(self.prk_timesteps):
            start, t, prev_t, eps_terms = self._prk(model_output, index, sample)
        else:
            start, t, prev_t, eps_terms = self._plms(model_output, index, sample)
        self.counter += 1
        return self._transfer(start, t, prev_t, eps_terms, x0, index, ops)

    def _prk(self, model_output, index, sample):
        # diffusers' step_prk: timesteps t, t-Δ/2, t-Δ/2, t-Δ; the fourth call uses the RK4 blend
        diff_to_prev = 0 if self.counter % 2 else self._ratio // 2
        prev_t = self._int_timesteps[index] - diff_to_prev
        t = self.prk_timesteps[self.counter // 4 * 4]
        part = self.counter % 4
        eps_terms = [(1.0, model_output)]
        if part == 0:
            self.cur_model_output = [(1 / 6, model_output)]
            self.ets.append(model_output)
            self.cur_sample = sample
        elif part in (1, 2):
            self.cur_model_output.append((1 / 3, model_output))
        else:
            eps_terms = self.cur_model_output + [(1 / 6, model_output)]
            self.cur_model_output = []
        return self.cur_sample if self.cur_sample is not None else sample, t, prev_t, eps_terms

    def _plms(self, model_output, index, sample):
        t = self._int_timesteps[index]
        prev_t = t - self._ratio
        if self.counter != 1:
            self.ets = self.ets[-3:] + [model_output]
        else:  # the warm-up's second call redoes the first step: from t + Δ to t
            prev_t, t = t, t + self._ratio
        if len(self.ets) == 1 and self.counter == 0:
            self.cur_sample = sample
            return sample, t, prev_t, [(1.0, model_output)]
        if len(self.ets) == 1 and self.counter == 1:
            start, self.cur_sample = self.cur_sample, None
            return start, t, prev_t, [(0.5, model_output), (0.5, self.ets[-1])]
        weights = PLMS_WEIGHTS[len(self.ets)]
        return sample, t, prev_t, list(zip(weights, reversed(self.ets)))

    def _transfer(self, start, t, prev_t, eps_terms, x0, index, ops) -> StepResult:
        """x_{t-Δ} from ``start`` at t and the noise estimate Σ c·ε (diffusers' _get_prev_sample)."""
        a_t, a_prev = self._alpha_prod(t), self._alpha_prod(prev_t)
        b_t, b_prev = 1.0 - a_t, 1.0 - a_prev
        sample_coef = math.sqrt(a_prev / a_t)
        denominator = a_t * math.sqrt(b_prev) + math.sqrt(a_t * b_t * a_prev)
        model_coef = -(a_prev - a_t) / denominator  # the weight of ε' in x_{t-Δ}
        start_coef, eps_scale = sample_coef, 1.0
        if self.prediction_type == "v_prediction":  # ε' = sqrt(ᾱ_t)·v' + sqrt(1-ᾱ_t)·x_t
            start_coef += model_coef * math.sqrt(b_t)
            eps_scale = math.sqrt(a_t)
        terms = [(start_coef, start)] + [(model_coef * eps_scale * c, e) for c, e in eps_terms]
        prev_sample = combine(ops, terms)
        coefficients = {
            "timestep": float(self._int_timesteps[index]),
            "from_timestep": float(t),
            "prev_timestep": float(prev_t),
            "alpha_prod_t": a_t,
            "alpha_prod_t_prev": a_prev,
            "sigma": self.sigma(index),  # at this call's timestep
            "from_sigma": math.sqrt(b_t / a_t),  # the step goes from from_timestep to prev_timestep
            "sigma_prev": math.sqrt(b_prev / a_prev),
            "eps_count": len(eps_terms),
            "x0_sample_coef": self._x0_weights(index)[0],
            "x0_model_coef": self._x0_weights(index)[1],
            "sample_coef": start_coef,
            "model_coef": model_coef * eps_scale,
        }
        for j, (c, _) in enumerate(eps_terms):
            coefficients[f"eps_coef_{j}"] = c
        return StepResult(prev_sample, x0, coefficients)

    def _x0_weights(self, index: int) -> tuple[float, float]:
        """x̂_0 = a·x_t + b·model_output at this call's timestep (the DDIM formula). diffusers'
        PNDM does not return x̂_0; the explainer shows it."""
        a_t = self._alpha_prod(self._int_timesteps[index])
        sa, sb = math.sqrt(a_t), math.sqrt(1.0 - a_t)
        if self.prediction_type == "v_prediction":
            return sa, -sb
        return 1.0 / sa, -sb / sa

    def _x0(self, model_output, index, sample, ops):
        a, b = self._x0_weights(index)
        return combine(ops, [(a, sample), (b, model_output)])
