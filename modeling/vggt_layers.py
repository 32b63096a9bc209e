"""Building blocks of the VGGT aggregator: 2D RoPE, attention with QK-norm, LayerScale blocks and
the DINOv2-with-registers patch embedding.

Module and parameter names follow released VGGT-1B (`attn.qkv`, `attn.q_norm`, `ls1.gamma`,
`mlp.fc1`, `patch_embed.patch_embed.proj`, ...) so its `aggregator.*` tensors load unchanged.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


def patch_positions(batch: int, grid_h: int, grid_w: int, num_special: int, device) -> torch.Tensor:
    """(y, x) RoPE positions of `num_special` special tokens then a grid_h x grid_w patch grid.

    Patches get 1-based coordinates and special tokens (0, 0), so that no patch shares the
    special tokens' rotation. Returns `[batch, num_special + grid_h * grid_w, 2]` (long).
    """
    ys = torch.arange(grid_h, device=device)
    xs = torch.arange(grid_w, device=device)
    grid = torch.cartesian_prod(ys, xs) + 1  # [grid_h*grid_w, 2], row-major like the patch order
    special = torch.zeros(num_special, 2, dtype=grid.dtype, device=device)
    pos = torch.cat([special, grid], dim=0)  # [num_special + P, 2]
    return pos.unsqueeze(0).expand(batch, -1, -1)


class RotaryEmbedding2D(nn.Module):
    """2D RoPE: the first half of each head rotates with the y position, the second with x."""

    def __init__(self, frequency: float = 100.0):
        super().__init__()
        self.frequency = frequency

    def _cos_sin(self, dim: int, max_pos: int, device, dtype) -> tuple[torch.Tensor, torch.Tensor]:
        inv_freq = 1.0 / (self.frequency ** (torch.arange(0, dim, 2, device=device).float() / dim))
        angles = torch.outer(torch.arange(max_pos, device=device, dtype=inv_freq.dtype), inv_freq)
        # VGGT casts the angles to the token dtype before cos/sin; kept for bit-compatibility.
        angles = angles.to(dtype)
        angles = torch.cat([angles, angles], dim=-1)  # [max_pos, dim]
        return angles.cos().to(dtype), angles.sin().to(dtype)

    @staticmethod
    def _rotate_half(x: torch.Tensor) -> torch.Tensor:
        x1, x2 = x.chunk(2, dim=-1)
        return torch.cat([-x2, x1], dim=-1)

    def _rope_1d(
        self, x: torch.Tensor, pos: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor
    ) -> torch.Tensor:
        cos = F.embedding(pos, cos)[:, None]  # [B, 1, N, dim]: broadcast over heads
        sin = F.embedding(pos, sin)[:, None]
        return x * cos + self._rotate_half(x) * sin

    def forward(self, x: torch.Tensor, pos: torch.Tensor) -> torch.Tensor:
        """x: `[B, heads, N, head_dim]`; pos: `[B, N, 2]` (y, x)."""
        half = x.shape[-1] // 2
        cos, sin = self._cos_sin(half, int(pos.max()) + 1, x.device, x.dtype)
        x_y, x_x = x.chunk(2, dim=-1)
        return torch.cat(
            [self._rope_1d(x_y, pos[..., 0], cos, sin), self._rope_1d(x_x, pos[..., 1], cos, sin)], -1
        )


class Attention(nn.Module):
    """Multi-head self-attention with optional per-head LayerNorm on q and k and optional 2D RoPE."""

    def __init__(
        self, dim: int, num_heads: int, qk_norm: bool = False, rope: RotaryEmbedding2D | None = None
    ):
        super().__init__()
        if dim % num_heads:
            raise ValueError(f"width {dim} is not divisible by {num_heads} heads")
        self.num_heads = num_heads
        self.head_dim = dim // num_heads
        self.qkv = nn.Linear(dim, dim * 3, bias=True)
        if qk_norm:
            self.q_norm = nn.LayerNorm(self.head_dim)
            self.k_norm = nn.LayerNorm(self.head_dim)
        self.qk_norm = qk_norm
        self.proj = nn.Linear(dim, dim, bias=True)
        self.rope = rope

    def forward(self, x: torch.Tensor, pos: torch.Tensor | None = None) -> torch.Tensor:
        b, n, c = x.shape
        qkv = self.qkv(x).reshape(b, n, 3, self.num_heads, self.head_dim).permute(2, 0, 3, 1, 4)
        q, k, v = qkv.unbind(0)  # each [B, heads, N, head_dim]
        if self.qk_norm:
            q, k = self.q_norm(q), self.k_norm(k)
        if self.rope is not None and pos is not None:
            q, k = self.rope(q, pos), self.rope(k, pos)
        out = F.scaled_dot_product_attention(q, k, v)
        out = out.transpose(1, 2).reshape(b, n, c)  # [B, N, heads*head_dim]
        return self.proj(out)


class LayerScale(nn.Module):
    """Per-channel residual scale (`gamma`), initialised small so deep stacks start near identity."""

    def __init__(self, dim: int, init_values: float):
        super().__init__()
        self.gamma = nn.Parameter(torch.full((dim,), float(init_values)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.gamma


class Mlp(nn.Module):
    def __init__(self, dim: int, hidden: int, out_dim: int | None = None):
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden, out_dim or dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.act(self.fc1(x)))


class Block(nn.Module):
    """Pre-norm transformer block with LayerScale on both residual branches."""

    def __init__(
        self,
        dim: int,
        num_heads: int,
        mlp_ratio: float,
        init_values: float,
        *,
        qk_norm: bool = False,
        rope: RotaryEmbedding2D | None = None,
        norm_eps: float = 1e-5,
    ):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=norm_eps)
        self.attn = Attention(dim, num_heads, qk_norm=qk_norm, rope=rope)
        self.ls1 = LayerScale(dim, init_values)
        self.norm2 = nn.LayerNorm(dim, eps=norm_eps)
        self.mlp = Mlp(dim, int(dim * mlp_ratio))
        self.ls2 = LayerScale(dim, init_values)

    def forward(self, x: torch.Tensor, pos: torch.Tensor | None = None) -> torch.Tensor:
        x = x + self.ls1(self.attn(self.norm1(x), pos=pos))
        return x + self.ls2(self.mlp(self.norm2(x)))


class PatchEmbed(nn.Module):
    """Non-overlapping patch_size x patch_size convolution: `[N, 3, H, W]` -> `[N, P, dim]`."""

    def __init__(self, patch_size: int, dim: int):
        super().__init__()
        self.proj = nn.Conv2d(3, dim, kernel_size=patch_size, stride=patch_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(x).flatten(2).transpose(1, 2)  # [N, dim, h, w] -> [N, h*w, dim]


class DinoV2Encoder(nn.Module):
    """DINOv2 ViT with register tokens, used by VGGT as its patch embedding.

    Returns the final-normed patch tokens `[N, P, dim]` (cls and register outputs are dropped).
    `mask_token` is unused at inference but part of the released weights.
    """

    def __init__(
        self,
        img_size: int,
        patch_size: int,
        dim: int,
        depth: int,
        num_heads: int,
        mlp_ratio: float,
        num_register_tokens: int,
        init_values: float,
    ):
        super().__init__()
        self.patch_size = patch_size
        self.patch_embed = PatchEmbed(patch_size, dim)
        grid = img_size // patch_size
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.pos_embed = nn.Parameter(torch.zeros(1, 1 + grid * grid, dim))  # cls + square patch grid
        self.register_tokens = nn.Parameter(torch.zeros(1, num_register_tokens, dim))
        self.mask_token = nn.Parameter(torch.zeros(1, dim))
        self.blocks = nn.ModuleList(
            [Block(dim, num_heads, mlp_ratio, init_values, norm_eps=1e-6) for _ in range(depth)]
        )
        self.norm = nn.LayerNorm(dim, eps=1e-6)
        nn.init.trunc_normal_(self.pos_embed, std=0.02)
        nn.init.normal_(self.cls_token, std=1e-6)
        nn.init.normal_(self.register_tokens, std=1e-6)

    def _pos_embed_for(self, grid_h: int, grid_w: int, dtype: torch.dtype) -> torch.Tensor:
        """Learned positions resized (bicubic, antialiased, in fp32) to a grid_h x grid_w grid."""
        n = self.pos_embed.shape[1] - 1
        side = math.isqrt(n)
        if grid_h == grid_w == side:
            return self.pos_embed.to(dtype)
        pos = self.pos_embed.float()
        patch_pos = pos[:, 1:].reshape(1, side, side, -1).permute(0, 3, 1, 2)  # [1, dim, side, side]
        patch_pos = F.interpolate(patch_pos, size=(grid_h, grid_w), mode="bicubic", antialias=True)
        patch_pos = patch_pos.permute(0, 2, 3, 1).reshape(1, grid_h * grid_w, -1)  # [1, P, dim]
        return torch.cat([pos[:, :1], patch_pos], dim=1).to(dtype)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """images: `[N, 3, H, W]` (already ImageNet-normalised)."""
        n, _, h, w = images.shape
        x = self.patch_embed(images)  # [N, P, dim]
        x = torch.cat([self.cls_token.expand(n, -1, -1).to(x.dtype), x], dim=1)
        x = x + self._pos_embed_for(h // self.patch_size, w // self.patch_size, x.dtype)
        registers = self.register_tokens.expand(n, -1, -1).to(x.dtype)
        # Registers go after cls and carry no position embedding: [N, 1 + R + P, dim].
        x = torch.cat([x[:, :1], registers, x[:, 1:]], dim=1)
        for block in self.blocks:
            x = block(x)
        x = self.norm(x)
        return x[:, 1 + self.register_tokens.shape[1] :]  # [N, P, dim]
