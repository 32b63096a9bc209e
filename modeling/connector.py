"""The connector: VGGT patch tokens grouped like Qwen's merged video tokens, projected to the LLM width.

Qwen's patch merger turns each 2-frame x 2x2-patch cube of the video into one LLM token. The
connector groups VGGT's last-layer patch tokens over the same cube (8 tokens x 2*dim channels,
flattened in the v1.1 order (sh, sw, channel, frame), frame fastest), then RMSNorm -> Linear ->
GELU -> Linear to the LLM width. Its output is added to the merger's output (model.py).
Parameter names (`ln_q`, `mlp.0`, `mlp.2`) are the v1.1 release's.
"""

from __future__ import annotations

import torch
from torch import nn
from transformers.models.qwen2_5_vl.modeling_qwen2_5_vl import Qwen2_5_VLRMSNorm


def group_spatial_tokens(
    patch_tokens: torch.Tensor, grid_h: int, grid_w: int, temporal_merge: int = 2, spatial_merge: int = 2
) -> torch.Tensor:
    """Group `[B, S, P, C]` patch tokens (P = grid_h * grid_w, row-major) into merged-token vectors.

    Returns `[B * (S/tm) * (grid_h/sm) * (grid_w/sm), sm * sm * C * tm]`, rows in Qwen's merged
    video-token order (frame pair, row, column) and each vector flattened as (sh, sw, channel, frame).
    """
    b, s, p, c = patch_tokens.shape
    if p != grid_h * grid_w or s % temporal_merge or grid_h % spatial_merge or grid_w % spatial_merge:
        raise ValueError(
            f"cannot group spatial tokens {tuple(patch_tokens.shape)} into {temporal_merge} frames x "
            f"{spatial_merge}x{spatial_merge} patches on a {grid_h}x{grid_w} grid"
        )
    t, hh, ww = s // temporal_merge, grid_h // spatial_merge, grid_w // spatial_merge
    x = patch_tokens.reshape(b, t, temporal_merge, hh, spatial_merge, ww, spatial_merge, c)
    # [B, T, tf, hh, sh, ww, sw, C] -> [B, T, hh, ww, sh, sw, C, tf]
    x = x.permute(0, 1, 3, 5, 4, 6, 7, 2)
    return x.reshape(b * t * hh * ww, spatial_merge * spatial_merge * c * temporal_merge)


class SpatialConnector(nn.Module):
    """RMSNorm(in) -> Linear(in, in) -> GELU -> Linear(in, out); in = spatial width x 2 frames x 2x2 patches."""

    def __init__(self, spatial_dim: int, out_dim: int, temporal_merge: int = 2, spatial_merge: int = 2):
        super().__init__()
        self.temporal_merge = temporal_merge
        self.spatial_merge = spatial_merge
        in_dim = spatial_dim * temporal_merge * spatial_merge * spatial_merge
        self.ln_q = Qwen2_5_VLRMSNorm(in_dim, eps=1e-6)
        self.mlp = nn.Sequential(nn.Linear(in_dim, in_dim), nn.GELU(), nn.Linear(in_dim, out_dim))

    def forward(self, grouped: torch.Tensor) -> torch.Tensor:
        """grouped: `[N, in_dim]` from `group_spatial_tokens` -> `[N, out_dim]`."""
        return self.mlp(self.ln_q(grouped))
