"""The connector: VGGT patch tokens grouped like Qwen's merged video tokens, projected to the LLM width.

Qwen's patch merger turns each 2-frame x 2x2-patch cube of the video into one LLM token. A
connector groups VGGT's patch tokens over the same cube (8 tokens x 2*dim channels) into one
vector per merged token, rows in Qwen's merged-token order (frame pair, row, column), and projects
it to the LLM width; model.py adds the result to the merger's output. Two variants, named as the
releases' configs and weights name them:

- `mlp_add` (v1.1, `connector.{ln_q, mlp.0, mlp.2}`): the cube flattened as (row, column,
  channel, frame), frame fastest; RMSNorm -> Linear(in, in) -> GELU -> Linear(in, hidden).
- `embedding_merger` (v1.0, `vggt_embedding_merger.*`): the cube flattened as (frame, row,
  column, channel), channel fastest; RMSNorm -> Linear(in, in) -> GELU -> Linear(in, hidden),
  then RMSNorm -> Linear(hidden, hidden) -> GELU -> Linear(hidden, hidden).
"""

from __future__ import annotations

import torch
from torch import nn
from transformers.models.qwen2_5_vl.modeling_qwen2_5_vl import Qwen2_5_VLRMSNorm

from modeling.config import CONNECTOR_TYPES


def _cubes(patch_tokens: torch.Tensor, grid_h: int, grid_w: int, temporal_merge: int, spatial_merge: int):
    """`[B, S, P, C]` -> `[B, T, tf, hh, sh, ww, sw, C]` (P = grid_h * grid_w, row-major)."""
    b, s, p, c = patch_tokens.shape
    if p != grid_h * grid_w or s % temporal_merge or grid_h % spatial_merge or grid_w % spatial_merge:
        raise ValueError(
            f"cannot group spatial tokens {tuple(patch_tokens.shape)} into {temporal_merge} frames x "
            f"{spatial_merge}x{spatial_merge} patches on a {grid_h}x{grid_w} grid"
        )
    t, hh, ww = s // temporal_merge, grid_h // spatial_merge, grid_w // spatial_merge
    return patch_tokens.reshape(b, t, temporal_merge, hh, spatial_merge, ww, spatial_merge, c)


def group_spatial_tokens(
    patch_tokens: torch.Tensor, grid_h: int, grid_w: int, temporal_merge: int = 2, spatial_merge: int = 2
) -> torch.Tensor:
    """v1.1's grouping: `[B, S, P, C]` -> `[B * (S/tm) * (grid_h/sm) * (grid_w/sm), sm * sm * C * tm]`,
    rows in Qwen's merged video-token order and each vector flattened as (sh, sw, channel, frame)."""
    x = _cubes(patch_tokens, grid_h, grid_w, temporal_merge, spatial_merge)
    x = x.permute(0, 1, 3, 5, 4, 6, 7, 2)  # [B, T, hh, ww, sh, sw, C, tf]
    return x.reshape(-1, x.shape[-4] * x.shape[-3] * x.shape[-2] * x.shape[-1])


def group_spatial_tokens_v10(
    patch_tokens: torch.Tensor, grid_h: int, grid_w: int, temporal_merge: int = 2, spatial_merge: int = 2
) -> torch.Tensor:
    """v1.0's grouping: the same rows, each vector flattened as (frame, sh, sw, channel)."""
    x = _cubes(patch_tokens, grid_h, grid_w, temporal_merge, spatial_merge)
    x = x.permute(0, 1, 3, 5, 2, 4, 6, 7)  # [B, T, hh, ww, tf, sh, sw, C]
    return x.reshape(-1, x.shape[-4] * x.shape[-3] * x.shape[-2] * x.shape[-1])


def _mlp(in_dim: int, mid_dim: int, out_dim: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(in_dim, mid_dim), nn.GELU(), nn.Linear(mid_dim, out_dim))


