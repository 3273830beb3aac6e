"""What every scheduler shares: the noise schedule, timestep spacing and the prediction types.

The schedulers here reproduce diffusers' classes of the same name (diffusers 0.39). They are
driven by the same ``scheduler_config.json`` dict, with the same defaults for missing keys,
and they return the same timesteps and the same latents, step by step.

Two rules shape the code:

* Tensors are handles (on the GPU in the browser). A scheduler never looks at tensor values:
  every update is a linear combination ``ops.combine([(coef, tensor), ...])`` whose
  coefficients are plain Python floats, computed here. Those floats are what a teaching UI
  shows, so every step also returns them in ``StepResult.coefficients``.
* diffusers keeps its tables (betas, alphas_cumprod, sigmas) in float32 torch tensors. We
  round to float32 at the same points (``array('f')``), so the tables hold the same numbers.
  The per-step scalars are then computed in double precision from those float32 numbers.

The noise level is described two ways, and each scheduler uses the one its paper uses:
``alpha_prod`` (ᾱ_t, DDIM) and ``sigma`` = sqrt((1-ᾱ_t)/ᾱ_t) (the Euler family, DPM, LMS).
They describe the same thing: x_t = sqrt(ᾱ_t)·(x_0 + sigma_t·ε).
"""

from __future__ import annotations

import math
from array import array
from dataclasses import dataclass, field
from typing import Any, Sequence

from ..errors import SdlensError, as_typed

Tensor = Any

MAX_STEPS = 1000

KARRAS_SUMMARY = ("With Karras sigmas (ρ = 7) the noise levels are spaced so that more of the steps are spent "
                  "at low noise, where the fine detail is decided.")

SPACINGS = ("leading", "trailing", "linspace")
PREDICTION_TYPES = ("epsilon", "v_prediction", "sample")


# --------------------------------------------------------------------------------------------
# float32 and numpy/torch arithmetic, reproduced with Python floats
# --------------------------------------------------------------------------------------------


def f32(x: float) -> float:
    """``x`` rounded to the nearest float32 (as a Python float)."""
    return array("f", (x,))[0]


def f32_list(values) -> list[float]:
    return array("f", values).tolist()


def _f32_axpy(a: float, x: int, b: float) -> float:
    """float32 ``a*x + b`` rounded once, as a fused multiply-add does.

    ``a`` is a float32 and ``x`` a small integer, so ``a*x`` is exact in a double, and so is the
    sum for the magnitudes that occur here: rounding it to float32 is then the only rounding.
    """
    return f32(a * x + b)


def torch_linspace_f32(start: float, end: float, steps: int) -> list[float]:
    """``torch.linspace(start, end, steps, dtype=torch.float32)`` on the CPU.

    torch computes ``step = (end - start) / (steps - 1)`` in float32 and fills the first half
    as ``start + step*i`` and the second as ``end - step*(steps-1-i)``; on CPUs with AVX2 or
    AVX-512 (nearly all) that multiply-add is fused, so it is rounded once.
    """
    start, end = f32(start), f32(end)
    if steps == 1:
        return [start]
    step = f32(f32(end - start) / (steps - 1))
    halfway = steps // 2
    return [
        _f32_axpy(step, i, start) if i < halfway else _f32_axpy(-step, steps - 1 - i, end)
        for i in range(steps)
    ]


def np_linspace(start: float, stop: float, num: int) -> list[float]:
    """``numpy.linspace(start, stop, num)`` in float64 (``i*step + start``, last value exact)."""
    if num == 1:
        return [float(start)]
    step = (stop - start) / (num - 1)
    values = [i * step + start for i in range(num)]
    values[-1] = float(stop)
    return values


def np_arange_down(start: float, step: float, num: int) -> list[float]:
    """The first ``num`` values of ``numpy.arange(start, 0, -step)`` (float64).

    numpy fills an arange as ``start + i*delta`` with ``delta = (start - step) - start``.
    """
    delta = (start - step) - start
    return [start + i * delta for i in range(num)]


def np_round(x: float) -> int:
    """``numpy.round``: to the nearest integer, ties to even (Python's ``round`` does the same)."""
    return int(round(x))


def np_interp(x: float, fp: Sequence[float]) -> float:
    """``numpy.interp(x, arange(len(fp)), fp)``, the way numpy computes it."""
    last = len(fp) - 1
    if x <= 0:
        return fp[0]
    if x >= last:
        return fp[last]
    j = int(math.floor(x))
    if x == j:
        return fp[j]
    slope = fp[j + 1] - fp[j]  # divided by xp[j+1] - xp[j] == 1
    return slope * (x - j) + fp[j]


