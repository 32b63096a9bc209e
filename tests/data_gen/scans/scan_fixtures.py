"""A tiny aligned Scan built in memory (no downloads), shared by the scan I/O tests."""

from __future__ import annotations

import numpy as np

from data_gen.scans.scan import InMemoryFrames, Instance, Scan

COLOR_W, COLOR_H = 32, 24
DEPTH_W, DEPTH_H = 16, 12


def rot_z(deg: float) -> np.ndarray:
    c, s = np.cos(np.radians(deg)), np.sin(np.radians(deg))
    return np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]])


def axis_alignment() -> np.ndarray:
    """Rotation about z by 30 degrees plus a translation: anything but identity."""
    a = np.eye(4)
    a[:3, :3] = rot_z(30.0)
    a[:3, 3] = [1.5, -2.0, 0.25]
    return a


def intrinsic(fx: float, fy: float, mx: float, my: float) -> np.ndarray:
    return np.array([[fx, 0, mx, 0], [0, fy, my, 0], [0, 0, 1, 0], [0, 0, 0, 1]], dtype=np.float64)


def smooth_color(i: int) -> np.ndarray:
    """[H, W, 3] uint8 gradients (JPEG keeps them within a few levels)."""
    y, x = np.mgrid[0:COLOR_H, 0:COLOR_W]
    r = 40 + 5 * x + 3 * i
    g = 60 + 6 * y
    b = 200 - 3 * x - 2 * y
    return np.stack([r, g, b], axis=-1).clip(0, 255).astype(np.uint8)


def depth_mm(i: int) -> np.ndarray:
    """[h, w] uint16 millimetres with a few invalid (0) pixels."""
    y, x = np.mgrid[0:DEPTH_H, 0:DEPTH_W]
    mm = (1000 + 37 * x + 101 * y + 13 * i).astype(np.uint16)
    mm[0, :3] = 0
    return mm


def camera_pose(i: int) -> np.ndarray:
    """Aligned camera-to-world: looking roughly along +x, walking along a line."""
    look = np.array([[0, 0, 1], [-1, 0, 0], [0, -1, 0]], dtype=np.float64)  # camera z -> world x
    pose = np.eye(4)
    pose[:3, :3] = rot_z(10.0 * i) @ look
    pose[:3, 3] = [0.5 + 0.2 * i, 1.0 - 0.1 * i, 1.4]
    return pose


def make_scan(num_frames: int = 4, inf_frames: tuple[int, ...] = (2,), name: str = "scene0001_00") -> Scan:
    # Three segments: 10 and 20 form a chair, 30 a table; 40 is unlabelled floor.
    vertices = np.array(
        [[0, 0, 0], [1, 0, 0], [1, 1, 0], [0, 1, 0],
         [0, 0, 1], [1, 0, 1], [1, 1, 1], [0, 1, 1],
         [2, 2, 0], [3, 2, 0], [3, 3, 0.75], [2, 3, 0.75],
         [-1, -1, 0], [4, -1, 0], [4, 4, 0]],
        dtype=np.float32,
    )
    faces = np.array([[0, 1, 2], [0, 2, 3], [4, 5, 6], [4, 6, 7], [8, 9, 10], [8, 10, 11], [12, 13, 14]],
                     dtype=np.int32)
    seg = np.array([10, 10, 10, 10, 20, 20, 20, 20, 30, 30, 30, 30, 40, 40, 40], dtype=np.int64)
    colors = (np.arange(len(vertices) * 3).reshape(-1, 3) * 5 % 256).astype(np.uint8)
    instances = [
        Instance(object_id=0, label="chair", vertex_ids=np.arange(0, 8, dtype=np.int64)),
        Instance(object_id=1, label="table", vertex_ids=np.arange(8, 12, dtype=np.int64)),
    ]
    poses = np.stack([camera_pose(i) for i in range(num_frames)])
    for i in inf_frames:
        poses[i] = -np.inf
    frames = InMemoryFrames(
        poses=poses,
        colors=[smooth_color(i) for i in range(num_frames)],
        depths=[depth_mm(i).astype(np.float32) / np.float32(1000.0) for i in range(num_frames)],
    )
    return Scan(
        name=name,
        axis_alignment=axis_alignment(),
        vertices=vertices,
        vertex_colors=colors,
        faces=faces,
        seg_indices=seg,
        instances=instances,
        intrinsic_color=intrinsic(30.0, 31.0, 15.5, 11.5),
        intrinsic_depth=intrinsic(15.0, 15.5, 7.5, 5.5),
        color_size=(COLOR_W, COLOR_H),
        depth_size=(DEPTH_W, DEPTH_H),
        frames=frames,
        num_frames=num_frames,
        scene_type="Living room / Lounge",
        info={"numIMUmeasurements": "123", "colorToDepthExtrinsics": "1 0 0 0 0 1 0 0 0 0 1 0 0 0 0 1"},
    )