class _CubeConnector(nn.Module):
    """What both variants share: the cube sizes, the grouped width `in_dim` and `group`, which
    flattens each cube in the variant's own order (`grouping`)."""

    grouping = staticmethod(group_spatial_tokens)

    def __init__(self, spatial_dim: int, temporal_merge: int, spatial_merge: int):
        super().__init__()
        self.temporal_merge = temporal_merge
        self.spatial_merge = spatial_merge
        self.in_dim = spatial_dim * temporal_merge * spatial_merge * spatial_merge

    def group(self, patch_tokens: torch.Tensor, grid_h: int, grid_w: int) -> torch.Tensor:
        return self.grouping(patch_tokens, grid_h, grid_w, self.temporal_merge, self.spatial_merge)


class SpatialConnector(_CubeConnector):
    """v1.1 (`mlp_add`): RMSNorm(in) -> Linear(in, in) -> GELU -> Linear(in, out); in = spatial
    width x 2 frames x 2x2 patches."""

    def __init__(self, spatial_dim: int, out_dim: int, temporal_merge: int = 2, spatial_merge: int = 2):
        super().__init__(spatial_dim, temporal_merge, spatial_merge)
        self.ln_q = Qwen2_5_VLRMSNorm(self.in_dim, eps=1e-6)
        self.mlp = _mlp(self.in_dim, self.in_dim, out_dim)

    def forward(self, grouped: torch.Tensor) -> torch.Tensor:
        """grouped: `[N, in_dim]` from `group` -> `[N, out_dim]`."""
        return self.mlp(self.ln_q(grouped))


class EmbeddingMergerConnector(_CubeConnector):
    """v1.0 (`embedding_merger`): RMSNorm(in) -> Linear(in, in) -> GELU -> Linear(in, out), then
    RMSNorm(out) -> Linear(out, out) -> GELU -> Linear(out, out). Names are the v1.0 release's
    (`token_merge_ln_q`, `token_merge_mlp`, `vgg_to_language_ln_q`, `vgg_to_language_mlp`)."""

    grouping = staticmethod(group_spatial_tokens_v10)

    def __init__(self, spatial_dim: int, out_dim: int, temporal_merge: int = 2, spatial_merge: int = 2):
        super().__init__(spatial_dim, temporal_merge, spatial_merge)
        self.token_merge_ln_q = Qwen2_5_VLRMSNorm(self.in_dim, eps=1e-6)
        self.token_merge_mlp = _mlp(self.in_dim, self.in_dim, out_dim)
        self.vgg_to_language_ln_q = Qwen2_5_VLRMSNorm(out_dim, eps=1e-6)
        self.vgg_to_language_mlp = _mlp(out_dim, out_dim, out_dim)

    def forward(self, grouped: torch.Tensor) -> torch.Tensor:
        merged = self.token_merge_mlp(self.token_merge_ln_q(grouped))
        return self.vgg_to_language_mlp(self.vgg_to_language_ln_q(merged))


def build_connector(
    connector_type: str, spatial_dim: int, out_dim: int, temporal_merge: int = 2, spatial_merge: int = 2
) -> nn.Module:
    classes = {"mlp_add": SpatialConnector, "embedding_merger": EmbeddingMergerConnector}
    if connector_type not in classes:
        raise ValueError(f"connector_type must be one of {CONNECTOR_TYPES}, got {connector_type!r}")
    return classes[connector_type](spatial_dim, out_dim, temporal_merge, spatial_merge)


def init_connector(connector: nn.Module, std: float) -> None:
    """Fresh weights, Qwen's init: norms 1, linear weights normal(0, std), biases 0."""
    with torch.no_grad():
        for module in connector.modules():
            if isinstance(module, nn.Linear):
                module.weight.normal_(0.0, std)
                module.bias.zero_()
            elif isinstance(module, Qwen2_5_VLRMSNorm):
                module.weight.fill_(1.0)