# --------------------------------------------------------------------------------------------
# the noise schedule
# --------------------------------------------------------------------------------------------


def _alpha_bar_cosine(t: float) -> float:
    return math.cos((t + 0.008) / 1.008 * math.pi / 2) ** 2


def make_betas(config: dict) -> list[float]:
    """The float32 betas of the training noise schedule, as diffusers builds them."""
    n = config["num_train_timesteps"]
    trained = config.get("trained_betas")
    if trained is not None:
        betas = f32_list(float(b) for b in trained)
        if len(betas) != n:
            raise SdlensError(
                f"scheduler config has {len(betas)} trained_betas but num_train_timesteps is {n}"
            )
        return betas
    schedule = config["beta_schedule"]
    start, end = float(config["beta_start"]), float(config["beta_end"])
    if schedule == "linear":
        return torch_linspace_f32(start, end, n)
    if schedule == "scaled_linear":
        # linspace over sqrt(beta), then squared (torch squares in float32: x*x rounded)
        return [f32(b * b) for b in torch_linspace_f32(start**0.5, end**0.5, n)]
    if schedule == "squaredcos_cap_v2":
        return f32_list(
            min(1 - _alpha_bar_cosine((i + 1) / n) / _alpha_bar_cosine(i / n), 0.999) for i in range(n)
        )
    raise SdlensError(
        f"unknown beta_schedule {schedule!r} in the scheduler config; "
        "expected 'scaled_linear', 'linear' or 'squaredcos_cap_v2'"
    )


def cumprod_f32(alphas: Sequence[float]) -> list[float]:
    """``torch.cumprod`` of a float32 tensor on the CPU: a double accumulator, stored as float32."""
    out, acc = [], 1.0
    for a in alphas:
        acc *= a
        out.append(acc)
    return f32_list(out)


def sigma_from_alpha_prod(alpha_prod: float) -> float:
    """float32 ``((1 - ᾱ) / ᾱ) ** 0.5``, the noise-to-signal ratio diffusers calls sigma."""
    return f32(math.sqrt(f32(f32(1.0 - alpha_prod) / alpha_prod)))


# --------------------------------------------------------------------------------------------
# Karras sigmas (Karras et al. 2022, eq. 5): noise levels spaced evenly in sigma^(1/rho)
# --------------------------------------------------------------------------------------------

KARRAS_RHO = 7.0


def karras_sigmas(sigma_min: float, sigma_max: float, n: int) -> list[float]:
    """diffusers' ``_convert_to_karras`` (float64): ``n`` sigmas from sigma_max down to sigma_min.

    rho = 7 puts more of the steps at low noise, where the fine detail is decided."""
    min_inv_rho = sigma_min ** (1 / KARRAS_RHO)
    max_inv_rho = sigma_max ** (1 / KARRAS_RHO)
    return [(max_inv_rho + r * (min_inv_rho - max_inv_rho)) ** KARRAS_RHO for r in np_linspace(0, 1, n)]


def sigma_to_t(sigma: float, log_sigmas: Sequence[float]) -> float:
    """diffusers' ``_sigma_to_t``: the (fractional) training timestep whose sigma is ``sigma``,
    interpolating linearly in log(sigma) between the two neighbouring table entries."""
    log_sigma = math.log(max(sigma, 1e-10))
    last = len(log_sigmas) - 2
    low = 0  # the last index whose log-sigma is at most log_sigma (0 when there is none)
    for i, value in enumerate(log_sigmas):
        if log_sigma - value >= 0:
            low = i
    low = min(low, last)
    lo, hi = log_sigmas[low], log_sigmas[low + 1]
    w = min(max((lo - log_sigma) / (lo - hi), 0.0), 1.0)
    return (1 - w) * low + w * (low + 1)


# --------------------------------------------------------------------------------------------
# step results and the base class
# --------------------------------------------------------------------------------------------


def check_steps(num_inference_steps, max_steps: int) -> int:
    """A step count as an int in 1 … max_steps (also from text such as "30"), or SdlensError."""
    n = num_inference_steps
    if isinstance(n, bool):
        n = None
    elif isinstance(n, float) and n.is_integer():
        n = int(n)
    elif isinstance(n, str):
        try:
            n = int(n.strip(), 10)
        except ValueError:
            n = None
    if not isinstance(n, int) or not 1 <= n <= max_steps:
        raise SdlensError(f"steps must be a whole number from 1 to {max_steps}, {as_typed(num_inference_steps)}")
    return n


