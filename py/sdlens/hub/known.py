"""The Hub repos sdlens knows by name: what their files do not say about themselves.

Everything a repo's own files carry (graph inputs and outputs, configs) is read from them; this
table holds only the rest: licences, the settings a model is meant to run with, and for the WebNN
repos (no configs, no tokenizer) the VAE scaling factor, the scheduler and where the tokenizer
comes from. Whatever a manifest takes from here is named in its `hub.from_table`, so the page can
say which numbers were not read from the model itself. Claims about the real repos were read from
their demos' code (shared notes, hub-layouts.md), not from the files: they are unchecked here.
"""

from __future__ import annotations

import os

#: Where the page and `sdlens fetch` find the Hub unless told otherwise (--hub-endpoint, HF_ENDPOINT).
DEFAULT_ENDPOINT = "https://huggingface.co"


def endpoint_from(value: str | None) -> str:
    """The Hub's address: `value`, else $HF_ENDPOINT (as huggingface_hub reads it), else the Hub."""
    return (value or os.environ.get("HF_ENDPOINT") or DEFAULT_ENDPOINT).rstrip("/")

#: SD 1.5's noise schedule (its scheduler_config.json), for Euler as the WebNN demo runs it.
SD15_EULER = {
    "_class_name": "EulerDiscreteScheduler",
    "num_train_timesteps": 1000,
    "beta_start": 0.00085,
    "beta_end": 0.012,
    "beta_schedule": "scaled_linear",
    "prediction_type": "epsilon",
    "timestep_spacing": "leading",
    "steps_offset": 1,
    "interpolation_type": "linear",
    "use_karras_sigmas": False,
}

#: The repo whose tokenizer/ folder SD 1.5's WebNN export was made with (CLIP ViT-L/14's BPE).
SD15_TOKENIZER = {"repo": "stable-diffusion-v1-5/stable-diffusion-v1-5", "folder": "tokenizer"}

KNOWN: dict[str, dict] = {
    "schmuell/sd-turbo-ort-web": {
        "title": "SD-Turbo (onnxruntime-web's example)",
        "licence": "Stability AI Non-Commercial Research Community License",
        "precision": "fp16",  # fp16 inside, float32 inputs and outputs
        "defaults": {"steps": 1, "guidance": 0.0, "scheduler": "euler"},
    },
    "microsoft/stable-diffusion-v1.5-webnn": {
        "title": "Stable Diffusion 1.5 (WebNN Developer Preview)",
        "licence": "CreativeML Open RAIL-M",
        "precision": "fp16",  # fp16 inputs and outputs too
        "files": {
            "text_encoder": "text-encoder.onnx",
            "unet": "sd-unet-v1.5-model-b2c4h64w64s77-float16-compute-and-inputs-layernorm.onnx",
            "vae_decoder": "Stable-Diffusion-v1.5-vae-decoder-float16-fp32-instancenorm.onnx",
        },
        "numbers": {"vae_scaling_factor": 0.18215, "scheduler_config": SD15_EULER, "tokenizer_max_length": 77},
        "tokenizer": SD15_TOKENIZER,
        "defaults": {"steps": 25, "guidance": 7.5, "scheduler": "euler"},
    },
}


def known(repo: str) -> dict:
    return KNOWN.get(repo, {})


def offered() -> list[dict]:
    """The repos the page offers by name, with what it says of each before looking them up."""
    return [{"repo": repo, "title": KNOWN[repo]["title"], "licence": KNOWN[repo]["licence"],
             "precision": KNOWN[repo]["precision"]} for repo in sorted(KNOWN)]
