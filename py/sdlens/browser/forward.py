"""The forward-process view's pictures, for the worker: x_t from a run's own x₀ and ε, computed on
the runtime (WebGPU or WASM) and drawn by the same decoder as every other latent the page shows."""

from __future__ import annotations

from ..forward import alphas_cumprod, noised, run_noise, weights


def schedule(session) -> list[float]:
    """ᾱ_t over the training timesteps, for the view's curve."""
    return alphas_cumprod(session.model.manifest["scheduler_config"])


def forward(session, x0_f32, shape, t: int, seed: int, from_picture: bool) -> dict:
    """x_t = √ᾱ_t·x₀ + √(1−ᾱ_t)·ε at training timestep t, decoded: {latent, rgb, width, height, by,
    signal, noise, alpha_bar, t}. ε is the run's own noise (from its seed)."""
    shape = tuple(int(n) for n in shape)
    alphas = schedule(session)
    runtime = session.runtime
    x0 = runtime.floats(x0_f32, shape)
    eps = runtime.floats(run_noise(int(seed), shape, bool(from_picture)), shape)
    latent = runtime.read_f32(noised(runtime, x0, eps, int(t), alphas))
    picture = session.decode(latent, list(shape))
    signal, noise = weights(alphas, int(t))
    return {**picture, "latent": latent, "signal": signal, "noise": noise, "alpha_bar": alphas[int(t)], "t": int(t)}

