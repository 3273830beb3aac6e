"""Self-attention one head at a time, so a 768² UNet fits in a laptop's (and a browser's) memory.

A UNet's self-attention (diffusers' `attn1`) compares every latent position with every other: at
SD 2.1's 768² (96×96 latents, 9,216 positions, 5 heads at the first level) one layer's scores are
2 × 5 × 9,216² floats = 3.4 GB at batch 2 (guidance), and onnxruntime holds the scores and the
softmax of them at once. Measured on the exported SD 2.1 UNet: one call peaks at 10.3 GiB, of
which 3.3 GiB are the weights.

`HeadSlicedSelfAttention` computes the same attention head by head, so only one head's scores
exist at a time (a fifth of the above). The loop runs over heads because their count is fixed in
the weights; the batch and the image size stay free axes of the graph. (diffusers'
`SlicedAttnProcessor` slices the batch×heads axis instead, whose length tracing would bake in.)
Only the exported graph changes: the weights are the same, and the cross-attention (`attn2`,
whose Softmax `export.attention` reads for the per-word maps) is left as it was.

`convert` uses it where one self-attention layer's scores at batch 2 would pass `LIMIT_BYTES`
(see `largest_scores_bytes`): SD 2.1 at 768². At 512² (SD 1.5, 2.1-base, Turbo) the largest is
0.7–1.1 GB and the graph stays as diffusers traces it.
"""

from __future__ import annotations

import re

# 2 GiB: the largest storage buffer most WebGPU adapters can bind (maxStorageBufferBindingSize),
# and half of what a 4 GiB WASM heap can hold in all, weights included.
LIMIT_BYTES = 2 * 2**30
CHOICES = ("auto", "yes", "no")

_LEVEL = re.compile(r"^(down_blocks|up_blocks)\.(\d+)\.|^mid_block\.")


class HeadSlicedSelfAttention:
    """diffusers' `AttnProcessor` for self-attention, one head at a time.

    For each head h: softmax((q_h · scale) k_hᵀ) v_h, where q, k, v are the layer's projections of
    the same hidden states; the heads' results are laid side by side (as `batch_to_head_dim`
    does) and projected by `to_out`. Scaling q before the product, rather than the product after,
    saves one full-size tensor per head."""

    def __call__(self, attn, hidden_states, encoder_hidden_states=None, attention_mask=None, temb=None, *args,
                 **kwargs):
        import torch

        if encoder_hidden_states is not None or attention_mask is not None or attn.spatial_norm is not None \
                or attn.group_norm is not None or hidden_states.ndim != 3:
            raise ValueError("HeadSlicedSelfAttention is for a transformer block's plain self-attention (attn1)")
        residual = hidden_states
        batch, positions, _ = hidden_states.shape
        heads = attn.heads

        def per_head(x):  # (batch, positions, heads · d) → (batch, heads, positions, d)
            return x.reshape(batch, positions, heads, -1).transpose(1, 2)

        query = per_head(attn.to_q(hidden_states)) * attn.scale
        key = per_head(attn.to_k(hidden_states))
        value = per_head(attn.to_v(hidden_states))
        outputs = []
        for h in range(heads):
            scores = torch.matmul(query[:, h], key[:, h].transpose(-1, -2))
            outputs.append(torch.matmul(scores.softmax(dim=-1), value[:, h]))
        hidden_states = torch.cat(outputs, dim=-1)
        hidden_states = attn.to_out[1](attn.to_out[0](hidden_states))
        if attn.residual_connection:
            hidden_states = hidden_states + residual
        return hidden_states / attn.rescale_output_factor


def self_attention_layers(unet) -> dict[str, object]:
    """processor name → the `Attention` module, for every self-attention layer (attn1)."""
    return {f"{name}.processor": module for name, module in unet.named_modules()
            if name.endswith("attn1") and hasattr(module, "heads")}


def largest_scores_bytes(unet, sample_size: int, batch: int = 2) -> int:
    """Bytes of the largest self-attention score tensor (float32) in one UNet call at the model's
    native latent size: batch × heads × positions², positions = (sample_size / 2^level)²."""
    levels = len(unet.config.block_out_channels)
    largest = 0
    for name, attn in self_attention_layers(unet).items():
        match = _LEVEL.match(name)
        if match is None:
            raise ValueError(f"cannot tell the resolution level of {name}")
        if match.group(1) == "down_blocks":
            level = int(match.group(2))
        elif match.group(1) == "up_blocks":
            level = levels - 1 - int(match.group(2))
        else:
            level = levels - 1
        positions = (sample_size // 2**level) ** 2
        largest = max(largest, batch * attn.heads * positions**2 * 4)
    return largest


def wanted(unet, sample_size: int, choice: str = "auto") -> bool:
    """Whether to slice: `choice` is auto (past LIMIT_BYTES), yes or no."""
    if choice not in CHOICES:
        raise ValueError(f"slice-attention must be auto, yes or no, not {choice!r}")
    if choice == "auto":
        return largest_scores_bytes(unet, sample_size) > LIMIT_BYTES
    return choice == "yes"


def slice_self_attention(unet) -> int:
    """Give every self-attention layer of `unet` the head-sliced processor; returns how many."""
    processors = {name: HeadSlicedSelfAttention() if name in self_attention_layers(unet) else processor
                  for name, processor in unet.attn_processors.items()}
    sliced = sum(isinstance(p, HeadSlicedSelfAttention) for p in processors.values())
    unet.set_attn_processor(processors)  # (which empties the dict it is given)
    return sliced