def check_multistep(config: dict) -> int:
    """The multistep solvers' (UniPC, DPM-Solver) shared settings: returns `solver_order` (1, 2
    or 3), after checking it and `final_sigmas_type` ("zero" or "sigma_min"), or SdlensError."""
    try:
        order = int(config["solver_order"])
    except (TypeError, ValueError):
        order = 0
    if order not in (1, 2, 3):
        raise SdlensError(f"solver_order must be 1, 2 or 3, got {config['solver_order']!r}")
    if config["final_sigmas_type"] not in ("zero", "sigma_min"):
        raise SdlensError(
            f"final_sigmas_type {config['final_sigmas_type']!r} is not supported; expected 'zero' or 'sigma_min'"
        )
    return order


@dataclass(frozen=True)
class Call:
    """Where one UNet call sits in the run: most schedulers call the UNet once per step, but
    Heun calls it twice (a trial step, then a correction) and PNDM twice in its first step."""

    step: int  # the denoising step (0-based) this call belongs to
    part: int  # its place within the step (0-based)
    parts: int  # how many UNet calls that step makes
    role: str = ""  # why this call is made, in words (empty for a plain one-call step)


@dataclass
class StepResult:
    """One scheduler step.

    ``prev_sample`` is the next latent x_{t-1}; ``pred_original_sample`` the predicted clean
    latent x̂_0 (what diffusers returns under that name; for DPM-Solver its data prediction).
    ``coefficients`` are the scalar numbers of this update, e.g. for DDIM
    ``prev_sample = sample_coef·x_t + model_coef·ε`` and
    ``pred_original_sample = x0_sample_coef·x_t + x0_model_coef·ε``.
    """

    prev_sample: Tensor
    pred_original_sample: Tensor
    coefficients: dict[str, float] = field(default_factory=dict)


def as_bool(value) -> bool:
    """A config flag: JSON true/false, or a string such as "true"."""
    if isinstance(value, str):
        return value.strip().lower() in ("1", "true", "yes")
    return bool(value)


