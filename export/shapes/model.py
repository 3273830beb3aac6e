"""The architecture of the default model: a small Stable Diffusion with SD's real classes.

Sizes were chosen by measured CPU throughput (2 cores, fp32 eager PyTorch), because the whole
model must train in under an hour:

* VAE: AutoencoderKL with four levels, so a 64x64 picture becomes an 8x8x8 latent (x8, like
  SD 1.x; 8 channels rather than 4, see `latent_channels`). An 8x8 latent makes the UNet ~4x
  cheaper per sample than a 16x16 one, which buys the iterations that text conditioning needs.
* UNet: UNet2DConditionModel 8x8 -> 4x4 -> 2x2, cross-attention at 4x4 and 2x2 only (a 3x3
  grid of positions is resolved at 4x4; attention at 8x8 cost ~40 % more time for no gain in
  the benchmark). ~2.7M parameters, ~220 samples/s per core for a training step at batch 32.
* Text encoder: CLIPTextModel with the real 49,408-token vocabulary, hidden size 48, 3 layers.
  The token embedding (2.4M) dominates its size; only the few dozen words the captions use
  are ever trained. Hidden size 48 keeps the browser's fp32 download (text encoder + UNet +
  VAE decoder) under 25 MB: ~9.9 + 10.8 + 2.4 MB.

`REDUCED` keeps the same classes and wiring at toy widths, so a test can train it end to end in
seconds.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace

from .scenes import IMAGE_SIZE


@dataclass(frozen=True)
class ModelConfig:
    name: str
    vae_channels: tuple[int, ...] = (16, 32, 64, 64)
    # Few groups: GroupNorm with one channel per group is instance norm, which erases each
    # picture's absolute colours (a first run decoded purple, red and green as blue and orange).
    vae_groups: int = 4
    # 8 latent channels, not SD 1.x's 4 (SD 3 uses 16): at x8 an 8x8 patch must carry background
    # colour, object colour and edge shape; with 4 channels a VAE learned shapes but not colours
    # in the time it has.
    latent_channels: int = 8
    unet_channels: tuple[int, ...] = (32, 64, 96)
    unet_groups: int = 8
    unet_heads: int = 4
    # Cross-attention on the lowest-resolution levels only: 2 = at 4x4 and 2x2, 3 = also at 8x8.
    unet_attention_levels: int = 2
    text_hidden: int = 48
    text_layers: int = 3
    text_heads: int = 4
    text_intermediate: int = 192
    image_size: int = IMAGE_SIZE
    # Training data and batch sizes.
    scenes: int = 20000  # pictures whose latents the UNet trains on
    vae_batch: int = 16
    vae_crop: int = 32  # most VAE steps see 32x32 crops: 4x cheaper, the convolutions don't care
    unet_batch: int = 32
    # Where an object goes is decided in the first, noisiest steps (below t ~ 900 its place is
    # already visible in x_t), so the UNet only learns to follow position words from the noisiest
    # timesteps. They get a share of every batch of their own and a floor on their loss weight.
    high_noise_share: float = 0.0  # of each batch, t drawn from [high_noise_from, 1000)
    high_noise_from: int = 700
    x0_weight_floor: float = 0.0  # min-SNR weights the x0 error by min(snr, gamma); at least this
    # Weight of an L1 term on the VAE's image gradients. Pixel losses barely notice a star's
    # points on a small star (a few pixels), so its reconstruction rounds off into a circle.
    vae_edge_weight: float = 0.0

    @property
    def latent_size(self) -> int:
        return self.image_size // 2 ** (len(self.vae_channels) - 1)

    def as_dict(self) -> dict:
        return asdict(self)


FULL = ModelConfig("full", high_noise_share=0.3, x0_weight_floor=0.05)
# The first recipe: timesteps drawn uniformly, plain min-SNR weights (kept to compare against).
UNIFORM_T = replace(FULL, name="uniform-t", high_noise_share=0.0, x0_weight_floor=0.0)
REDUCED = replace(  # the same recipe (noise share, weights) at toy widths
    FULL, name="reduced", vae_channels=(8, 8, 16, 16), vae_groups=2, unet_channels=(16, 16, 32), unet_groups=4, unet_heads=2,
    text_hidden=32, text_layers=1, text_heads=2, text_intermediate=64, scenes=256, vae_batch=4, unet_batch=8,
)
# The default recipe plus the VAE edge term (compared against FULL for the committed model).
SHARP_VAE = replace(FULL, name="sharp-vae", vae_edge_weight=1.0)
CONFIGS = {c.name: c for c in (FULL, UNIFORM_T, SHARP_VAE, REDUCED)}


def build_vae(cfg: ModelConfig):
    from diffusers import AutoencoderKL

    levels = len(cfg.vae_channels)
    return AutoencoderKL(
        in_channels=3, out_channels=3, latent_channels=cfg.latent_channels,
        block_out_channels=cfg.vae_channels,
        down_block_types=("DownEncoderBlock2D",) * levels,
        up_block_types=("UpDecoderBlock2D",) * levels,
        layers_per_block=1, norm_num_groups=cfg.vae_groups, sample_size=cfg.image_size,
    )


def build_unet(cfg: ModelConfig):
    from diffusers import UNet2DConditionModel

    levels = len(cfg.unet_channels)
    plain = levels - cfg.unet_attention_levels
    down = ("DownBlock2D",) * plain + ("CrossAttnDownBlock2D",) * cfg.unet_attention_levels
    up = ("CrossAttnUpBlock2D",) * cfg.unet_attention_levels + ("UpBlock2D",) * plain
    return UNet2DConditionModel(
        sample_size=cfg.latent_size, in_channels=cfg.latent_channels, out_channels=cfg.latent_channels,
        block_out_channels=cfg.unet_channels, layers_per_block=1, norm_num_groups=cfg.unet_groups,
        down_block_types=down, up_block_types=up,
        cross_attention_dim=cfg.text_hidden, attention_head_dim=cfg.unet_heads,
    )


def build_text_encoder(cfg: ModelConfig):
    from transformers import CLIPTextConfig, CLIPTextModel

    return CLIPTextModel(CLIPTextConfig(
        vocab_size=49408, hidden_size=cfg.text_hidden, intermediate_size=cfg.text_intermediate,
        num_hidden_layers=cfg.text_layers, num_attention_heads=cfg.text_heads, max_position_embeddings=77,
        bos_token_id=49406, eos_token_id=49407, pad_token_id=49407, projection_dim=cfg.text_hidden,
    ))
