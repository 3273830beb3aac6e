"""The Stable Diffusion families sdlens runs, written down once: the configs of their UNet, text
encoder, VAE and scheduler, and the settings each is meant to be used with.

The configs are those published with the models (the `config.json` / `scheduler_config.json` of
stabilityai/sd-turbo, stabilityai/stable-diffusion-2-1-base, stabilityai/stable-diffusion-2-1 and
runwayml/stable-diffusion-v1-5), copied here because no hub is reachable. `build_pipeline` makes a
random-weight diffusers pipeline of a family, at full size (the benchmark: SD-Turbo is a 865.9 M
parameter UNet, a 340.4 M OpenCLIP ViT-H text encoder, an 83.7 M VAE) or at reduced width (the
tests): same block types, depths, attention layout, prediction type and scheduler, fewer channels
and a smaller image.

`python -m export family NAME OUT [--reduced]` writes one as a diffusers folder, ready for
`python -m export convert`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

# SD's noise schedule, shared by every family here.
_SCHEDULE = {
    "beta_start": 0.00085, "beta_end": 0.012, "beta_schedule": "scaled_linear", "num_train_timesteps": 1000,
    "trained_betas": None, "clip_sample": False, "set_alpha_to_one": False, "skip_prk_steps": True,
    "steps_offset": 1,
}

_SD2_UNET = {
    "act_fn": "silu", "attention_head_dim": [5, 10, 20, 20], "block_out_channels": [320, 640, 1280, 1280],
    "center_input_sample": False, "cross_attention_dim": 1024,
    "down_block_types": ["CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"],
    "downsample_padding": 1, "dual_cross_attention": False, "flip_sin_to_cos": True, "freq_shift": 0,
    "in_channels": 4, "layers_per_block": 2, "mid_block_scale_factor": 1, "norm_eps": 1e-05,
    "norm_num_groups": 32, "num_class_embeds": None, "only_cross_attention": False, "out_channels": 4,
    "sample_size": 64, "up_block_types": ["UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D",
                                          "CrossAttnUpBlock2D"],
    "use_linear_projection": True,
}
_SD1_UNET = {**_SD2_UNET, "attention_head_dim": 8, "cross_attention_dim": 768, "use_linear_projection": False}

# OpenCLIP ViT-H/14, its last layer dropped (SD 2 conditions on the penultimate layer).
_OPENCLIP_H = {
    "vocab_size": 49408, "hidden_size": 1024, "intermediate_size": 4096, "num_hidden_layers": 23,
    "num_attention_heads": 16, "max_position_embeddings": 77, "hidden_act": "gelu", "projection_dim": 512,
    "layer_norm_eps": 1e-05, "bos_token_id": 0, "eos_token_id": 2, "pad_token_id": 1,
}
# OpenAI CLIP ViT-L/14.
_CLIP_L = {**_OPENCLIP_H, "hidden_size": 768, "intermediate_size": 3072, "num_hidden_layers": 12,
           "num_attention_heads": 12, "hidden_act": "quick_gelu", "projection_dim": 768}

_VAE = {
    "act_fn": "silu", "block_out_channels": [128, 256, 512, 512],
    "down_block_types": ["DownEncoderBlock2D"] * 4, "up_block_types": ["UpDecoderBlock2D"] * 4,
    "in_channels": 3, "out_channels": 3, "latent_channels": 4, "layers_per_block": 2,
    "norm_num_groups": 32, "sample_size": 512, "scaling_factor": 0.18215,
}


@dataclass(frozen=True)
class Family:
    name: str
    unet: dict
    text_encoder: dict
    vae: dict
    scheduler: dict
    #: SD 2's tokenizer pads with "!" (id 0), SD 1's with <|endoftext|>.
    pad_token: str
    #: What the model is meant to be run with (carried into the manifest's defaults).
    defaults: dict = field(default_factory=dict)

    @property
    def image_size(self) -> int:
        return self.unet["sample_size"] * 2 ** (len(self.vae["block_out_channels"]) - 1)


FAMILIES = {
    f.name: f for f in [
        Family("sd-turbo", _SD2_UNET, _OPENCLIP_H, _VAE,
               {"_class_name": "EulerDiscreteScheduler", **_SCHEDULE, "interpolation_type": "linear",
                "prediction_type": "epsilon", "timestep_spacing": "trailing", "use_karras_sigmas": False},
               pad_token="!", defaults={"steps": 1, "guidance": 0.0, "scheduler": "euler"}),
        Family("sd2.1-base", _SD2_UNET, _OPENCLIP_H, _VAE,
               {"_class_name": "PNDMScheduler", **_SCHEDULE, "prediction_type": "epsilon"},
               pad_token="!"),
        Family("sd2.1", {**_SD2_UNET, "sample_size": 96}, _OPENCLIP_H, {**_VAE, "sample_size": 768},
               {"_class_name": "DDIMScheduler", **_SCHEDULE, "prediction_type": "v_prediction"},
               pad_token="!"),
        Family("sd1.5", _SD1_UNET, _CLIP_L, _VAE,
               {"_class_name": "PNDMScheduler", **_SCHEDULE},
               pad_token="<|endoftext|>"),
    ]
}


def reduced(family: Family) -> Family:
    """The same family at reduced width and image size: every block type, depth, attention layout
    and the scheduler kept; 1/20 of the channels (group norms of 8 channels), 16² latents (128²
    images at SD's 8× VAE), 2 text layers."""
    heads = family.unet["attention_head_dim"]
    unet = {**family.unet, "block_out_channels": [16, 32, 64, 64], "sample_size": 16, "norm_num_groups": 8,
            "attention_head_dim": [max(1, h // 5) for h in heads] if isinstance(heads, list) else 2}
    text = {**family.text_encoder, "hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2,
            "num_attention_heads": 4, "projection_dim": 32}
    unet["cross_attention_dim"] = text["hidden_size"]
    vae = {**family.vae, "block_out_channels": [16, 16, 32, 32], "sample_size": 128, "norm_num_groups": 8}
    return Family(family.name + "-reduced", unet, text, vae, family.scheduler, family.pad_token, family.defaults)


def build_pipeline(family: Family, tokenizer, seed: int = 0):
    """A random-weight StableDiffusionPipeline of `family` (weights from fixed seeds)."""
    import diffusers
    import torch
    from diffusers import AutoencoderKL, StableDiffusionPipeline, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel

    torch.manual_seed(seed)
    unet = UNet2DConditionModel(**family.unet)
    torch.manual_seed(seed + 1)
    vae = AutoencoderKL(**family.vae)
    torch.manual_seed(seed + 2)
    text_encoder = CLIPTextModel(CLIPTextConfig(**family.text_encoder))
    scheduler_class = getattr(diffusers, family.scheduler["_class_name"])
    scheduler = scheduler_class.from_config({k: v for k, v in family.scheduler.items() if k != "_class_name"})
    for module in (unet, vae, text_encoder):
        module.eval()
    return StableDiffusionPipeline(unet=unet, vae=vae, text_encoder=text_encoder, tokenizer=tokenizer,
                                   scheduler=scheduler, safety_checker=None, feature_extractor=None,
                                   requires_safety_checker=False)


def write_pipeline(family: Family, out: Path, seed: int = 0) -> None:
    """The family as a diffusers folder, with the real CLIP vocabulary and the family's pad token,
    and its intended settings in `sdlens_extras.json` (which `export convert` carries over)."""
    from transformers import CLIPTokenizer

    from .clip_vocab import write_clip_tokenizer

    out = Path(out)
    write_clip_tokenizer(out / "tokenizer")
    tokenizer = CLIPTokenizer.from_pretrained(out / "tokenizer", pad_token=family.pad_token)
    tokenizer.save_pretrained(out / "tokenizer")
    for extra in ("added_tokens.json", "tokenizer.json"):
        (out / "tokenizer" / extra).unlink(missing_ok=True)
    pipe = build_pipeline(family, tokenizer, seed)
    pipe.save_pretrained(out, safe_serialization=True)
    extras = {"description": f"random-weight {family.name} (export family, seed {seed})"}
    if family.defaults:
        extras["defaults"] = family.defaults
    (out / "sdlens_extras.json").write_text(json.dumps(extras, indent=2) + "\n")
