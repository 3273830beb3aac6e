"""A linear map from the VAE's latent channels to RGB, for cheap per-step previews.

Decoding every step's latent with the VAE would cost as much as the step itself in the browser.
A 4→3 linear map (plus bias) fitted by least squares to what the VAE encoder makes of colourful
synthetic images is a good enough picture of a latent; it is stored in the manifest.

The fit itself is numpy only, so that `export import` (ONNX in, no PyTorch) fits it with the
ONNX VAE encoder just as `export convert` does with the PyTorch one.
"""

from __future__ import annotations

import numpy as np


def _resize_bilinear(coarse: np.ndarray, size: int) -> np.ndarray:
    """[n, c, h, w] → [n, c, size, size], half-pixel centres (torch's align_corners=False)."""
    def weights(n_in):
        pos = np.clip((np.arange(size) + 0.5) * n_in / size - 0.5, 0, n_in - 1)
        lo = np.floor(pos).astype(int)
        hi = np.minimum(lo + 1, n_in - 1)
        m = np.zeros((size, n_in))
        m[np.arange(size), lo] += 1 - (pos - lo)
        m[np.arange(size), hi] += pos - lo
        return m

    rows, cols = weights(coarse.shape[2]), weights(coarse.shape[3])
    return np.einsum("yh,nchw,xw->ncyx", rows, coarse, cols)


def synthetic_image(index: int, size: int, seed: int = 0) -> np.ndarray:
    """One [1, 3, size, size] image in [-1, 1]: a smooth random colour field with three sharp-edged
    blocks (a spread of colours and edges). Made one at a time, so no batch is ever held."""
    rng = np.random.default_rng([seed, index])
    image = _resize_bilinear(rng.random((1, 3, 4, 4)), size)
    for _ in range(3):
        x0, y0 = rng.integers(0, size * 3 // 4, 2)
        w = int(rng.integers(size // 8, size // 3))
        image[0, :, y0:y0 + w, x0:x0 + w] = rng.random((3, 1, 1))
    return (image * 2 - 1).astype(np.float32)  # the VAE's input range


# The map is local (a latent pixel's colour), so images beyond this size add cost, not information:
# 12 images of 256² give 12,288 latent pixels for 15 numbers. At SD size one 512² encode costs
# ~18 CPU-seconds; the fit stays under a CPU-minute.
FIT_IMAGE_SIZE = 256
FIT_COUNT = 12


def fit(encode, image_size: int, scale: int, count: int = FIT_COUNT) -> dict:
    """Least squares over `count` synthetic images, each encoded on its own by
    `encode(image [1, 3, H, W] in [-1, 1]) → scaled latents [1, C, H/scale, W/scale]`.

    One 512² image through SD's VAE encoder takes ~1.5 GB of activations; a batch of 24 took more
    than 16 GB. So the normal equations (XᵀX and Xᵀy, a few numbers) are summed image by image and
    the memory stays that of one image, whatever `count` and the resolution."""
    image_size = min(image_size, FIT_IMAGE_SIZE)
    xtx = xty = 0.0
    for index in range(count):
        image = synthetic_image(index, image_size)
        latents = np.asarray(encode(image), np.float64)
        rgb = (image[0] + 1) / 2
        target = rgb.reshape(3, image_size // scale, scale, image_size // scale, scale).mean(axis=(2, 4))
        x = latents[0].reshape(latents.shape[1], -1).T
        design = np.hstack([x, np.ones((len(x), 1))])
        y = target.reshape(3, -1).T
        xtx = xtx + design.T @ design
        xty = xty + design.T @ y
    solution = np.linalg.lstsq(xtx, xty, rcond=None)[0]  # least norm where channels are collinear
    return {"weights": solution[:-1].round(6).tolist(), "bias": solution[-1].round(6).tolist()}


def fit_latent_rgb(vae, image_size: int, count: int = FIT_COUNT) -> dict:
    """The fit for a diffusers AutoencoderKL (PyTorch)."""
    import torch

    def encode(image):
        with torch.no_grad():
            return (vae.encode(torch.from_numpy(image)).latent_dist.mean * vae.config.scaling_factor).numpy()

    return fit(encode, image_size, 2 ** (len(vae.config.block_out_channels) - 1), count)
