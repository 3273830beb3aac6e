"""Start from a picture (img2img): the picture's latent, noised to a middle step, is where the run begins.

    picture ──VAE encoder──► mean ‖ logvar ──sample──► x_0 = scaling · (mean + std·n₁)
    x_0, noise n₂ ──add_noise at t_start──► x_{t_start} ──► [ the last steps of the usual loop ] ──► image

The order is diffusers' StableDiffusionImg2ImgPipeline: the same generator (the seed) first draws
n₁ for the encoder's sample, then n₂, then whatever the scheduler draws during the steps.
`strength` says how much of the run is redone: int(steps · strength) of the steps run, the
first ones are skipped (diffusers' `get_timesteps`). strength 1 runs every step from (nearly)
pure noise, and the picture only sets the rough layout; 0.3 keeps most of it.

The contract for callers (the CLI, `window.sdlens.generate`/`explain`, the worker):

* settings["init_image"] = {"width": W, "height": H, "rgba": bytes}: RGBA8, row-major, exactly the
  model's width×height (manifest defaults.width/height). Resize before: centre-crop to the model's
  aspect ratio, then scale (the CLI does it with PIL, cpython/images.py; the page with a canvas).
  Pixels that are not opaque are composited on white here, so the page and the CLI agree. In the
  page `rgba` is a Uint8Array or Uint8ClampedArray; app.js → worker → session pass it as it is.
* settings["strength"]: 0 < strength ≤ 1, only together with init_image (default 0.8, as diffusers;
  a strength without a picture is an error). A strength that runs no step (int(steps·strength) == 0)
  is an error naming the smallest strength that runs one. `check` gives these errors (field
  "strength" or "init_image"), as does a model without a VAE encoder (field "init_image").
* Unknown settings keys are errors: "unknown setting 'strenght' (did you mean 'strength'?)".
* The result of a run from a picture (`generate`/`explain`, and the worker's reply) has
  `start` = {strength, start_step, start_index, steps_run, t_start, signal, noise, init_latent,
  shape, width, height, transparent_pixels}; `start` is null for a run from noise:
  - start_step: diffusers' t_start, the first step that runs; steps 0 … start_step−1 are skipped
    (grey them out). steps_run = steps − start_step.
  - start_index: the first UNet call that runs (start_step · scheduler order; Heun has 2 calls a step).
    There are no step reports for skipped steps. Each report's `index` is its place among this
    run's UNet calls (0 for the first that runs, as the explainer store's steps list), while
    `schedule_index` and `step` count from the full schedule: the first report has
    schedule_index == start_index and step == start_step. Every report also has `start_step`
    (0 from noise), so a view can grey out the skipped steps while the run is going.
  - t_start: the timestep the picture's latent was noised to (= the first report's timestep).
  - signal, noise: the forward-process weights of that jump, x_{t_start} = signal·x_0 + noise·ε
    (sqrt(ᾱ_t) and sqrt(1−ᾱ_t) for DDIM/DDPM/PNDM/LCM; 1 and sigma for the Euler family, whose
    latents are x_0 + sigma·ε; alpha_t and sigma_t of sigma for DPM++/UniPC).
  - init_latent: x_0, the picture's latent (a Float32Array of `shape`, scaled like every latent).
  - width, height: the picture's size; transparent_pixels: how many were composited on white.
  The result's `settings` carry no picture and no strength (a re-run from them is a run from noise).
  timings.encode_ms is the VAE encoder's time.
* `window.sdlens.encode({width, height, rgba}, seed)` (worker message "encode") → {latent, mean,
  shape, transparent_pixels}: the picture's latent x_0 drawn exactly as a run with that seed draws it,
  and the mean of the encoder's distribution (both Float32Arrays, scaled). The worker fetches the VAE
  encoder's files the first time a picture is used (a "download" message with component
  "vae_encoder"), not when the model loads.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from .errors import SdlensError

DEFAULT_STRENGTH = 0.8  # diffusers' default
# diffusers' DiagonalGaussianDistribution clamps the log-variance to this range before exp
LOGVAR_MIN, LOGVAR_MAX = -30.0, 20.0


@dataclass(frozen=True)
class InitImage:
    """The starting picture at the model's size: width×height RGB bytes (alpha already composited)."""

    width: int
    height: int
    rgb: bytes
    #: how many pixels were not opaque (composited on white): callers say so once
    transparent_pixels: int = 0


@dataclass
class Start:
    """Where an img2img run starts: what the explainer needs to grey out the skipped steps."""

    start_index: int  # the first UNet call that runs (diffusers' t_start · scheduler.order)
    start_step: int  # the first step that runs (diffusers' t_start); steps before it are skipped
    steps_run: int  # how many steps run: steps - start_step
    t_start: float  # the timestep the picture's latent is noised to (the first call's timestep)
    signal: float  # x_t = signal·x_0 + noise·ε (the scheduler's add_noise at t_start)
    noise: float
    init_latent: Any  # x_0: the picture's latent, scaled, as a runtime tensor


