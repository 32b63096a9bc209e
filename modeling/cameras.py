"""VGGT's camera conventions: pose encoding -> camera matrices, and depth -> world points.

- Extrinsics are world-to-camera `[R | t]` (OpenCV axes: x right, y down, z forward), so a world
  point p is at `R p + t` in the camera; the camera centre is `-R^T t`.
- The pose encoding (`absT_quaR_FoV`, 9 numbers) is `t` (3), the rotation `R` as a quaternion
  (x, y, z, w), scalar last (4, need not be unit length: it is normalised here), then the field of
  view over the image height and over its width, in radians (2).
- Intrinsics from the field of view: fy = (H / 2) / tan(fov_h / 2), fx = (W / 2) / tan(fov_w / 2),
  principal point at the image centre (W / 2, H / 2), no skew.
- Pixel (u, v) (column, row, 0-based) at depth d is the camera point ((u - cx) d / fx,
  (v - cy) d / fy, d); depth is the z distance, not the ray length.
"""

from __future__ import annotations

import torch


def quaternion_to_matrix(quaternions: torch.Tensor) -> torch.Tensor:
    """`[..., 4]` quaternions (x, y, z, w), any non-zero length -> `[..., 3, 3]` rotation matrices."""
    x, y, z, w = quaternions.unbind(-1)
    two_s = 2.0 / (quaternions * quaternions).sum(-1)  # 2 / |q|^2 normalises the quaternion
    m = torch.stack(
        (
            1 - two_s * (y * y + z * z), two_s * (x * y - z * w), two_s * (x * z + y * w),
            two_s * (x * y + z * w), 1 - two_s * (x * x + z * z), two_s * (y * z - x * w),
            two_s * (x * z - y * w), two_s * (y * z + x * w), 1 - two_s * (x * x + y * y),
        ),
        dim=-1,
    )  # fmt: skip
    return m.reshape(*quaternions.shape[:-1], 3, 3)


def pose_encoding_to_cameras(pose_enc: torch.Tensor, image_hw: tuple[int, int]) -> tuple[torch.Tensor, torch.Tensor]:
    """`[B, S, 9]` pose encodings of images of size `image_hw` = (H, W) pixels -> (extrinsics
    `[B, S, 3, 4]` world-to-camera, intrinsics `[B, S, 3, 3]` in pixels)."""
    if pose_enc.shape[-1] != 9:
        raise ValueError(f"pose_enc must be [..., 9] (translation, quaternion xyzw, fov_h, fov_w), got {tuple(pose_enc.shape)}")
    h, w = image_hw
    translation, quaternion = pose_enc[..., :3], pose_enc[..., 3:7]
    fov_h, fov_w = pose_enc[..., 7], pose_enc[..., 8]
    extrinsics = torch.cat([quaternion_to_matrix(quaternion), translation[..., None]], dim=-1)  # [..., 3, 4]
    intrinsics = torch.zeros(*pose_enc.shape[:-1], 3, 3, dtype=pose_enc.dtype, device=pose_enc.device)
    intrinsics[..., 0, 0] = (w / 2.0) / torch.tan(fov_w / 2.0)
    intrinsics[..., 1, 1] = (h / 2.0) / torch.tan(fov_h / 2.0)
    intrinsics[..., 0, 2] = w / 2
    intrinsics[..., 1, 2] = h / 2
    intrinsics[..., 2, 2] = 1.0
    return extrinsics, intrinsics


def depth_to_world_points(depth: torch.Tensor, extrinsics: torch.Tensor, intrinsics: torch.Tensor) -> torch.Tensor:
    """Unproject depth maps `[B, S, H, W, 1]` (or `[B, S, H, W]`) with their cameras (extrinsics
    `[B, S, 3, 4]` world-to-camera, intrinsics `[B, S, 3, 3]`) -> world points `[B, S, H, W, 3]`."""
    if depth.dim() == 5:
        depth = depth.squeeze(-1)
    if depth.dim() != 4:
        raise ValueError(f"depth must be [B, S, H, W, 1] or [B, S, H, W], got {tuple(depth.shape)}")
    h, w = depth.shape[-2:]
    fx, fy = intrinsics[..., 0, 0, None, None], intrinsics[..., 1, 1, None, None]  # [B, S, 1, 1]
    cx, cy = intrinsics[..., 0, 2, None, None], intrinsics[..., 1, 2, None, None]
    u = torch.arange(w, device=depth.device, dtype=depth.dtype)  # [W] pixel columns
    v = torch.arange(h, device=depth.device, dtype=depth.dtype)[:, None]  # [H, 1] pixel rows
    camera = torch.stack([(u - cx) * depth / fx, (v - cy) * depth / fy, depth], dim=-1)  # [B, S, H, W, 3]
    rotation, translation = extrinsics[..., :3], extrinsics[..., 3]  # [B, S, 3, 3], [B, S, 3]
    # p_world = R^T (p_cam - t): as rows, (p_cam - t) @ R.
    return torch.einsum("bshwj,bsjk->bshwk", camera - translation[:, :, None, None], rotation)
