"""DPM-Solver++ multistep (Lu et al. 2022): diffusers' ``DPMSolverMultistepScheduler``.

Defaults as diffusers': algorithm_type "dpmsolver++", solver_order 2, solver_type "midpoint",
lower_order_final True, final_sigmas_type "zero". It works with the data prediction
x̂_0 (diffusers' ``convert_model_output``) and the log signal-to-noise ratio
lambda = log(alpha_t / sigma_t) = -log(sigma). With h = lambda_next - lambda:

    first order:   x_next = (sigma_t/sigma_s)·x - alpha_t·(e^{-h} - 1)·x̂_0
    second order:  adds a correction from the previous step's x̂_0 (the "2M" history):
                   D1 = (x̂_0 - x̂_0,prev) / r0,  r0 = h_prev / h,
                   x_next = (sigma_t/sigma_s)·x - alpha_t·(e^{-h}-1)·(x̂_0 + D1/2)   (midpoint)

Here alpha_t = 1/sqrt(sigma²+1) and sigma_t = sigma·alpha_t are the VP-scale signal and noise
levels (the latent itself is not rescaled: init_noise_sigma = 1). Each update is written as
one combination ``x_next = sample_coef·x + x0_coef·x̂_0 + x0_prev_coef·x̂_0,prev (+ …)``.
"""

from __future__ import annotations

import math

from ..errors import SdlensError
from .base import (
    Scheduler,
    StepResult,
    as_bool,
    check_multistep,
    combine,
    f32,
    f32_list,
    np_arange_down,
    np_interp,
    np_linspace,
    np_round,
    sigma_to_t,
)