def as_bytes(value) -> bytes:
    """Pixel bytes from what a caller has: bytes, a memoryview, a list of ints, or (in Pyodide)
    a JavaScript Uint8Array."""
    if hasattr(value, "to_bytes") and not isinstance(value, int):  # a JavaScript typed array
        return bytes(value.to_bytes())
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value)
    if isinstance(value, (list, tuple)):
        try:
            return bytes(value)
        except (TypeError, ValueError):
            pass
    raise SdlensError("init_image.rgba must be the picture's RGBA bytes (a Uint8Array)")


def check_init_image(value, width: int, height: int) -> InitImage:
    """{width, height, rgba} at the model's size → an InitImage, or SdlensError saying what is wrong."""
    if isinstance(value, InitImage):
        return value
    if hasattr(value, "to_py") and not isinstance(value, dict):
        value = value.to_py(depth=1)
    if not isinstance(value, dict) or not {"width", "height", "rgba"} <= set(value):
        raise SdlensError("init_image must be a picture: {width, height, rgba} with RGBA bytes")
    unknown = sorted(set(value) - {"width", "height", "rgba"})
    if unknown:
        raise SdlensError(f"init_image has unknown keys: {', '.join(unknown)} (expected width, height, rgba)")
    w, h = value["width"], value["height"]
    if (w, h) != (width, height):
        raise SdlensError(f"init_image is {w}×{h} but this model works at {width}×{height}; "
                          "crop it to the model's shape and resize it first")
    rgba = as_bytes(value["rgba"])
    if len(rgba) != width * height * 4:
        raise SdlensError(f"init_image.rgba has {len(rgba)} bytes; a {width}×{height} RGBA picture has "
                          f"{width * height * 4}")
    rgb, transparent = composite_on_white(rgba)
    return InitImage(width, height, rgb, transparent)


def composite_on_white(rgba: bytes) -> tuple[bytes, int]:
    """RGBA → RGB over a white background: c·α + 255·(1 − α), rounded. Returns the bytes and how
    many pixels were not opaque."""
    pixels = len(rgba) // 4
    rgb = bytearray(pixels * 3)
    for channel in range(3):  # opaque pixels are copied as they are (slicing runs in C)
        rgb[channel::3] = rgba[channel::4]
    alpha = rgba[3::4]
    transparent = pixels - alpha.count(255)
    if transparent:
        for i, a in enumerate(alpha):
            if a != 255:
                for channel in range(3):
                    c = rgba[4 * i + channel]
                    rgb[3 * i + channel] = (c * a + 255 * (255 - a) + 127) // 255
    return bytes(rgb), transparent


def check_strength(strength, steps: int) -> float:
    """strength as a float in (0, 1] that runs at least one of `steps` steps, or SdlensError."""
    try:
        value = float(str(strength).strip()) if isinstance(strength, str) else float(strength)
    except (TypeError, ValueError):
        value = math.nan
    if isinstance(strength, bool) or not 0 < value <= 1:  # (NaN fails both comparisons)
        raise SdlensError(f"strength must be a number above 0 and at most 1, got {strength!r}")
    if steps_to_run(steps, value) == 0:
        smallest = next(s / 100 for s in range(1, 101) if steps_to_run(steps, s / 100) > 0)
        raise SdlensError(f"strength {value} runs no step of {steps} (int({steps} × {value}) = 0); "
                          f"use strength {smallest} or more, or more steps")
    return value


def steps_to_run(steps: int, strength: float) -> int:
    """How many of `steps` steps a run from a picture makes (diffusers' get_timesteps): the last ones."""
    return min(int(steps * strength), steps)


def first_step(steps: int, strength: float) -> int:
    """diffusers' t_start: the first step that runs; the steps before it are skipped."""
    return max(steps - steps_to_run(steps, strength), 0)


def sample_latent(parameters: list[float], noise: list[float], scaling_factor: float) -> list[float]:
    """The VAE encoder's output (mean ‖ log-variance, flat, batch 1) → a latent sample, scaled:
    scaling · (mean + exp(½·logvar)·noise), as diffusers' `latent_dist.sample(generator)` then
    `vae.config.scaling_factor * …`. `noise` has the size of the mean."""
    half = len(parameters) // 2
    mean, logvar = parameters[:half], parameters[half:]
    return [scaling_factor * (m + math.exp(0.5 * min(max(v, LOGVAR_MIN), LOGVAR_MAX)) * n)
            for m, v, n in zip(mean, logvar, noise)]
