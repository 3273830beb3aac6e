"""Each exported graph checked against the PyTorch module it came from, on the same inputs."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import onnxruntime as ort


def torch_references(pipe, seed: int = 0) -> dict[str, tuple[dict, np.ndarray]]:
    """component → (ONNX feeds, PyTorch output) on fixed random inputs of the model's native size."""
    import torch

    g = torch.Generator().manual_seed(seed)
    unet, vae, text_encoder = pipe.unet, pipe.vae, pipe.text_encoder
    scale = 2 ** (len(vae.config.block_out_channels) - 1)
    size = unet.config.sample_size
    size = size if isinstance(size, int) else size[0]
    ids = pipe.tokenizer("a photo of a red circle", padding="max_length",
                         max_length=pipe.tokenizer.model_max_length, truncation=True, return_tensors="pt").input_ids
    sample = torch.randn(2, unet.config.in_channels, size, size, generator=g)
    timestep = torch.tensor(500.0)
    context = torch.randn(2, ids.shape[1], unet.config.cross_attention_dim, generator=g)
    latent = torch.randn(1, vae.config.latent_channels, size, size, generator=g)
    image = torch.rand(1, 3, size * scale, size * scale, generator=g) * 2 - 1
    with torch.no_grad():
        refs = {
            "text_encoder": ({"input_ids": ids}, text_encoder(ids)[0]),
            "unet": ({"sample": sample, "timestep": timestep, "encoder_hidden_states": context},
                     unet(sample, timestep, context).sample),
            "vae_decoder": ({"latent_sample": latent}, vae.decode(latent).sample),
            "vae_encoder": ({"sample": image}, vae.encode(image).latent_dist.parameters),
        }
    return {k: ({n: t.numpy() for n, t in feeds.items()}, out.numpy()) for k, (feeds, out) in refs.items()}


def check(onnx_path: Path, reference: tuple[dict, np.ndarray]) -> dict:
    """Run the graph on the reference inputs; report its largest deviation from PyTorch."""
    feeds, expected = reference
    options = ort.SessionOptions()
    options.log_severity_level = 3
    session = ort.InferenceSession(os.fspath(onnx_path), options, providers=["CPUExecutionProvider"])
    (got,) = session.run([session.get_outputs()[0].name], feeds)
    err = float(np.max(np.abs(got.astype(np.float64) - expected)))
    scale = float(np.max(np.abs(expected)))
    return {"max_abs_err": err, "ref_max_abs": scale, "rel_err": err / scale if scale else err}


def format_report(report: dict) -> str:
    lines = ["parity vs PyTorch (max abs error / max |reference|):"]
    variants = list(next(iter(report.values())))
    lines.append(f"  {'component':<14}" + "".join(f"{v:>22}" for v in variants))
    for component, per in report.items():
        cells = "".join(
            f"{per[v]['max_abs_err']:>11.2e} /{per[v]['ref_max_abs']:>9.2e}" if v in per else f"{'-':>22}"
            for v in variants
        )
        lines.append(f"  {component:<14}{cells}")
    return "\n".join(lines)
