"""The optional preview decoder: TAESD (diffusers' `AutoencoderTiny`) decoder, for per-step pictures.

SD's VAE decoder costs ~29 s per 512² image in the browser on WASM, far too much to show every
step's x̂₀. TAESD's decoder (1.2 M parameters) makes a close picture from the same latents in a
small fraction of that. The final image always comes from the real VAE; this is for previews.

How a runtime uses it (recorded in the manifest, see `export.manifest`): divide SD's latents by
`scaling_factor` (TAESD for SD: 1.0, it takes SD's *scaled* latents as they are; diffusers'
pipelines do the same, `latents / vae.config.scaling_factor`), run the graph, and map its output
from [-1, 1] to pixels exactly as for the VAE (`x / 2 + 0.5`, clamped): `DecoderTiny.forward`
ends in `x.mul(2).sub(1)`.

A preview need not have the final image's size: the strip shows thumbnails and the explainer's x̂₀
views a few hundred pixels. At 512² TAESD's full-resolution convolutions cost ~12 % of a UNet
step (measured natively), so above `PREVIEW_MAX_PX` the runtime first averages the latent over
`preview_pool`² cells (recorded in the manifest; `runtime.pool`) and the graph decodes a half-size
(or smaller) picture: a quarter of the cost, the same picture at a lower resolution. The graph
itself decodes at any size, so the same file is also the *fast final decoder*: the whole latent
in, a full-size picture out (sdlens.fast_decoder).

Models exported before that baked the averaging into the graph and recorded `input_pool`; their
preview decoder still draws previews, but cannot draw a full-size picture.
"""

from __future__ import annotations

import warnings
from pathlib import Path

from sdlens.errors import SdlensError

from .sources import hub_or_folder

INPUT = "latent_sample"
OUTPUT = "sample"
#: Previews are decoded at most about this many pixels wide (see the module doc).
PREVIEW_MAX_PX = 256


def preview_pool(image_px: int) -> int:
    """The power of two the latent is averaged down by, so that the preview is at most about
    PREVIEW_MAX_PX wide: 1 up to 511 px, 2 at 512–1023 px (SD 1.5, SD 2.1 at 768), and so on."""
    pool = 1
    while image_px // (2 * pool) >= PREVIEW_MAX_PX:
        pool *= 2
    return pool


def load_preview_decoder(src: str):
    """An AutoencoderTiny from a folder or (online) a hub id such as madebyollin/taesd: the same code."""
    from diffusers import AutoencoderTiny

    local = hub_or_folder(src, marker="config.json", what="an AutoencoderTiny (TAESD) folder")
    try:
        return AutoencoderTiny.from_pretrained(src, local_files_only=local).eval()
    except Exception as err:  # diffusers raises many kinds; the user needs one line
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise SdlensError(f"could not load {src} as a TAESD preview decoder: {first}") from err


def decode(taesd, latent, pool: int = 1):
    """A preview as PyTorch computes it: TAESD's decoder, on the latent averaged over pool² cells
    (the runtime's pool, then the exported graph)."""
    import torch

    if pool > 1:
        latent = torch.nn.functional.avg_pool2d(latent, pool)
    return taesd.decode(latent).sample


class _Decode:
    """The decoder alone, as the graph to export (diffusers' decode returns a dataclass)."""

    def __new__(cls, taesd):
        import torch

        class Decode(torch.nn.Module):
            def __init__(self):
                super().__init__()
                self.taesd = taesd

            def forward(self, latent_sample):
                return decode(self.taesd, latent_sample)

        return Decode().eval()


def check_fits(taesd, latent_channels: int, vae_scale_factor: int) -> None:
    """The preview decoder must take this model's latents and give its image size."""
    import torch

    if taesd.config.latent_channels != latent_channels:
        raise SdlensError(f"the preview decoder takes {taesd.config.latent_channels} latent channels; "
                          f"this model has {latent_channels}")
    with torch.no_grad():
        out = taesd.decode(torch.zeros(1, latent_channels, 2, 2)).sample
    if tuple(out.shape[1:]) != (3, 2 * vae_scale_factor, 2 * vae_scale_factor):
        raise SdlensError(f"the preview decoder upsamples latents {out.shape[-1] // 2}×; this model's VAE "
                          f"{vae_scale_factor}×")


def export_fp32(taesd, latent_size: int, out: Path) -> Path:
    """TorchScript-based ONNX export at opset 18 (as optimum uses), batch and size dynamic."""
    import torch

    out.parent.mkdir(parents=True, exist_ok=True)
    example = torch.zeros(1, taesd.config.latent_channels, latent_size, latent_size)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(_Decode(taesd), (example,), str(out), input_names=[INPUT], output_names=[OUTPUT],
                          dynamic_axes={INPUT: {0: "batch", 2: "height", 3: "width"},
                                        OUTPUT: {0: "batch", 2: "image_height", 3: "image_width"}},
                          opset_version=18, dynamo=False)
    return out


def reference(taesd, latent_size: int, seed: int = 0):
    """(feeds, PyTorch output) on random latents of SD's scaled range, for the parity check."""
    import torch

    g = torch.Generator().manual_seed(seed)
    latent = torch.randn(1, taesd.config.latent_channels, latent_size, latent_size, generator=g)
    with torch.no_grad():
        expected = decode(taesd, latent)
    return {INPUT: latent.numpy()}, expected.numpy()


def describe(taesd, src: str, pool: int = 1) -> dict:
    """What the runtime needs beyond the graph files."""
    return {
        "architecture": "AutoencoderTiny (TAESD) decoder",
        "source": src,
        "scaling_factor": float(taesd.config.scaling_factor),
        "output_range": [-1.0, 1.0],
        "preview_pool": pool,  # previews: the runtime averages the latent over pool² cells first
    }
