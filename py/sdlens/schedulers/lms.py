"""Linear multistep (LMS, k-diffusion's ``sample_lms``): diffusers' ``LMSDiscreteScheduler``, order 4.

Like Euler, it follows the ODE dx/dsigma = d(x, sigma) with d = (x - x̂_0)/sigma, but it
remembers the derivatives of the last (up to) four steps and fits a polynomial through them:

    x_next = x + Σ_j c_j · d_{i-j},   c_j = ∫_{sigma_i}^{sigma_next} L_j(τ) dτ

where L_j is the Lagrange basis polynomial through sigma_i, sigma_{i-1}, … (1 at sigma_{i-j},
0 at the others). diffusers integrates L_j numerically (scipy.integrate.quad); L_j has degree
at most 3, so we integrate it exactly.
"""

from __future__ import annotations

from .base import StepResult, combine
from .euler import _SigmaScheduler

ORDER = 4


def _poly_mul_linear(poly: list[float], root: float) -> list[float]:
    """poly(u)·(u - root); polynomials as coefficient lists, lowest power first."""
    out = [0.0] * (len(poly) + 1)
    for p, c in enumerate(poly):
        out[p + 1] += c
        out[p] -= root * c
    return out


def lms_coefficient(sigmas: list[float], order: int, t: int, current_order: int) -> float:
    """∫_{sigmas[t]}^{sigmas[t+1]} Π_{k≠current_order} (τ - sigmas[t-k]) / (sigmas[t-current_order] - sigmas[t-k]) dτ.

    Exact: the integrand is expanded in powers of u = τ - sigmas[t] (small numbers, so no
    cancellation) and integrated term by term over 0 … sigmas[t+1] - sigmas[t].
    """
    origin = sigmas[t]
    poly = [1.0]
    denominator = 1.0
    for k in range(order):
        if k == current_order:
            continue
        poly = _poly_mul_linear(poly, sigmas[t - k] - origin)
        denominator *= sigmas[t - current_order] - sigmas[t - k]
    h = sigmas[t + 1] - origin
    integral = sum(c * h ** (p + 1) / (p + 1) for p, c in enumerate(poly))
    return integral / denominator


class LMSDiscreteScheduler(_SigmaScheduler):
    name = "lms"
    label = "LMS"
    summary = (
        "LMS fits a curve through the slopes of the last four steps (a linear multistep method) and follows it."
    )
    defaults = {
        "use_karras_sigmas": False,
        "use_exponential_sigmas": False,
        "use_beta_sigmas": False,
    }
    unsupported_flags = ("use_exponential_sigmas", "use_beta_sigmas")
    supports_karras = True

    def __init__(self, config: dict | None = None):
        super().__init__(config)
        self.derivatives: list = []  # the last ORDER derivative tensors, oldest first
        self._next_index = 0

    def _set_timesteps(self, n: int) -> None:
        super()._set_timesteps(n)
        self._check_distinct_sigmas(self.sigmas)

    def _reset(self) -> None:
        self.derivatives = []
        self._next_index = 0

    def step(self, model_output, index: int, sample, ops, generator=None) -> StepResult:
        self._require_timesteps(index)
        if index != self._next_index:
            raise RuntimeError(
                f"LMS keeps a history: steps must run in order 0, 1, 2, … (expected {self._next_index}, got {index})"
            )
        sigma = self.sigmas[index]
        a, b = self._x0_coefficients(sigma)
        d_sample, d_model = (1.0 - a) / sigma, -b / sigma

        pred_original = combine(ops, [(a, sample), (b, model_output)])
        if (d_sample, d_model) == (0.0, 1.0):
            derivative = model_output  # epsilon prediction: d = ε exactly
        else:
            derivative = combine(ops, [(d_sample, sample), (d_model, model_output)])
        self.derivatives.append(derivative)
        if len(self.derivatives) > ORDER:
            self.derivatives.pop(0)

        order = min(index + 1, ORDER)
        lms = [lms_coefficient(self.sigmas, order, index, j) for j in range(order)]
        history = list(reversed(self.derivatives))  # newest first, d_i, d_{i-1}, …
        prev_sample = combine(ops, [(1.0, sample)] + list(zip(lms, history)))
        self._next_index = index + 1

        coefficients = {
            "timestep": self.timesteps[index],
            "sigma": sigma,
            "sigma_next": self.sigmas[index + 1],
            "order": order,
            "x0_sample_coef": a,
            "x0_model_coef": b,
            "derivative_sample_coef": d_sample,
            "derivative_model_coef": d_model,
        }
        for j in range(ORDER):
            coefficients[f"lms_coef_{j}"] = lms[j] if j < order else 0.0
        return StepResult(prev_sample, pred_original, coefficients)
