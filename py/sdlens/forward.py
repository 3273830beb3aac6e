"""The forward process: a clean latent x₀ noised to timestep t in one jump.

    x_t = √ᾱ_t · x₀ + √(1 − ᾱ_t) · ε        ᾱ_t = (1 − β_0)(1 − β_1)…(1 − β_t)

This is how the UNet was trained: take a picture's latent x₀, draw noise ε and a timestep t, make
x_t as above, and ask the UNet to predict ε from x_t and t (and the picture's caption); the loss
is the mean of (ε̂ − ε)² over the latent's numbers. Generating runs it the other way: from
noise, each step removes the noise the UNet predicts. A run from a picture (img2img) starts with
exactly this jump, to the timestep of its first step.

The β's and ᾱ's are the model's own (its scheduler config), as float32 tables like diffusers'.
"""

from __future__ import annotations

import math

from .rng import Generator
from .schedulers.base import Scheduler, f32


def alphas_cumprod(scheduler_config: dict) -> list[float]:
    """ᾱ_t for t = 0 … num_train_timesteps − 1, from a diffusers scheduler config."""
    return Scheduler(scheduler_config).alphas_cumprod


def weights(alphas: list[float], t: int) -> tuple[float, float]:
    """(√ᾱ_t, √(1 − ᾱ_t)): how much of x₀ and of ε make x_t (float32, as diffusers' add_noise)."""
    if not 0 <= t < len(alphas):
        raise ValueError(f"t must be a training timestep, 0 … {len(alphas) - 1}, got {t}")
    alpha_bar = alphas[t]
    return f32(math.sqrt(alpha_bar)), f32(math.sqrt(f32(1.0 - alpha_bar)))


def run_noise(seed: int, shape, from_picture: bool = False) -> list[float]:
    """The ε a run drew from its seed: a text-to-image run starts from it (x_T), a run from a
    picture draws the encoder's sample first and then this ε (diffusers' order), and adds it."""
    generator = Generator(seed)
    if from_picture:
        generator.randn(shape)  # the VAE encoder's sample comes first
    return generator.randn(shape)


def noised(ops, x0, eps, t: int, alphas: list[float]):
    """x_t on the runtime (one ops.combine): what the UNet would see at training timestep t."""
    signal, noise = weights(alphas, t)
    return ops.combine([(signal, x0), (noise, eps)])


def predicted_noise(pipeline, x_t, t: int, prompt: str):
    """ε̂: what the UNet predicts from x_t at training timestep t, with the prompt as the caption.
    Training shows it exactly this and compares the answer with the ε that made x_t."""
    context = pipeline.encode_text(pipeline.tokenizer.encode(prompt))
    return pipeline.predict_noise(x_t, float(t), context)


def squared_error(predicted: list[float], eps: list[float]) -> float:
    """Training's loss for one picture: the mean of (ε̂ − ε)² over every number of the latent."""
    if len(predicted) != len(eps) or not eps:
        raise ValueError(f"ε̂ has {len(predicted)} numbers and ε {len(eps)}: they must be the same latent")
    return sum((a - b) ** 2 for a, b in zip(predicted, eps)) / len(eps)
