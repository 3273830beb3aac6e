"""UniPC (Zhao et al. 2023, unified predictor-corrector): diffusers' ``UniPCMultistepScheduler``.

Defaults as diffusers': data prediction (predict_x0), solver_type "bh2", solver_order 2,
lower_order_final, the corrector on every step. Like DPM-Solver++ it works with the predicted
clean latent x̂_0 and lambda = log(alpha_t/sigma_t) = -log(sigma), h = lambda_next - lambda. Each
step has two parts, each one linear combination:

* corrector (UniC, from the second step on): the UNet's new x̂_0 at x_t improves x_t itself,
  redoing the previous step with the new information:
      x_t ← (sigma_t/sigma_s)·x_s - alpha_t·(e^{-h}-1)·x̂_0,s - alpha_t·B(h)·(Σ ρ_k·D_k + ρ_c·(x̂_0,t - x̂_0,s))
* predictor (UniP): the multistep step from the corrected x_t to the next noise level
      x_next = (sigma_next/sigma_t)·x_t - alpha_next·(e^{-h}-1)·x̂_0,t - alpha_next·B(h)·Σ ρ_k·D_k

with D_k = (x̂_0 of k steps back - x̂_0,t)/r_k, r_k the ratio of the lambda gaps, B(h) = e^{-h} - 1
(bh2) or -h (bh1), and the ρ from a small linear system (ρ = 1/2 for second order). The corrector
costs no extra UNet call: it reuses the prediction the next step needs anyway.
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
    f32_list,
    np_arange_down,
    np_interp,
    np_linspace,
    np_round,
    sigma_to_t,
)


def solve(matrix: list[list[float]], rhs: list[float]) -> list[float]:
    """The solution of a small linear system (Gaussian elimination with partial pivoting);
    diffusers calls torch.linalg.solve."""
    n = len(rhs)
    a = [list(row) + [value] for row, value in zip(matrix, rhs)]
    for col in range(n):
        pivot = max(range(col, n), key=lambda r: abs(a[r][col]))
        a[col], a[pivot] = a[pivot], a[col]
        for r in range(col + 1, n):
            f = a[r][col] / a[col][col]
            for c in range(col, n + 1):
                a[r][c] -= f * a[col][c]
    x = [0.0] * n
    for r in reversed(range(n)):
        x[r] = (a[r][n] - sum(a[r][c] * x[c] for c in range(r + 1, n))) / a[r][r]
    return x


class UniPCMultistepScheduler(Scheduler):
    name = "unipc"
    label = "UniPC"
    summary = (
        "UniPC predicts and corrects: each new UNet prediction first corrects the step just taken, then takes the next one; it is strong at 5 to 10 steps."
    )
    defaults = {
        "solver_order": 2,
        "thresholding": False,
        "predict_x0": True,
        "solver_type": "bh2",
        "lower_order_final": True,
        "disable_corrector": [],
        "solver_p": None,
        "use_karras_sigmas": False,
        "use_exponential_sigmas": False,
        "use_beta_sigmas": False,
        "use_flow_sigmas": False,
        "use_dynamic_shifting": False,
        "final_sigmas_type": "zero",
        "sigma_min": None,
        "sigma_max": None,
    }
    unsupported_flags = (
        "thresholding",
        "use_exponential_sigmas",
        "use_beta_sigmas",
        "use_flow_sigmas",
        "use_dynamic_shifting",
    )
    supports_karras = True

    def __init__(self, config: dict | None = None):
        super().__init__(config)
        cfg = self.config
        if not as_bool(cfg["predict_x0"]):
            raise SdlensError("predict_x0=false is not supported by sdlens's UniPC scheduler")
        if cfg["solver_p"] is not None:
            raise SdlensError("a separate solver_p is not supported by sdlens's UniPC scheduler")
        solver_type = cfg["solver_type"]
        if solver_type in ("midpoint", "heun", "logrho"):  # diffusers maps these to bh2
            solver_type = "bh2"
        if solver_type not in ("bh1", "bh2"):
            raise SdlensError(f"solver_type {solver_type!r} is not supported by UniPC; expected 'bh1' or 'bh2'")
        self.solver_type = solver_type
        self.solver_order = check_multistep(cfg)
        self.lower_order_final = as_bool(cfg["lower_order_final"])
        if cfg["final_sigmas_type"] == "zero" and (not self.lower_order_final and self.solver_order > 1
                                                   or self.solver_type == "bh1"):
            # a higher-order (or bh1) last step onto sigma = 0 gives NaN in diffusers
            raise SdlensError(
                "UniPC with final_sigmas_type 'zero' needs lower_order_final and solver_type 'bh2' "
                "(otherwise its last step divides by zero)"
            )
        self.disable_corrector = [int(i) for i in cfg["disable_corrector"] or []]
        self.sigmas: list[float] = []
        self._reset()

    def _reset(self) -> None:
        self.model_outputs: list = []  # x̂_0 of the last solver_order steps, oldest first
        self.lower_order_nums = 0
        self.last_sample = None  # the latent the previous predictor started from
        self.this_order = 0  # the order of the previous predictor (the corrector matches it)
        self._next_index = 0

    # ---- timesteps ------------------------------------------------------------------------

    def _set_timesteps(self, n: int) -> None:
        train = self.num_train_timesteps
        if self.timestep_spacing == "linspace":
            values = [np_round(v) for v in np_linspace(0, train - 1, n + 1)][::-1][:-1]
        elif self.timestep_spacing == "leading":
            ratio = train // (n + 1)
            values = [i * ratio + self.steps_offset for i in range(n + 1)][::-1][:-1]
        else:  # trailing
            values = [np_round(v) - 1 for v in np_arange_down(train, train / n, n)]
        if self.karras:
            sigmas = self._karras_sigmas(self.train_sigmas[-1], self.train_sigmas[0], n)
            values = [np_round(sigma_to_t(s, self.log_sigmas)) for s in sigmas]
            final = sigmas[-1] if self.config["final_sigmas_type"] == "sigma_min" else 0.0
        else:
            sigmas = [np_interp(t, self.train_sigmas) for t in values]
            final = self.train_sigmas[0] if self.config["final_sigmas_type"] == "sigma_min" else 0.0
        self.sigmas = f32_list(sigmas + [final])
        self.timesteps = [float(t) for t in values]
        self._check_distinct_sigmas(self.sigmas[:-1] if self.karras else self.sigmas)
        self._reset()

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

    def _lambda(self, sigma: float) -> float:
        return math.inf if sigma == 0.0 else -math.log(sigma)  # log(alpha_t) - log(sigma_t)

    def _x0_coefficients_vp(self, sigma: float) -> tuple[float, float]:
        alpha_t, sigma_t = self._alpha_sigma(sigma)
        if self.prediction_type == "epsilon":
            return 1.0 / alpha_t, -sigma_t / alpha_t
        if self.prediction_type == "v_prediction":
            return alpha_t, -sigma_t
        return 0.0, 1.0

    def _weights(self, target: int, start: int, older: list[int], order: int, corrector: bool):
        """The scalars of one UniP/UniC update from sigmas[start] to sigmas[target].

        ``older`` are the sigma indices of the earlier x̂_0 in the history (newest first). Returns
        (weight of x, weight of x̂_0 at start, weights of the older x̂_0, weight of the new x̂_0
        (corrector only), scalars for display)."""
        sigma_t, sigma_s0 = self.sigmas[target], self.sigmas[start]
        if sigma_t == sigma_s0 and not corrector and order == 1:
            # Karras sigmas with final_sigmas_type "sigma_min" repeat the last sigma: h = 0 and
            # diffusers' last step leaves the latent as it is
            return 1.0, 0.0, [], 0.0, {"h": 0.0}
        alpha_t, vp_sigma_t = self._alpha_sigma(sigma_t)
        _, vp_sigma_s0 = self._alpha_sigma(sigma_s0)
        lambda_t, lambda_s0 = self._lambda(sigma_t), self._lambda(sigma_s0)
        h = lambda_t - lambda_s0
        rks = [(self._lambda(self.sigmas[si]) - lambda_s0) / h for si in older[: order - 1]]
        hh = -h
        h_phi_1 = math.expm1(hh)  # e^{-h} - 1
        h_phi_k = h_phi_1 / hh - 1
        b_h = math.expm1(hh) if self.solver_type == "bh2" else hh
        factorial = 1
        rows, b = [], []
        for i in range(1, order + 1):
            rows.append([r ** (i - 1) for r in rks + [1.0]])
            b.append(h_phi_k * factorial / b_h)
            factorial *= i + 1
            h_phi_k = h_phi_k / hh - 1 / factorial
        if corrector:
            rhos = [0.5] if order == 1 else solve(rows, b)
        elif order == 1:
            rhos = []
        else:
            rhos = [0.5] if order == 2 else solve([r[:-1] for r in rows[:-1]], b[:-1])
        w_x = vp_sigma_t / vp_sigma_s0
        w_m0 = -alpha_t * h_phi_1
        w_older = []
        for rho, rk in zip(rhos, rks):  # D_k = (m_k - m0)/r_k
            w = -alpha_t * b_h * rho / rk
            w_older.append(w)
            w_m0 -= w
        w_new = 0.0
        if corrector:  # + rho_c·(m_t - m0)
            w_new = -alpha_t * b_h * rhos[-1]
            w_m0 -= w_new
        info = {"h": h, "B_h": b_h, **{f"r{k + 1}": r for k, r in enumerate(rks)},
                **{f"rho{k + 1}": r for k, r in enumerate(rhos)}}
        return w_x, w_m0, w_older, w_new, info

    def step(self, model_output, index: int, sample, ops, generator=None) -> StepResult:
        self._require_timesteps(index)
        if index != self._next_index:
            raise RuntimeError(
                f"UniPC keeps a history: steps must run in order 0, 1, 2, … (expected {self._next_index}, got {index})"
            )
        a, b = self._x0_coefficients_vp(self.sigmas[index])
        x0 = combine(ops, [(a, sample), (b, model_output)])
        coefficients = {
            "timestep": self.timesteps[index],
            "sigma": self.sigmas[index],
            "sigma_next": self.sigmas[index + 1],
            "x0_sample_coef": a,
            "x0_model_coef": b,
        }

        use_corrector = index > 0 and (index - 1) not in self.disable_corrector and self.last_sample is not None
        if use_corrector:
            history = list(reversed(self.model_outputs))  # m0 (previous step), then older
            order = self.this_order
            older = [index - 1 - k for k in range(1, order)]
            w_x, w_m0, w_older, w_new, info = self._weights(index, index - 1, older, order, corrector=True)
            sample = combine(ops, [(w_x, self.last_sample), (w_m0, history[0]), (w_new, x0)]
                             + list(zip(w_older, history[1:])))
            coefficients.update({
                "corrector_order": order,
                "corrector_last_sample_coef": w_x,
                "corrector_x0_prev_coef": w_m0,
                "corrector_x0_coef": w_new,
                **{f"corrector_x0_prev{k + 2}_coef": w for k, w in enumerate(w_older)},
                **{f"corrector_{k}": v for k, v in info.items()},
            })
        else:
            coefficients["corrector_order"] = 0

        self.model_outputs.append(x0)
        if len(self.model_outputs) > self.solver_order:
            self.model_outputs.pop(0)
        n = len(self.timesteps)
        order = min(self.solver_order, n - index) if self.lower_order_final else self.solver_order
        order = min(order, self.lower_order_nums + 1)  # warm-up: not enough history yet
        self.this_order = order
        self.last_sample = sample

        history = list(reversed(self.model_outputs))  # m0 = this step's x̂_0, then older
        older = [index - k for k in range(1, order)]
        w_x, w_m0, w_older, _, info = self._weights(index + 1, index, older, order, corrector=False)
        prev_sample = combine(ops, [(w_x, sample), (w_m0, history[0])] + list(zip(w_older, history[1:])))
        if self.lower_order_nums < self.solver_order:
            self.lower_order_nums += 1
        self._next_index = index + 1
        coefficients.update({
            "order": order,
            **info,
            "sample_coef": w_x,
            "x0_coef": w_m0,
            "x0_prev_coef": w_older[0] if w_older else 0.0,
        })
        if self.solver_order == 3:
            coefficients["x0_prev2_coef"] = w_older[1] if len(w_older) > 1 else 0.0
        return StepResult(prev_sample, x0, coefficients)
