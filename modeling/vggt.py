"""The spatial encoder: VGGT's aggregator, and loading its released weights.

Frames go through a DINOv2 patch embedding, get one camera token and `num_register_tokens`
register tokens in front (a learned "frame 0" version for the first frame of each video, another
for the rest), then `depth` pairs of blocks alternate attention within each frame and across all
frames of the video. Each pair's two outputs are concatenated: layer i is `[B, S, 5 + P, 2 * dim]`.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import torch
from torch import nn

from modeling.checkpoint_io import torch_state
from modeling.config import VGGT_PRESETS, VGGTConfig, build_config
from modeling.vggt_layers import Block, DinoV2Encoder, RotaryEmbedding2D, patch_positions

_IMAGENET_MEAN = (0.485, 0.456, 0.406)
_IMAGENET_STD = (0.229, 0.224, 0.225)
# Prefixes under which aggregator tensors appear in released files: VGGT-1B's own checkpoint,
# Spatial-MLLM's `spatial_encoder.vggt_model.aggregator.*`, and this package's saves.
_KNOWN_PREFIXES = (
    "model.spatial_encoder.",
    "spatial_encoder.vggt_model.aggregator.",
    "spatial_encoder.aggregator.",
    "spatial_encoder.",
    "vggt_model.aggregator.",
    "vggt.aggregator.",
    "aggregator.",
)
# VGGT's prediction heads are not used by the language model; their tensors are skipped.
_HEAD_MARKERS = ("camera_head.", "depth_head.", "point_head.", "track_head.")


def _expand_special(tokens: torch.Tensor, batch: int, frames: int) -> torch.Tensor:
    """`[1, 2, X, C]` (frame-0 version, other-frames version) -> `[batch * frames, X, C]`."""
    first = tokens[:, :1].expand(batch, 1, *tokens.shape[2:])
    rest = tokens[:, 1:].expand(batch, frames - 1, *tokens.shape[2:])
    return torch.cat([first, rest], dim=1).reshape(batch * frames, *tokens.shape[2:])


class VGGTAggregator(nn.Module):
    """VGGT's aggregator; parameter names equal released VGGT-1B's `aggregator.*` minus the prefix."""

    def __init__(self, config: VGGTConfig):
        super().__init__()
        self.config = config
        dim = config.embed_dim
        self.patch_size = config.patch_size
        self.patch_start_idx = config.patch_start_idx
        self.patch_embed = DinoV2Encoder(
            img_size=config.img_size,
            patch_size=config.patch_size,
            dim=dim,
            depth=config.patch_embed_depth,
            num_heads=config.patch_embed_num_heads,
            mlp_ratio=config.mlp_ratio,
            num_register_tokens=config.num_register_tokens,
            init_values=config.patch_embed_init_values,
        )
        rope = RotaryEmbedding2D(config.rope_freq)

        def block() -> Block:
            return Block(dim, config.num_heads, config.mlp_ratio, config.init_values, qk_norm=True, rope=rope)

        self.frame_blocks = nn.ModuleList([block() for _ in range(config.depth)])
        self.global_blocks = nn.ModuleList([block() for _ in range(config.depth)])
        self.camera_token = nn.Parameter(torch.zeros(1, 2, 1, dim))
        self.register_token = nn.Parameter(torch.zeros(1, 2, config.num_register_tokens, dim))
        nn.init.normal_(self.camera_token, std=1e-6)
        nn.init.normal_(self.register_token, std=1e-6)

    def forward(self, images: torch.Tensor, *, only_last: bool = False) -> tuple[list[torch.Tensor], int]:
        """images: `[B, S, 3, H, W]` in [0, 1], H and W multiples of the patch size.

        Returns `(layers, patch_start_idx)`: `depth` tensors `[B, S, patch_start_idx + P, 2 * dim]`
        (P = H/14 * W/14), or only the last one when `only_last` (fusion needs no other and this
        saves depth-1 activations of that size).
        """
        last = self.config.depth - 1
        kept = self.selected_layers(images, [last] if only_last else range(self.config.depth))
        return [kept[i] for i in sorted(kept)], self.patch_start_idx

    def selected_layers(self, images: torch.Tensor, keep) -> dict[int, torch.Tensor]:
        """The outputs of the layers numbered in `keep` only, `{i: [B, S, 5 + P, 2 * dim]}`: every
        other layer's output is dropped as soon as the next one is computed (VGGT's heads read 4
        of the 24, which is what lets 128 frames through one forward)."""
        b, s, c, h, w = images.shape
        if c != 3 or h % self.patch_size or w % self.patch_size:
            raise ValueError(
                f"images must be [B, S, 3, H, W] with H, W multiples of {self.patch_size}, got {tuple(images.shape)}"
            )
        keep = set(keep)
        mean = torch.tensor(_IMAGENET_MEAN, device=images.device, dtype=images.dtype).view(1, 1, 3, 1, 1)
        std = torch.tensor(_IMAGENET_STD, device=images.device, dtype=images.dtype).view(1, 1, 3, 1, 1)
        images = ((images - mean) / std).reshape(b * s, c, h, w)
        patches = self.patch_embed(images)  # [B*S, P, dim]
        dtype = patches.dtype
        camera = _expand_special(self.camera_token, b, s).to(dtype)  # [B*S, 1, dim]
        registers = _expand_special(self.register_token, b, s).to(dtype)  # [B*S, R, dim]
        tokens = torch.cat([camera, registers, patches], dim=1)  # [B*S, N, dim], N = 5 + P
        n, dim = tokens.shape[1], tokens.shape[2]
        pos = patch_positions(
            b * s, h // self.patch_size, w // self.patch_size, self.patch_start_idx, images.device
        )

        kept: dict[int, torch.Tensor] = {}
        for i, (frame_block, global_block) in enumerate(zip(self.frame_blocks, self.global_blocks, strict=True)):
            tokens = frame_block(tokens.reshape(b * s, n, dim), pos=pos.reshape(b * s, n, 2))
            frame_out = tokens.reshape(b, s, n, dim)
            # Global attention: all tokens of all frames of one video attend to each other.
            tokens = global_block(tokens.reshape(b, s * n, dim), pos=pos.reshape(b, s * n, 2))
            if i in keep:
                kept[i] = torch.cat([frame_out, tokens.reshape(b, s, n, dim)], dim=-1)  # [B, S, N, 2*dim]
        return kept


def build_spatial_encoder(preset: str | VGGTConfig = "spatial-mllm-3b") -> VGGTAggregator:
    """The spatial encoder alone: a preset name (`tiny`, `small`, `spatial-mllm-3b`) or a VGGTConfig.

    Random-initialised; put real weights in with `load_spatial_encoder_weights`. Build the 1B size
    inside `with torch.device("meta"):` when only names and shapes are needed.
    """
    if isinstance(preset, VGGTConfig):
        return VGGTAggregator(preset)
    if preset in VGGT_PRESETS:
        return VGGTAggregator(dataclasses.replace(VGGT_PRESETS[preset]))
    config = build_config(preset)
    if config.spatial_encoder != "vggt":
        raise ValueError(f"preset {preset!r} has no spatial encoder")
    return VGGTAggregator(config.vggt)


def read_tensors(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """All tensors of a `.safetensors` file or a torch `.pt`/`.bin` state dict (weights only)."""
    path = os.fspath(path)
    if path.endswith(".safetensors"):
        from safetensors.torch import load_file

        return load_file(path)
    return torch_state(Path(path))


def is_head_tensor(name: str) -> bool:
    """True for VGGT prediction-head tensors (camera/depth/point/track), which fusion does not use."""
    return any(marker in name for marker in _HEAD_MARKERS)


def strip_aggregator_prefix(name: str) -> str:
    """`aggregator.x`, `spatial_encoder.vggt_model.aggregator.x`, ... -> `x` (bare names unchanged)."""
    for prefix in _KNOWN_PREFIXES:
        if name.startswith(prefix):
            return name[len(prefix) :]
    return name


def spatial_encoder_state_dict(tensors: dict[str, torch.Tensor]) -> tuple[dict[str, torch.Tensor], list[str]]:
    """Aggregator tensors with their release prefix removed, and the names that were skipped (heads)."""
    out, skipped = {}, []
    for name, tensor in tensors.items():
        if is_head_tensor(name):
            skipped.append(name)
        else:
            out[strip_aggregator_prefix(name)] = tensor
    return out, skipped


def name_list(names: list[str], limit: int = 20) -> str:
    """At most `limit` names, comma-separated, for error messages."""
    return ", ".join(names[:limit]) + (f" ... (+{len(names) - limit})" if len(names) > limit else "")


def load_spatial_encoder_weights(encoder: VGGTAggregator, path: str | os.PathLike) -> VGGTAggregator:
    """Load VGGT aggregator tensors from a safetensors or pt file, strictly.

    Accepts VGGT's own checkpoint (`aggregator.*`, heads skipped), a Spatial-MLLM release file
    (`spatial_encoder.vggt_model.aggregator.*`) or bare names. Any missing or unexpected name, or
    a shape mismatch, raises one ValueError listing them all.
    """
    state, _ = spatial_encoder_state_dict(read_tensors(path))
    expected = encoder.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    wrong = sorted(k for k in set(state) & set(expected) if tuple(state[k].shape) != tuple(expected[k].shape))
    if missing or unexpected or wrong:
        lines = [f"spatial encoder weights in {os.fspath(path)} do not match the model:"]
        if missing:
            lines.append(f"  missing ({len(missing)}): {name_list(missing)}")
        if unexpected:
            lines.append(f"  unexpected ({len(unexpected)}): {name_list(unexpected)}")
        if wrong:
            shapes = [f"{k} {tuple(state[k].shape)} vs {tuple(expected[k].shape)}" for k in wrong]
            lines.append(f"  shape mismatch: {name_list(shapes)}")
        raise ValueError("\n".join(lines))
    encoder.load_state_dict(state, strict=True)
    return encoder
