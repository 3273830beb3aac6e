"""sdlens.forward (the forward-process view's Python): ᾱ from the model's scheduler config, the
weights at t, and the run's own ε, which with x₀ gives exactly the latent an img2img run starts from."""

from __future__ import annotations

import json

import numpy as np
import pytest

import serve
from sdlens.forward import alphas_cumprod, noised, predicted_noise, run_noise, squared_error, weights

DEFAULT_MODEL = serve.ROOT / "models" / "shapes"


def test_weights_are_the_square_roots_of_alpha_bar():
    config = {"num_train_timesteps": 1000, "beta_start": 0.00085, "beta_end": 0.012, "beta_schedule": "scaled_linear"}
    alphas = alphas_cumprod(config)
    assert len(alphas) == 1000 and alphas[0] > alphas[500] > alphas[999] > 0
    for t in (0, 250, 999):
        signal, noise = weights(alphas, t)
        assert signal == pytest.approx(alphas[t] ** 0.5, rel=1e-6)
        assert signal ** 2 + noise ** 2 == pytest.approx(1.0, abs=1e-6)
    with pytest.raises(ValueError):
        weights(alphas, 1000)


@pytest.mark.skipif(not (DEFAULT_MODEL / "manifest.json").is_file(), reason="models/shapes is not built")
def test_x_t_at_the_start_is_the_latent_an_img2img_run_starts_from():
    from sdlens.cpython.runtime import OnnxRuntime
    from sdlens.model import Model
    from sdlens.pipeline import Pipeline, Settings

    pipeline = Pipeline(Model.from_dir(str(DEFAULT_MODEL)), OnnxRuntime())
    rgba = np.full((64, 64, 4), 248, np.uint8)
    rgba[20:44, 20:44, :3] = (220, 30, 35)
    first = []
    result = pipeline.generate(Settings(prompt="a red square", seed=7, steps=10, init_image={
        "width": 64, "height": 64, "rgba": rgba.tobytes()}, strength=0.5),
        on_step=lambda trace: first.append(np.asarray(pipeline.runtime.read(trace.latent))) if not first else None)
    start = result.start
    x0 = np.asarray(pipeline.runtime.read(start.init_latent), np.float32)
    manifest = json.loads((DEFAULT_MODEL / "manifest.json").read_text())
    signal, noise = weights(alphas_cumprod(manifest["scheduler_config"]), int(start.t_start))
    eps = np.array(run_noise(7, start.init_latent.shape, from_picture=True), np.float32)
    expected = np.float32(signal) * x0 + np.float32(noise) * eps
    assert np.abs(first[0] - expected).max() <= 1e-5 * np.abs(expected).max()


def test_squared_error_is_the_mean_of_the_squares():
    assert squared_error([1.0, 0.0, -1.0, 2.0], [0.0, 0.0, 1.0, 2.0]) == pytest.approx((1 + 0 + 4 + 0) / 4)
    with pytest.raises(ValueError, match="same latent"):
        squared_error([1.0], [1.0, 2.0])


@pytest.mark.skipif(not (DEFAULT_MODEL / "manifest.json").is_file(), reason="models/shapes is not built")
def test_the_trained_unet_predicts_the_noise_that_made_x_t():
    """Training's question, asked of the shipped model: from x_t it predicts ε far better than a
    guess of zero, and better from a clean picture with its caption than from another caption."""
    from sdlens.cpython.runtime import OnnxRuntime
    from sdlens.model import Model
    from sdlens.pipeline import Pipeline, Settings

    pipeline = Pipeline(Model.from_dir(str(DEFAULT_MODEL)), OnnxRuntime())
    prompt = "a big red circle in the center, white background"
    x0 = pipeline.generate(Settings(prompt=prompt, seed=3, steps=20)).latents
    alphas = alphas_cumprod(pipeline.model.manifest["scheduler_config"])
    eps = run_noise(5, x0.shape)
    x_t = noised(pipeline.runtime, x0, pipeline.runtime.floats(eps, x0.shape), 500, alphas)
    loss = squared_error(pipeline.runtime.read(predicted_noise(pipeline, x_t, 500, prompt)), eps)
    zero = squared_error([0.0] * len(eps), eps)
    other = squared_error(pipeline.runtime.read(predicted_noise(pipeline, x_t, 500, "a small blue star at the top, black background")), eps)
    print(f"t=500: loss {loss:.4f} with its caption, {other:.4f} with another, {zero:.4f} for zero")
    assert loss < 0.5 * zero and loss < other
