"""The samplers: one small class per algorithm, each reproducing the diffusers class of the same name.

    scheduler = make_scheduler("dpmpp_2m", model_scheduler_config)
    scheduler.set_timesteps(20)
    x = ops.combine([(scheduler.init_noise_sigma, noise)])
    for i, t in enumerate(scheduler.timesteps):
        eps = unet(scheduler.scale_model_input(x, i, ops), t)
        x = scheduler.step(eps, i, x, ops, generator).prev_sample
"""

from __future__ import annotations

from ..errors import SdlensError
from .base import MAX_STEPS, Scheduler, StepResult
from .ddim import DDIMScheduler
from .dpm_solver import DPMSolverMultistepScheduler
from .euler import EulerDiscreteScheduler
from .euler_ancestral import EulerAncestralDiscreteScheduler
from .lms import LMSDiscreteScheduler

SCHEDULERS: dict[str, type[Scheduler]] = {
    cls.name: cls
    for cls in (
        DDIMScheduler,
        EulerDiscreteScheduler,
        EulerAncestralDiscreteScheduler,
        DPMSolverMultistepScheduler,
        LMSDiscreteScheduler,
    )
}


def make_scheduler(name: str, config: dict | None = None) -> Scheduler:
    """A scheduler by its short name (see ``SCHEDULERS``), set up from a diffusers scheduler config."""
    cls = SCHEDULERS.get(str(name).strip().lower()) if name is not None else None
    if cls is None:
        raise SdlensError(f"unknown scheduler {name!r}; choose one of: {', '.join(SCHEDULERS)}")
    return cls(config or {})


__all__ = [
    "MAX_STEPS",
    "SCHEDULERS",
    "DDIMScheduler",
    "DPMSolverMultistepScheduler",
    "EulerAncestralDiscreteScheduler",
    "EulerDiscreteScheduler",
    "LMSDiscreteScheduler",
    "Scheduler",
    "StepResult",
    "make_scheduler",
]
