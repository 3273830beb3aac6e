"""The samplers: one small class per algorithm, each reproducing the diffusers class of the same name.

    scheduler = make_scheduler("dpmpp_2m", model_scheduler_config, karras=True)
    scheduler.set_timesteps(20)
    x = ops.combine([(scheduler.init_noise_sigma, noise)])
    for i, t in enumerate(scheduler.timesteps):      # one entry per UNet call
        eps = unet(scheduler.scale_model_input(x, i, ops), t)
        x = scheduler.step(eps, i, x, ops, generator).prev_sample

Most schedulers call the UNet once per step; Heun twice, PNDM twice in its first step. Their
``timesteps`` list every call (as diffusers' do), and ``scheduler.call(i)`` tells which step a
call belongs to and why it is made.
"""

from __future__ import annotations

from ..errors import SdlensError, as_typed
from .base import KARRAS_SUMMARY, MAX_STEPS, Call, Scheduler, StepResult, as_bool
from .ddim import DDIMScheduler
from .ddpm import DDPMScheduler
from .dpm_solver import DPMSolverMultistepScheduler
from .euler import EulerDiscreteScheduler
from .euler_ancestral import EulerAncestralDiscreteScheduler
from .heun import HeunDiscreteScheduler
from .lcm import LCMScheduler
from .lms import LMSDiscreteScheduler
from .pndm import PNDMScheduler
from .unipc import UniPCMultistepScheduler

#: every scheduler by its id, in the order a menu lists them
SCHEDULERS: dict[str, type[Scheduler]] = {
    cls.name: cls
    for cls in (
        PNDMScheduler,
        DDIMScheduler,
        EulerDiscreteScheduler,
        EulerAncestralDiscreteScheduler,
        DPMSolverMultistepScheduler,
        UniPCMultistepScheduler,
        LMSDiscreteScheduler,
        HeunDiscreteScheduler,
        DDPMScheduler,
        LCMScheduler,
    )
}

#: diffusers' class names → our ids (what a model's scheduler_config.json names)
DIFFUSERS_CLASSES: dict[str, str] = {
    "PNDMScheduler": "pndm",
    "DDIMScheduler": "ddim",
    "EulerDiscreteScheduler": "euler",
    "EulerAncestralDiscreteScheduler": "euler_a",
    "DPMSolverMultistepScheduler": "dpmpp_2m",
    "UniPCMultistepScheduler": "unipc",
    "LMSDiscreteScheduler": "lms",
    "HeunDiscreteScheduler": "heun",
    "DDPMScheduler": "ddpm",
    "LCMScheduler": "lcm",
}

KARRAS_SCHEDULERS = tuple(name for name, cls in SCHEDULERS.items() if cls.supports_karras)


def scheduler_class(name) -> type[Scheduler]:
    """A scheduler class by its id, in any capitalisation ("DDIM", "Euler_A"), or SdlensError."""
    cls = SCHEDULERS.get(str(name).strip().lower()) if name is not None else None
    if cls is None:
        raise SdlensError(f"unknown scheduler “{name}”; choose one of: {', '.join(SCHEDULERS)}")
    return cls


def check_karras(value) -> bool | None:
    """A Karras setting: None (as the model's scheduler config says), or true/false (also as text)."""
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off"):
        return False
    raise SdlensError(f"karras must be true or false, {as_typed(value)}")


def make_scheduler(name: str, config: dict | None = None, karras: bool | None = None) -> Scheduler:
    """A scheduler by its id (see ``SCHEDULERS``), set up from a diffusers scheduler config.

    ``karras`` true or false overrides the config's ``use_karras_sigmas``; None keeps it. Karras
    sigmas exist only where diffusers' class has them: asking for them elsewhere is an error."""
    cls = scheduler_class(name)
    config = dict(config or {})
    karras = check_karras(karras)
    if karras is not None:
        if karras and not cls.supports_karras:
            labels = ", ".join(SCHEDULERS[n].label for n in KARRAS_SCHEDULERS)
            raise SdlensError(
                f"karras sigmas are not available for {cls.label} (diffusers has none for it either); "
                f"they work with {labels}"
            )
        config["use_karras_sigmas"] = karras
    return cls(config)


def display_name(name: str, karras: bool = False) -> str:
    """What users call a scheduler: its label, plus "Karras" with Karras sigmas ("DPM++ 2M Karras")."""
    cls = scheduler_class(name)
    return f"{cls.label} Karras" if karras and cls.supports_karras else cls.label


def catalogue() -> dict:
    """What the page needs to list the schedulers (the one source of their user-facing names):
    for each, its id, name, one sentence on what it does and whether Karras sigmas apply."""
    return {
        "schedulers": [{"id": name, "label": cls.label, "summary": cls.summary, "karras": cls.supports_karras}
                       for name, cls in SCHEDULERS.items()],
        "karras_summary": KARRAS_SUMMARY,
    }


__all__ = [
    "DIFFUSERS_CLASSES",
    "KARRAS_SCHEDULERS",
    "MAX_STEPS",
    "SCHEDULERS",
    "Call",
    "DDIMScheduler",
    "DDPMScheduler",
    "DPMSolverMultistepScheduler",
    "EulerAncestralDiscreteScheduler",
    "EulerDiscreteScheduler",
    "HeunDiscreteScheduler",
    "LCMScheduler",
    "LMSDiscreteScheduler",
    "PNDMScheduler",
    "Scheduler",
    "StepResult",
    "UniPCMultistepScheduler",
    "as_bool",
    "catalogue",
    "check_karras",
    "display_name",
    "make_scheduler",
    "scheduler_class",
]
