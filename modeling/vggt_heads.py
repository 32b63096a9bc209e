"""VGGT's camera head and depth head (a DPT head), with VGGT-1B's parameter names.

Both read the aggregator's layers (`[B, S, 5 + P, C]`, C = 2 * embed_dim, token 0 of each frame is
its camera token, patch tokens start at 5):
- `CameraHead` -> the pose encoding `[B, S, 9]` per refinement pass: translation (3), rotation
  quaternion xyzw (4), field of view (height, width) in radians (2), VGGT's `absT_quaR_FoV`;
- `DPTHead` -> depth `[B, S, H, W, 1]` (exp of the first output channel) and its confidence
  `[B, S, H, W]` (1 + exp of the second), from four layers fused at rising resolution.

Module names (`poseLN_modulation`, `scratch.refinenet1.resConfUnit2.conv1`, ...) are the released
checkpoint's, so `camera_head.*` and `depth_head.*` load unchanged.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from modeling.config import VGGTHeadsConfig
from modeling.vggt_layers import Block, Mlp

POSE_DIM = 9  # absT_quaR_FoV: translation 3 + quaternion 4 + field of view 2
_MAX_INTERPOLATE = 1 << 30  # elements per F.interpolate call (CUDA's kernel indexes with int32)


class CameraHead(nn.Module):
    """Camera parameters from each frame's camera token, refined over a few passes.

    Each pass embeds the current estimate (a learned "empty" pose on the first), turns it into a
    shift, scale and gate for the normed camera tokens (adaptive LayerNorm), runs the trunk (its
    attention mixes the S frames of a video) and adds the predicted change to the estimate. The
    field of view goes through a ReLU (it is positive); translation and quaternion are linear.
    """

    def __init__(self, dim: int, heads: VGGTHeadsConfig):
        super().__init__()
        self.iterations = heads.camera_iterations
        self.token_norm = nn.LayerNorm(dim)
        self.trunk = nn.Sequential(
            *[Block(dim, heads.camera_num_heads, heads.camera_mlp_ratio, heads.camera_init_values)
              for _ in range(heads.camera_trunk_depth)]
        )  # fmt: skip
        self.trunk_norm = nn.LayerNorm(dim)
        self.empty_pose_tokens = nn.Parameter(torch.zeros(1, 1, POSE_DIM))
        self.embed_pose = nn.Linear(POSE_DIM, dim)
        self.poseLN_modulation = nn.Sequential(nn.SiLU(), nn.Linear(dim, 3 * dim))
        self.adaln_norm = nn.LayerNorm(dim, elementwise_affine=False, eps=1e-6)
        self.pose_branch = Mlp(dim, dim // 2, POSE_DIM)

    def forward(self, last_layer: torch.Tensor, iterations: int | None = None) -> list[torch.Tensor]:
        """last_layer: the aggregator's last layer `[B, S, N, C]`. Returns the pose encoding after
        each pass, `[B, S, 9]` each; the last is the prediction."""
        tokens = self.token_norm(last_layer[:, :, 0])  # [B, S, C] camera tokens
        b, s, _ = tokens.shape
        raw = None  # the estimate before the FoV ReLU, which the next pass embeds
        out = []
        for _ in range(iterations or self.iterations):
            current = self.empty_pose_tokens.expand(b, s, -1) if raw is None else raw.detach()
            shift, scale, gate = self.poseLN_modulation(self.embed_pose(current)).chunk(3, dim=-1)
            modulated = tokens + gate * (self.adaln_norm(tokens) * (1 + scale) + shift)  # [B, S, C]
            delta = self.pose_branch(self.trunk_norm(self.trunk(modulated)))  # [B, S, 9]
            raw = delta if raw is None else raw + delta
            out.append(torch.cat([raw[..., :7], F.relu(raw[..., 7:])], dim=-1))
        return out


class ResidualConvUnit(nn.Module):
    """relu -> conv3x3 -> relu -> conv3x3, plus the skip. VGGT's ReLU works in place, so the skip
    adds the *activated* input; kept, since the released weights were trained that way."""

    def __init__(self, features: int):
        super().__init__()
        self.conv1 = nn.Conv2d(features, features, kernel_size=3, padding=1)
        self.conv2 = nn.Conv2d(features, features, kernel_size=3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(x)
        return x + self.conv2(F.relu(self.conv1(x)))


class FusionBlock(nn.Module):
    """DPT's fusion stage: add the refined skip features, refine, upsample (to `size`, else 2x),
    then a 1x1 conv."""

    def __init__(self, features: int, has_residual: bool = True):
        super().__init__()
        self.out_conv = nn.Conv2d(features, features, kernel_size=1)
        if has_residual:
            self.resConfUnit1 = ResidualConvUnit(features)
        self.resConfUnit2 = ResidualConvUnit(features)

    def forward(self, x: torch.Tensor, skip: torch.Tensor | None = None, size=None) -> torch.Tensor:
        if skip is not None:
            x = x + self.resConfUnit1(skip)
        x = self.resConfUnit2(x)
        size = tuple(size) if size is not None else (2 * x.shape[-2], 2 * x.shape[-1])
        return self.out_conv(_interpolate(x, size))


def _interpolate(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Bilinear resize with aligned corners, in slices of frames when the output is huge."""
    elements = size[0] * size[1] * x.shape[0] * x.shape[1]
    if elements <= _MAX_INTERPOLATE:
        return F.interpolate(x, size=size, mode="bilinear", align_corners=True)
    parts = x.chunk(elements // _MAX_INTERPOLATE + 1, dim=0)
    return torch.cat([F.interpolate(p, size=size, mode="bilinear", align_corners=True) for p in parts])


def _sincos(dim: int, pos: torch.Tensor, omega_0: float = 100.0) -> torch.Tensor:
    """`[M]` positions -> `[M, dim]`: sin then cos of pos * omega_0^(-2j/dim), j < dim/2 (float64)."""
    omega = 1.0 / omega_0 ** (torch.arange(dim // 2, dtype=torch.float64, device=pos.device) / (dim / 2))
    angles = pos.reshape(-1).double()[:, None] * omega[None]  # [M, dim/2]
    return torch.cat([angles.sin(), angles.cos()], dim=1).float()


def uv_position_embedding(channels: int, grid_h: int, grid_w: int, aspect: float, dtype, device) -> torch.Tensor:
    """DPT's position embedding `[channels, grid_h, grid_w]`: the image plane's (u, v), spread over
    [-span, span] with span_x / span_y = aspect and span_x^2 + span_y^2 = 1 (cell centres), each
    coordinate as `channels / 2` sin/cos features."""
    diag = (aspect**2 + 1.0) ** 0.5
    span_x, span_y = aspect / diag, 1.0 / diag
    xs = torch.linspace(-span_x * (grid_w - 1) / grid_w, span_x * (grid_w - 1) / grid_w, grid_w, dtype=dtype, device=device)
    ys = torch.linspace(-span_y * (grid_h - 1) / grid_h, span_y * (grid_h - 1) / grid_h, grid_h, dtype=dtype, device=device)
    u, v = torch.meshgrid(xs, ys, indexing="xy")  # [grid_h, grid_w] each
    emb = torch.cat([_sincos(channels // 2, u), _sincos(channels // 2, v)], dim=-1)  # [h*w, channels]
    return emb.view(grid_h, grid_w, channels).permute(2, 0, 1)


class DPTHead(nn.Module):
    """Dense depth from four aggregator layers (Vision Transformers for Dense Prediction).

    Each tapped layer's patch tokens are normed, projected (1x1 conv) and resized to 4x, 2x, 1x and
    1/2x the patch grid; the fusion stages merge them from coarse to fine (ending at 8x the grid),
    the result is resized to the image and two convs give depth and confidence. Frames are
    independent here, so `frames_chunk` frames at a time give the same result with less memory.
    """

    def __init__(self, dim: int, heads: VGGTHeadsConfig, patch_size: int = 14):
        super().__init__()
        self.patch_size = patch_size
        self.layers = tuple(heads.dpt_layers)
        out_channels, features = heads.dpt_out_channels, heads.dpt_features
        self.norm = nn.LayerNorm(dim)
        self.projects = nn.ModuleList([nn.Conv2d(dim, oc, kernel_size=1) for oc in out_channels])
        self.resize_layers = nn.ModuleList([
            nn.ConvTranspose2d(out_channels[0], out_channels[0], kernel_size=4, stride=4),
            nn.ConvTranspose2d(out_channels[1], out_channels[1], kernel_size=2, stride=2),
            nn.Identity(),
            nn.Conv2d(out_channels[3], out_channels[3], kernel_size=3, stride=2, padding=1),
        ])  # fmt: skip
        scratch = nn.Module()
        for i, oc in enumerate(out_channels, start=1):
            setattr(scratch, f"layer{i}_rn", nn.Conv2d(oc, features, kernel_size=3, padding=1, bias=False))
        scratch.refinenet1 = FusionBlock(features)
        scratch.refinenet2 = FusionBlock(features)
        scratch.refinenet3 = FusionBlock(features)
        scratch.refinenet4 = FusionBlock(features, has_residual=False)
        scratch.output_conv1 = nn.Conv2d(features, features // 2, kernel_size=3, padding=1)
        scratch.output_conv2 = nn.Sequential(
            nn.Conv2d(features // 2, 32, kernel_size=3, padding=1), nn.ReLU(), nn.Conv2d(32, 2, kernel_size=1)
        )
        self.scratch = scratch

    def forward(
        self, layers: dict[int, torch.Tensor], image_hw: tuple[int, int], patch_start_idx: int, frames_chunk: int = 8
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """layers: aggregator outputs by layer number (at least `dpt_layers`), `[B, S, N, C]` each.
        Returns (depth `[B, S, H, W, 1]`, confidence `[B, S, H, W]`)."""
        b, s = layers[self.layers[0]].shape[:2]
        step = s if frames_chunk <= 0 else frames_chunk
        depths, confs = [], []
        for start in range(0, s, step):
            d, c = self._frames(layers, slice(start, start + step), image_hw, patch_start_idx)
            depths.append(d)
            confs.append(c)
        return torch.cat(depths, dim=1), torch.cat(confs, dim=1)

    def _frames(self, layers, frames: slice, image_hw, patch_start_idx) -> tuple[torch.Tensor, torch.Tensor]:
        h, w = image_hw
        gh, gw = h // self.patch_size, w // self.patch_size
        feats = []
        for i, layer in enumerate(self.layers):
            x = layers[layer][:, frames, patch_start_idx:]  # [B, s, P, C]
            b, s = x.shape[:2]
            x = self.norm(x.reshape(b * s, gh * gw, x.shape[-1]))
            x = x.permute(0, 2, 1).reshape(b * s, -1, gh, gw)  # [B*s, C, gh, gw]
            x = self._with_positions(self.projects[i](x), w / h)
            feats.append(self.resize_layers[i](x))  # 4x, 2x, 1x, 1/2x the patch grid
        sc = self.scratch
        l1, l2, l3, l4 = (getattr(sc, f"layer{i}_rn")(f) for i, f in enumerate(feats, start=1))
        out = sc.refinenet4(l4, size=l3.shape[2:])
        out = sc.refinenet3(out, l3, size=l2.shape[2:])
        out = sc.refinenet2(out, l2, size=l1.shape[2:])
        out = sc.output_conv1(sc.refinenet1(out, l1))  # [B*s, features/2, 8 gh, 8 gw]
        out = self._with_positions(_interpolate(out, (gh * self.patch_size, gw * self.patch_size)), w / h)
        out = sc.output_conv2(out)  # [B*s, 2, H, W]
        depth = torch.exp(out[:, :1]).permute(0, 2, 3, 1)  # [B*s, H, W, 1]
        conf = 1 + torch.exp(out[:, 1])  # [B*s, H, W]
        return depth.reshape(b, s, *depth.shape[1:]), conf.reshape(b, s, *conf.shape[1:])

    @staticmethod
    def _with_positions(x: torch.Tensor, aspect: float) -> torch.Tensor:
        pos = uv_position_embedding(x.shape[1], x.shape[2], x.shape[3], aspect, x.dtype, x.device)
        return x + 0.1 * pos[None]
