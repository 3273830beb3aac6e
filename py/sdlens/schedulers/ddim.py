"""DDIM (Song et al. 2020), deterministic (eta = 0): diffusers' ``DDIMScheduler``.

Each step predicts the clean latent and then re-noises it to the previous noise level along
the same predicted noise direction:

    x̂_0     = (x_t - sqrt(1-ᾱ_t)·ε) / sqrt(ᾱ_t)
    x_{t-1} = sqrt(ᾱ_prev)·x̂_0 + sqrt(1-ᾱ_prev)·ε

which is one linear combination ``x_{t-1} = sample_coef·x_t + model_coef·ε``.
"""

from __future__ import annotations

import math

from .base import Scheduler, StepResult, as_bool, combine, np_arange_down, np_linspace, np_round


class DDIMScheduler(Scheduler):
    name = "ddim"
    label = "DDIM"
    summary = (
        "DDIM predicts the clean image, then adds back just enough of the same predicted noise to land on the next, lower noise level: no new randomness after the start."
    )
    defaults = {
        "timestep_spacing": "leading",
        "set_alpha_to_one": True,
        # diffusers' default is clip_sample=True, but clipping is not a linear combination and
        # every Stable Diffusion config sets it to false; a config that asks for it is refused.
        "clip_sample": False,
        "thresholding": False,
    }
    unsupported_flags = ("clip_sample", "thresholding")

    def __init__(self, config: dict | None = None):
        super().__init__(config)
        #: ᾱ used after the last step (diffusers' final_alpha_cumprod)
        self.final_alpha_cumprod = 1.0 if as_bool(self.config["set_alpha_to_one"]) else self.alphas_cumprod[0]
        self._int_timesteps: list[int] = []

    def _set_timesteps(self, n: int) -> None:
        train = self.num_train_timesteps
        if self.timestep_spacing == "linspace":
            values = [np_round(v) for v in np_linspace(0, train - 1, n)][::-1]
        elif self.timestep_spacing == "leading":
            ratio = train // n
            values = [i * ratio + self.steps_offset for i in range(n)][::-1]
        else:  # trailing
            values = [np_round(v) - 1 for v in np_arange_down(train, train / n, n)]
        self._int_timesteps = values
        self.timesteps = [float(t) for t in values]

    def _alpha_prod(self, timestep: int) -> float:
        # diffusers indexes alphas_cumprod[timestep]; a negative "previous" timestep means
        # "past the end of the chain". Clamp the one out-of-range case (leading spacing with
        # steps_offset at 1000 steps) to the last entry, as the Euler schedulers' interp does.
        if timestep < 0:
            return self.final_alpha_cumprod
        return self.alphas_cumprod[min(timestep, self.num_train_timesteps - 1)]

    def prev_timestep(self, index: int) -> int:
        """diffusers' ``timestep - num_train_timesteps // num_inference_steps`` (for every spacing)."""
        return self._int_timesteps[index] - self.num_train_timesteps // self.num_inference_steps

    def sigma(self, index: int) -> float:
        self._require_timesteps(index)
        a = self._alpha_prod(self._int_timesteps[index])
        return math.sqrt((1.0 - a) / a)

    def step(self, model_output, index: int, sample, ops, generator=None) -> StepResult:
        self._require_timesteps(index)
        t = self._int_timesteps[index]
        prev_t = self.prev_timestep(index)
        a_t = self._alpha_prod(t)
        a_prev = self._alpha_prod(prev_t)
        b_t = 1.0 - a_t
        sa, sb = math.sqrt(a_t), math.sqrt(b_t)

        # x̂_0 and ε̂ as combinations of (sample, model_output)
        if self.prediction_type == "epsilon":
            x0 = (1.0 / sa, -sb / sa)
            eps = (0.0, 1.0)
        elif self.prediction_type == "v_prediction":
            x0 = (sa, -sb)
            eps = (sb, sa)
        else:  # "sample"
            x0 = (0.0, 1.0)
            eps = (1.0 / sb, -sa / sb)

        # x_{t-1} = sqrt(ᾱ_prev)·x̂_0 + sqrt(1-ᾱ_prev)·ε̂   (eta = 0: no added noise)
        c_x0, c_eps = math.sqrt(a_prev), math.sqrt(1.0 - a_prev)
        prev = (c_x0 * x0[0] + c_eps * eps[0], c_x0 * x0[1] + c_eps * eps[1])

        pred_original = combine(ops, [(x0[0], sample), (x0[1], model_output)])
        prev_sample = combine(ops, [(prev[0], sample), (prev[1], model_output)])
        coefficients = {
            "timestep": float(t),
            "prev_timestep": float(prev_t),
            "alpha_prod_t": a_t,
            "alpha_prod_t_prev": a_prev,
            "beta_prod_t": b_t,
            "sigma": math.sqrt(b_t / a_t),
            "sigma_prev": math.sqrt((1.0 - a_prev) / a_prev),
            "x0_sample_coef": x0[0],
            "x0_model_coef": x0[1],
            "eps_sample_coef": eps[0],
            "eps_model_coef": eps[1],
            "sample_coef": prev[0],
            "model_coef": prev[1],
        }
        return StepResult(prev_sample, pred_original, coefficients)