class Scheduler:
    """Shared behaviour. Subclasses set ``name``, ``label``, ``defaults`` (diffusers' defaults
    for the keys that class reads) and implement ``_set_timesteps``, ``sigma`` and ``step``."""

    name: str = ""
    #: the name users know it by ("DPM++ 2M"); the page's menu shows it
    label: str = ""
    #: one plain sentence on what it does, for the page's article
    summary: str = ""
    #: diffusers' defaults for the config keys this class reads. Keys not listed are ignored.
    defaults: dict = {}
    #: config keys whose only supported value is "off": a true value raises SdlensError.
    unsupported_flags: tuple[str, ...] = ()
    #: prediction types this class can handle
    prediction_types: tuple[str, ...] = PREDICTION_TYPES
    #: whether diffusers' class of the same name has ``use_karras_sigmas``
    supports_karras: bool = False
    #: diffusers' ``order``: UNet calls per step in ``timesteps`` (Heun: 2). A run from a picture
    #: skips its first ``t_start · order`` calls.
    order: int = 1

    _COMMON_DEFAULTS = {
        "num_train_timesteps": 1000,
        "beta_start": 0.0001,
        "beta_end": 0.02,
        "beta_schedule": "linear",
        "trained_betas": None,
        "prediction_type": "epsilon",
        "timestep_spacing": "linspace",
        "steps_offset": 0,
        "rescale_betas_zero_snr": False,
    }

    def __init__(self, config: dict | None = None):
        config = dict(config or {})
        cfg = dict(self._COMMON_DEFAULTS)
        cfg.update(self.defaults)
        for key in cfg:
            if config.get(key) is not None:  # JSON null means "the default", as for trained_betas
                cfg[key] = config[key]
        self.config = cfg

        for key in ("rescale_betas_zero_snr",) + self.unsupported_flags:
            if as_bool(cfg.get(key, False)):
                raise SdlensError(
                    f"the scheduler option {key}=true is not supported by sdlens's {self.label} scheduler"
                )
        try:
            self.num_train_timesteps = int(cfg["num_train_timesteps"])
            self.steps_offset = int(cfg["steps_offset"])
        except (TypeError, ValueError):
            raise SdlensError("num_train_timesteps and steps_offset in the scheduler config must be integers") from None
        if self.num_train_timesteps < 1:
            raise SdlensError("num_train_timesteps in the scheduler config must be at least 1")
        cfg["num_train_timesteps"] = self.num_train_timesteps
        self.prediction_type = str(cfg["prediction_type"])
        if self.prediction_type not in self.prediction_types:
            raise SdlensError(
                f"prediction_type {self.prediction_type!r} is not supported by the {self.label} scheduler; "
                f"expected one of {', '.join(self.prediction_types)}"
            )
        self.timestep_spacing = str(cfg["timestep_spacing"])
        if self.timestep_spacing not in SPACINGS:
            raise SdlensError(
                f"timestep_spacing {self.timestep_spacing!r} is not supported; expected one of {', '.join(SPACINGS)}"
            )

        #: float32 tables over the training timesteps 0 … num_train_timesteps-1
        self.betas: list[float] = make_betas(cfg)
        self.alphas: list[float] = f32_list(1.0 - b for b in self.betas)
        self.alphas_cumprod: list[float] = cumprod_f32(self.alphas)
        self.train_sigmas: list[float] = [sigma_from_alpha_prod(a) for a in self.alphas_cumprod]

        #: float32 log of the training sigmas (diffusers' ``log_sigmas``, for Karras timesteps)
        self.log_sigmas: list[float] = f32_list(math.log(s) for s in self.train_sigmas)
        self.karras: bool = self.supports_karras and as_bool(self.config.get("use_karras_sigmas", False))

        self.num_inference_steps: int = 0
        #: the first UNet call of the run: 0, or later for a run from a picture (``set_begin_index``)
        self.begin_index: int = 0
        #: the UNet call the scheduler expects next (those that keep a history check it)
        self._next_index: int = 0
        #: what the UNet receives at each call (diffusers' ``scheduler.timesteps``): one entry per
        #: step, except for schedulers that call the UNet more than once in a step (see ``call``)
        self.timesteps: list[float] = []

    # ---- the common API ---------------------------------------------------------------------

    @property
    def max_steps(self) -> int:
        return min(MAX_STEPS, self.num_train_timesteps)

    def check_steps(self, num_inference_steps) -> int:
        """``num_inference_steps`` as an int in 1 … max_steps, or SdlensError."""
        return check_steps(num_inference_steps, self.max_steps)

    def set_timesteps(self, num_inference_steps: int) -> None:
        """Choose the timesteps for a run of ``num_inference_steps`` and reset any history."""
        n = self.check_steps(num_inference_steps)
        self.num_inference_steps = n
        self.begin_index = 0
        self._set_timesteps(n)

    def set_begin_index(self, index: int) -> None:
        """Start the run at UNet call ``index`` (diffusers' ``set_begin_index``): a run from a picture
        skips the calls before it. The history is empty, as at the start of any run."""
        if index:
            self._require_timesteps(index)
        self.begin_index = index
        self._next_index = index

    def add_noise_coefficients(self) -> tuple[float, float]:
        """(signal, noise): diffusers' ``add_noise`` at the begin index is
        x_t = signal·x_0 + noise·ε, the forward process that a run from a picture starts with.
        ᾱ-based schedulers (DDIM, DDPM, PNDM, LCM): sqrt(ᾱ_t) and sqrt(1 − ᾱ_t)."""
        alpha_prod = self.alphas_cumprod[int(self.timesteps[self.begin_index])]
        return f32(math.sqrt(alpha_prod)), f32(math.sqrt(f32(1.0 - alpha_prod)))

    def _set_timesteps(self, n: int) -> None:
        raise NotImplementedError

    def call(self, index: int) -> Call:
        """Which step UNet call ``index`` (a position in ``timesteps``) belongs to, and why."""
        return Call(index, 0, 1)

    @property
    def init_noise_sigma(self) -> float:
        """The standard deviation of the starting noise x_T."""
        return 1.0

    def sigma(self, index: int) -> float:
        """The noise level sigma_t = sqrt((1-ᾱ_t)/ᾱ_t) at step ``index``."""
        raise NotImplementedError

    def input_scale(self, index: int) -> float:
        """The factor ``scale_model_input`` multiplies the latent by at step ``index``."""
        return 1.0

    def scale_model_input(self, sample: Tensor, index: int, ops) -> Tensor:
        """The UNet's input at step ``index`` (``sample`` itself when no scaling is needed)."""
        scale = self.input_scale(index)
        if scale == 1.0:
            return sample
        return ops.combine([(scale, sample)])

    def step(self, model_output: Tensor, index: int, sample: Tensor, ops, generator=None) -> StepResult:
        raise NotImplementedError

    # ---- helpers ----------------------------------------------------------------------------

    def _require_timesteps(self, index: int) -> None:
        if not self.timesteps:
            raise RuntimeError("call set_timesteps before using the scheduler")
        if not 0 <= index < len(self.timesteps):
            raise IndexError(f"step index {index} is outside 0 … {len(self.timesteps) - 1}")

    def _spaced_timesteps(self, n: int) -> list[float]:
        """Timesteps of the Euler/LMS family (float32 values, as diffusers computes them)."""
        train = self.num_train_timesteps
        if self.timestep_spacing == "linspace":
            values = np_linspace(0, train - 1, n)[::-1]
        elif self.timestep_spacing == "leading":
            ratio = train // n
            values = [float(np_round(i * ratio) + self.steps_offset) for i in range(n)][::-1]
        else:  # trailing
            values = [float(np_round(v) - 1) for v in np_arange_down(train, train / n, n)]
        return f32_list(values)

    def _int_spaced_timesteps(self, n: int) -> list[int]:
        """Whole-number timesteps, largest first, of DDIM, DDPM and PNDM (diffusers' spacings)."""
        train = self.num_train_timesteps
        if self.timestep_spacing == "linspace":
            return [np_round(v) for v in np_linspace(0, train - 1, n)][::-1]
        if self.timestep_spacing == "leading":
            ratio = train // n
            return [i * ratio + self.steps_offset for i in range(n)][::-1]
        return [np_round(v) - 1 for v in np_arange_down(train, train / n, n)]  # trailing

    def _alpha_prod_at(self, timestep: int, final: float) -> float:
        """ᾱ at a whole timestep; ``final`` past the end of the chain (a negative timestep).

        diffusers indexes ``alphas_cumprod[timestep]``; the one out-of-range case (leading
        spacing with steps_offset at the largest step counts) is clamped to the last entry."""
        if timestep < 0:
            return final
        return self.alphas_cumprod[min(timestep, self.num_train_timesteps - 1)]

    def _karras_sigmas(self, sigma_max: float, sigma_min: float, n: int) -> list[float]:
        """Karras sigmas between these end points, unless the config fixes sigma_min/sigma_max."""
        low, high = self.config.get("sigma_min"), self.config.get("sigma_max")
        return karras_sigmas(sigma_min if low is None else float(low), sigma_max if high is None else float(high), n)

    def _check_distinct_sigmas(self, sigmas: Sequence[float]) -> None:
        for a, b in zip(sigmas, sigmas[1:]):
            if a == b:
                raise SdlensError(
                    f"the {self.label} scheduler cannot use {self.num_inference_steps} steps with "
                    f"'{self.timestep_spacing}' timestep spacing: two steps would share a noise level; use fewer steps"
                )

    def _x0_coefficients(self, sigma: float) -> tuple[float, float]:
        """x̂_0 = a·x + b·model_output for a latent x scaled like ``x_0 + sigma·ε`` (Euler family)."""
        if self.prediction_type == "epsilon":
            return 1.0, -sigma
        if self.prediction_type == "v_prediction":
            # model_output * (-sigma / sqrt(sigma²+1)) + sample / (sigma²+1)
            return 1.0 / (sigma * sigma + 1.0), -sigma / math.sqrt(sigma * sigma + 1.0)
        return 0.0, 1.0  # "sample": the model predicts x_0 itself

    def _x0_coefficients_alpha(self, alpha_prod: float) -> tuple[float, float]:
        """x̂_0 = a·x + b·model_output for a latent x = sqrt(ᾱ)·x_0 + sqrt(1-ᾱ)·ε (DDPM, LCM)."""
        sa, sb = math.sqrt(alpha_prod), math.sqrt(1.0 - alpha_prod)
        if self.prediction_type == "epsilon":
            return 1.0 / sa, -sb / sa
        if self.prediction_type == "v_prediction":
            return sa, -sb
        return 0.0, 1.0  # "sample": the model predicts x_0 itself


def combine(ops, terms) -> Tensor:
    """``ops.combine`` without the terms whose coefficient is exactly zero."""
    kept = [(c, t) for c, t in terms if c != 0.0]
    if not kept:
        kept = [(0.0, terms[0][1])]
    return ops.combine(kept)
