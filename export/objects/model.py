"""The objects model's architecture: the default model's SD classes (see export/shapes/model.py),
sized for a world of detailed, many-coloured emoji.

* 64x64 pictures, AutoencoderKL x8 to 8x8x8 latents, as for shapes: the 3x3 grid of positions is
  resolved at 8x8, and an 8x8 latent keeps a UNet step cheap enough for one CPU core. The VAE is
  wider than shapes' (emoji have inner detail: eyes, windows, seeds).
* UNet2DConditionModel 8x8 -> 4x4 -> 2x2, wider than shapes' (24 objects to tell apart, not 5
  outlines) but kept to 5.5M parameters so that the browser's fp32 download stays under 40 MB
  (text encoder ~9.9 MB at hidden 48 + UNet ~22 MB + VAE decoder).
* Text encoder: CLIPTextModel, real vocabulary, hidden 48, 3 layers (shapes' size).
* Trained under bf16 autocast (the world's `bf16_autocast`), 1.76x faster than fp32 here.

Measured at one thread (train-tiny's plan, bf16): UNet+text step at batch 32 2.69/s, VAE step on
32x32 crops at batch 16 5.76/s, on whole pictures at batch 8 3.84/s. A (64, 128, 192) UNet
(10.7M) cost 0.36 s per step at batch 32 and would be ~43 MB in fp32 alone, over the 40 MB
download; (64, 96, 128) is 5.5M. 64x64 rather than 32x32: at 32x32 a small object is 10 pixels
wide, too few for a cat's face, and the x8 VAE would leave a 4x4 latent, coarser than the 3x3
places. `REDUCED` keeps the wiring at toy widths for tests.
"""

from __future__ import annotations

from dataclasses import replace

from ..shapes.model import FULL as SHAPES_FULL, ModelConfig
from .scenes import IMAGE_SIZE

FULL = replace(
    SHAPES_FULL, name="full", image_size=IMAGE_SIZE, vae_channels=(32, 64, 96, 96), vae_groups=4,
    unet_channels=(64, 96, 128), unet_groups=8, unet_heads=4, scenes=24000, vae_batch=16, unet_batch=32,
    vae_edge_weight=1.0,
)
REDUCED = replace(
    FULL, name="reduced", vae_channels=(8, 8, 16, 16), vae_groups=2, unet_channels=(16, 16, 32), unet_groups=4,
    unet_heads=2, text_hidden=32, text_layers=1, text_heads=2, text_intermediate=64, scenes=256, vae_batch=4,
    unet_batch=8,
)
CONFIGS = {c.name: c for c in (FULL, REDUCED)}
