"""Each exported graph checked against the PyTorch module it came from, on the same inputs."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import onnxruntime as ort


COMPONENTS = ("text_encoder", "unet", "vae_decoder", "vae_encoder")


def torch_reference(component: str, module, sample_size: int, tokenizer=None, seed: int = 0) -> tuple[dict, np.ndarray]:
    """(ONNX feeds, PyTorch output) of one component on fixed random inputs of the model's native
    size. `module` is the text encoder, the UNet or the VAE (for both VAE halves). convert calls it
    just before exporting that component: reading a module's weights makes them resident, so at
    SD size computing every reference first would keep the 3.5 GB UNet in memory while the others
    are traced (measured: the export's peak)."""
    import torch

    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        if component == "text_encoder":
            ids = tokenizer("a photo of a red circle", padding="max_length", max_length=tokenizer.model_max_length,
                            truncation=True, return_tensors="pt").input_ids
            feeds, out = {"input_ids": ids}, module(ids)[0]
        elif component == "unet":
            sample = torch.randn(2, module.config.in_channels, sample_size, sample_size, generator=g)
            timestep = torch.tensor(500.0)
            context = torch.randn(2, tokenizer.model_max_length if tokenizer else 77, module.config.cross_attention_dim,
                                  generator=g)
            feeds = {"sample": sample, "timestep": timestep, "encoder_hidden_states": context}
            out = module(sample, timestep, context).sample
        elif component == "vae_decoder":
            latent = torch.randn(1, module.config.latent_channels, sample_size, sample_size, generator=g)
            feeds, out = {"latent_sample": latent}, module.decode(latent).sample
        elif component == "vae_encoder":
            scale = 2 ** (len(module.config.block_out_channels) - 1)
            image = torch.rand(1, 3, sample_size * scale, sample_size * scale, generator=g) * 2 - 1
            feeds, out = {"sample": image}, module.encode(image).latent_dist.parameters
        else:
            raise ValueError(f"unknown component {component!r}")
    return {n: t.numpy() for n, t in feeds.items()}, out.numpy()


def torch_references(pipe, seed: int = 0) -> dict[str, tuple[dict, np.ndarray]]:
    """component → (ONNX feeds, PyTorch output), every component of a pipeline at once."""
    size = pipe.unet.config.sample_size
    size = size if isinstance(size, int) else size[0]
    modules = {"text_encoder": pipe.text_encoder, "unet": pipe.unet, "vae_decoder": pipe.vae, "vae_encoder": pipe.vae}
    return {c: torch_reference(c, modules[c], size, pipe.tokenizer, seed) for c in COMPONENTS}


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
