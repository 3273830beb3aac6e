"""`python -m export tiny OUT`: a small random-weight Stable Diffusion pipeline in diffusers format.

It has the real architecture and classes (CLIPTextModel, UNet2DConditionModel, AutoencoderKL,
SD's noise schedule) and the real CLIP vocabulary, at a size that exports and runs in seconds.
Weights come from fixed seeds, so two builds are identical. The tests use it, the way diffusers'
own tests build tiny pipelines from configs.
"""

from __future__ import annotations

import json
from pathlib import Path

# SD 1.x's noise schedule, as in runwayml/stable-diffusion-v1-5's scheduler_config.json,
# written for DDIM (the classes of the other schedulers read the same keys).
SD_SCHEDULER_CONFIG = {
    "_class_name": "DDIMScheduler",
    "beta_start": 0.00085,
    "beta_end": 0.012,
    "beta_schedule": "scaled_linear",
    "num_train_timesteps": 1000,
    "clip_sample": False,
    "set_alpha_to_one": False,
    "steps_offset": 1,
    "prediction_type": "epsilon",
    "timestep_spacing": "leading",
}

TEXT_HIDDEN = 32
IMAGE_SIZE = 64


def build_tiny_pipeline(tokenizer, seed: int = 0):
    import torch
    from diffusers import AutoencoderKL, DDIMScheduler, StableDiffusionPipeline, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel

    torch.manual_seed(seed)
    unet = UNet2DConditionModel(
        sample_size=IMAGE_SIZE // 4,
        in_channels=4,
        out_channels=4,
        block_out_channels=(32, 64),
        layers_per_block=1,
        norm_num_groups=32,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        cross_attention_dim=TEXT_HIDDEN,
        attention_head_dim=8,
    )
    torch.manual_seed(seed + 1)
    vae = AutoencoderKL(
        in_channels=3,
        out_channels=3,
        block_out_channels=(32, 32, 64),
        down_block_types=("DownEncoderBlock2D",) * 3,
        up_block_types=("UpDecoderBlock2D",) * 3,
        layers_per_block=1,
        latent_channels=4,
        norm_num_groups=32,
        sample_size=IMAGE_SIZE,
    )
    torch.manual_seed(seed + 2)
    text_encoder = CLIPTextModel(
        CLIPTextConfig(
            vocab_size=49408,
            hidden_size=TEXT_HIDDEN,
            intermediate_size=64,
            num_hidden_layers=2,
            num_attention_heads=4,
            max_position_embeddings=77,
            bos_token_id=49406,
            eos_token_id=49407,
            pad_token_id=49407,
            projection_dim=TEXT_HIDDEN,
        )
    )
    for module in (unet, vae, text_encoder):
        module.eval()
    return StableDiffusionPipeline(
        unet=unet,
        vae=vae,
        text_encoder=text_encoder,
        tokenizer=tokenizer,
        scheduler=DDIMScheduler.from_config(SD_SCHEDULER_CONFIG),
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )


def write_tiny_pipeline(out: Path, seed: int = 0) -> None:
    """Write the tiny pipeline, with the real CLIP tokenizer, as a diffusers folder."""
    from transformers import CLIPTokenizer

    from .clip_vocab import write_clip_tokenizer

    out = Path(out)
    write_clip_tokenizer(out / "tokenizer")
    pipe = build_tiny_pipeline(CLIPTokenizer.from_pretrained(out / "tokenizer"), seed)
    pipe.save_pretrained(out, safe_serialization=True)
    info = {"source": "export tiny", "seed": seed, "image_size": IMAGE_SIZE}
    (out / "sdlens_tiny.json").write_text(json.dumps(info, indent=2) + "\n")
