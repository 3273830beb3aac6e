"""The forward-process view's pictures, for the worker: x_t from a run's own x₀ and ε, computed on
the runtime (WebGPU or WASM) and drawn by the same decoder as every other latent the page shows."""

from __future__ import annotations

from ..forward import alphas_cumprod, noised, predicted_noise, run_noise, squared_error, weights


def schedule(session) -> list[float]:
    """ᾱ_t over the training timesteps, for the view's curve."""
    return alphas_cumprod(session.model.manifest["scheduler_config"])


def forward(session, x0_f32, shape, t: int, seed: int, from_picture: bool, prompt: str = "") -> dict:
    """x_t = √ᾱ_t·x₀ + √(1−ᾱ_t)·ε at training timestep t, and training's question about it: the
    UNet's ε̂ from x_t, t and the prompt, against the true ε. Returns {latent, rgb, width, height, by}
    for x_t, `eps` and `predicted` (the two noises, each with its picture), `loss` (the mean of
    (ε̂ − ε)²), `eps_mean_square` (the loss of guessing ε̂ = 0), signal, noise, alpha_bar and t.
    ε is the run's own noise (from its seed)."""
    shape = tuple(int(n) for n in shape)
    alphas = schedule(session)
    runtime = session.runtime
    x0 = runtime.floats(x0_f32, shape)
    eps_values = run_noise(int(seed), shape, bool(from_picture))
    eps = runtime.floats(eps_values, shape)
    x_t = noised(runtime, x0, eps, int(t), alphas)
    eps_hat = predicted_noise(session.pipeline, x_t, int(t), str(prompt))
    signal, noise = weights(alphas, int(t))
    latent, eps_hat_f32 = runtime.read_f32(x_t), runtime.read_f32(eps_hat)
    return {**session.decode(latent, list(shape)), "latent": latent,
            "signal": signal, "noise": noise, "alpha_bar": alphas[int(t)], "t": int(t),
            "eps": _noise_drawn(session, eps, (int(seed), shape, bool(from_picture))),
            "predicted": {"latent": eps_hat_f32, **session.decode(eps_hat_f32, list(shape))},
            "loss": squared_error(eps_hat_f32.to_py().tolist(), eps_values),  # (one read of ε̂, not two)
            "eps_mean_square": squared_error([0.0] * len(eps_values), eps_values)}


# ε is the same at every t: moving the slider draws it once, not once a move.
_last_noise: dict = {}


def _noise_drawn(session, eps, key) -> dict:
    """ε read back and decoded ({latent, rgb, width, height, by}), kept for the last (session, seed, shape, kind)."""
    if _last_noise.get("session") is not session or _last_noise.get("key") != key:
        eps_f32 = session.runtime.read_f32(eps)
        _last_noise.update(session=session, key=key, drawn={"latent": eps_f32, **session.decode(eps_f32, list(key[1]))})
    return _last_noise["drawn"]