class DPMSolverMultistepScheduler(Scheduler):
    name = "dpmpp_2m"
    label = "DPM++ 2M"
    summary = (
        "DPM++ 2M is a second-order solver that also uses the previous step's clean-image guess, so 20 to 30 steps give a good image."
    )
    defaults = {
        "solver_order": 2,
        "thresholding": False,
        "algorithm_type": "dpmsolver++",
        "solver_type": "midpoint",
        "lower_order_final": True,
        "euler_at_final": False,
        "use_karras_sigmas": False,
        "use_exponential_sigmas": False,
        "use_beta_sigmas": False,
        "use_lu_lambdas": False,
        "use_flow_sigmas": False,
        "use_dynamic_shifting": False,
        "final_sigmas_type": "zero",
        "lambda_min_clipped": -math.inf,
        "variance_type": None,
    }
    unsupported_flags = (
        "thresholding",
        "use_exponential_sigmas",
        "use_beta_sigmas",
        "use_lu_lambdas",
        "use_flow_sigmas",
        "use_dynamic_shifting",
    )
    supports_karras = True

    def __init__(self, config: dict | None = None):
        super().__init__(config)
        cfg = self.config
        algorithm = cfg["algorithm_type"]
        if algorithm == "deis":  # diffusers maps it to dpmsolver++ as well
            algorithm = "dpmsolver++"
        if algorithm != "dpmsolver++":
            raise SdlensError(
                f"algorithm_type {algorithm!r} is not supported by sdlens's DPM-Solver scheduler; expected 'dpmsolver++'"
            )
        solver_type = cfg["solver_type"]
        if solver_type in ("logrho", "bh1", "bh2"):  # diffusers maps these to midpoint
            solver_type = "midpoint"
        if solver_type not in ("midpoint", "heun"):
            raise SdlensError(f"solver_type {solver_type!r} is not supported; expected 'midpoint' or 'heun'")
        self.solver_type = solver_type
        self.solver_order = check_multistep(cfg)
        if cfg["variance_type"] in ("learned", "learned_range"):
            raise SdlensError("variance_type 'learned' models are not supported by sdlens")
        self.lower_order_final = as_bool(cfg["lower_order_final"])
        self.euler_at_final = as_bool(cfg["euler_at_final"])
        self.sigmas: list[float] = []
        self.model_outputs: list = []  # x̂_0 of the last solver_order steps, oldest first
        self.lower_order_nums = 0
        self._next_index = 0

    # ---- timesteps ------------------------------------------------------------------------

    def _last_timestep(self) -> int:
        """num_train_timesteps minus the timesteps whose lambda is below lambda_min_clipped."""
        clip = float(self.config["lambda_min_clipped"])
        if clip == -math.inf:
            return self.num_train_timesteps
        # lambda_t = log(sqrt(ᾱ)) - log(sqrt(1-ᾱ)), float32 like diffusers' table
        lambdas = [
            f32(f32(math.log(f32(math.sqrt(a)))) - f32(math.log(f32(math.sqrt(f32(1.0 - a))))))
            for a in self.alphas_cumprod
        ]
        clipped = sum(1 for value in lambdas if value < clip)  # searchsorted on the flipped table
        return self.num_train_timesteps - clipped

    def _set_timesteps(self, n: int) -> None:
        last = self._last_timestep()
        if self.timestep_spacing == "linspace":
            values = [np_round(v) for v in np_linspace(0, last - 1, n + 1)][::-1][:-1]
        elif self.timestep_spacing == "leading":
            ratio = last // (n + 1)
            values = [i * ratio + self.steps_offset for i in range(n + 1)][::-1][:-1]
        else:  # trailing
            ratio = self.num_train_timesteps / n
            count = min(n, math.ceil(last / ratio))
            values = [np_round(v) - 1 for v in np_arange_down(last, ratio, count)]
        final = self.train_sigmas[0] if self.config["final_sigmas_type"] == "sigma_min" else 0.0
        if self.karras:
            # Karras spacing over the whole training range (whatever the timestep spacing), and the
            # nearest whole training timestep of each sigma for the UNet
            sigmas = self._karras_sigmas(self.train_sigmas[-1], self.train_sigmas[0], n)
            values = [sigma_to_t(s, self.log_sigmas) for s in sigmas]
            # (diffusers rounds, except for the cosine schedule, whose int64 cast truncates)
            rounding = int if self.config["beta_schedule"] == "squaredcos_cap_v2" else np_round
            values = [rounding(t) for t in values]
        else:
            sigmas = [np_interp(t, self.train_sigmas) for t in values]
        self.sigmas = f32_list(sigmas + [final])
        self.timesteps = [float(t) for t in values]
        self.num_inference_steps = len(values)
        self._check_distinct_sigmas(self.sigmas)
        self.model_outputs = []
        self.lower_order_nums = 0
        self._next_index = 0

    def sigma(self, index: int) -> float:
        self._require_timesteps(index)
        return self.sigmas[index]

    def add_noise_coefficients(self) -> tuple[float, float]:
        """x_t = alpha_t·x_0 + sigma_t·ε with the VP-scale levels of sigma (diffusers' add_noise)."""
        return self._alpha_sigma(self.sigmas[self.begin_index])

    # ---- the update -----------------------------------------------------------------------

    @staticmethod
    def _alpha_sigma(sigma: float) -> tuple[float, float]:
        """(alpha_t, sigma_t) of the VP process at noise level sigma."""
        alpha = 1.0 / math.sqrt(sigma * sigma + 1.0)
        return alpha, sigma * alpha

    def _x0_coefficients_dpm(self, sigma: float) -> tuple[float, float]:
        alpha_t, sigma_t = self._alpha_sigma(sigma)
        if self.prediction_type == "epsilon":
            return 1.0 / alpha_t, -sigma_t / alpha_t
        if self.prediction_type == "v_prediction":
            return alpha_t, -sigma_t
        return 0.0, 1.0

    def step(self, model_output, index: int, sample, ops, generator=None) -> StepResult:
        self._require_timesteps(index)
        if index != self._next_index:
            raise RuntimeError(
                f"DPM-Solver keeps a history: steps must run in order 0, 1, 2, … (expected {self._next_index}, got {index})"
            )
        n = len(self.timesteps)
        final_type_zero = self.config["final_sigmas_type"] == "zero"
        lower_order_final = index == n - 1 and (
            self.euler_at_final or (self.lower_order_final and n < 15) or final_type_zero
        )
        lower_order_second = index == n - 2 and self.lower_order_final and n < 15

        # data prediction x̂_0 = a·x + b·model_output (diffusers' convert_model_output)
        a, b = self._x0_coefficients_dpm(self.sigmas[index])
        x0 = combine(ops, [(a, sample), (b, model_output)])
        self.model_outputs.append(x0)
        if len(self.model_outputs) > self.solver_order:
            self.model_outputs.pop(0)

        if self.solver_order == 1 or self.lower_order_nums < 1 or lower_order_final:
            order = 1
        elif self.solver_order == 2 or self.lower_order_nums < 2 or lower_order_second:
            order = 2
        else:
            order = 3
        weights, info = self._update_weights(index, order)
        history = list(reversed(self.model_outputs))  # x̂_0 now, previous, the one before
        terms = [(weights[0], sample)] + list(zip(weights[1:], history))
        prev_sample = combine(ops, terms)

        if self.lower_order_nums < self.solver_order:
            self.lower_order_nums += 1
        self._next_index = index + 1

        coefficients = {
            "timestep": self.timesteps[index],
            "sigma": self.sigmas[index],
            "sigma_next": self.sigmas[index + 1],
            "order": order,
            "x0_sample_coef": a,
            "x0_model_coef": b,
            **info,
            "sample_coef": weights[0],
            "x0_coef": weights[1],
            "x0_prev_coef": weights[2] if order >= 2 else 0.0,
        }
        if self.solver_order == 3:
            coefficients["x0_prev2_coef"] = weights[3] if order == 3 else 0.0
        return StepResult(prev_sample, x0, coefficients)

    def _lambda(self, sigma: float) -> float:
        return -math.log(sigma)  # log(alpha_t) - log(sigma_t) = log(1/sigma)

    def _update_weights(self, index: int, order: int) -> tuple[list[float], dict[str, float]]:
        """Weights of (x, x̂_0, x̂_0,prev, x̂_0,prev2) in x_next, and the scalars behind them."""
        sigma_s0, sigma_next = self.sigmas[index], self.sigmas[index + 1]
        alpha_t, sigma_t = self._alpha_sigma(sigma_next)
        alpha_s0, sigma_vp_s0 = self._alpha_sigma(sigma_s0)
        info = {"alpha_t": alpha_t, "sigma_t": sigma_t, "alpha_s0": alpha_s0, "sigma_s0": sigma_vp_s0}
        ratio = sigma_t / sigma_vp_s0
        if sigma_next == 0.0:
            # lambda_t = +inf, h = +inf, e^{-h} = 0: the step lands on x̂_0
            info.update(lambda_t=math.inf, lambda_s0=self._lambda(sigma_s0), h=math.inf)
            return [0.0, 1.0] + [0.0] * (order - 1), info
        lambda_t, lambda_s0 = self._lambda(sigma_next), self._lambda(sigma_s0)
        h = lambda_t - lambda_s0
        em1 = math.expm1(-h)  # e^{-h} - 1
        info.update(lambda_t=lambda_t, lambda_s0=lambda_s0, h=h)
        first = -alpha_t * em1  # weight of D0 = x̂_0
        if order == 1:
            return [ratio, first], info

        lambda_s1 = self._lambda(self.sigmas[index - 1])
        h_0 = lambda_s0 - lambda_s1
        r0 = h_0 / h
        info.update(lambda_s1=lambda_s1, r0=r0)
        if order == 2:
            if self.solver_type == "midpoint":
                d1 = -0.5 * alpha_t * em1  # weight of D1 = (m0 - m1)/r0
            else:  # heun
                d1 = alpha_t * (em1 / h + 1.0)
            return [ratio, first + d1 / r0, -d1 / r0], info

        lambda_s2 = self._lambda(self.sigmas[index - 2])
        h_1 = lambda_s1 - lambda_s2
        r1 = h_1 / h
        info.update(lambda_s2=lambda_s2, r1=r1)
        w_d1 = alpha_t * (em1 / h + 1.0)
        w_d2 = -alpha_t * ((em1 + h) / h**2 - 0.5)
        # D1 = D1_0 + r0/(r0+r1)·E, D2 = E/(r0+r1), with D1_0 = (m0-m1)/r0, E = D1_0 - (m1-m2)/r1
        g = w_d1 * r0 / (r0 + r1) + w_d2 / (r0 + r1)  # weight of E
        m0 = first + w_d1 / r0 + g / r0
        m1 = -w_d1 / r0 - g * (1.0 / r0 + 1.0 / r1)
        m2 = g / r1
        return [ratio, m0, m1, m2], info
