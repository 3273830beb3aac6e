"""A linear map from the VAE's latent channels to RGB, for cheap per-step previews.

Decoding every step's latent with the VAE would cost as much as the step itself in the browser.
A 4→3 linear map (plus bias) fitted by least squares to what the VAE encoder makes of colourful
synthetic images is a good enough picture of a latent; it is stored in the manifest.
"""

from __future__ import annotations

import numpy as np


def synthetic_images(count: int, size: int, seed: int = 0):
    """Smooth random colour fields with sharp-edged blocks: a spread of colours and edges."""
    import torch
    import torch.nn.functional as F

    g = torch.Generator().manual_seed(seed)
    coarse = torch.rand(count, 3, 4, 4, generator=g)
    images = F.interpolate(coarse, size=(size, size), mode="bilinear", align_corners=False)
    for i in range(count):
        for _ in range(3):
            x0, y0 = torch.randint(0, size * 3 // 4, (2,), generator=g).tolist()
            w = int(torch.randint(size // 8, size // 3, (1,), generator=g))
            images[i, :, y0:y0 + w, x0:x0 + w] = torch.rand(3, 1, 1, generator=g)
    return images * 2 - 1  # the VAE's input range


def fit_latent_rgb(vae, image_size: int, count: int = 24) -> dict:
    import torch
    import torch.nn.functional as F

    scale = 2 ** (len(vae.config.block_out_channels) - 1)
    images = synthetic_images(count, image_size)
    with torch.no_grad():
        latents = vae.encode(images).latent_dist.mean * vae.config.scaling_factor
    targets = F.avg_pool2d((images + 1) / 2, scale)  # RGB in [0, 1] at latent resolution
    x = latents.permute(0, 2, 3, 1).reshape(-1, latents.shape[1]).double().numpy()
    y = targets.permute(0, 2, 3, 1).reshape(-1, 3).double().numpy()
    design = np.hstack([x, np.ones((len(x), 1))])
    solution, *_ = np.linalg.lstsq(design, y, rcond=None)
    return {"weights": solution[:-1].round(6).tolist(), "bias": solution[-1].round(6).tolist()}
