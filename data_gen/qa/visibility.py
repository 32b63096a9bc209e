"""When does each object first appear in the video? Project its surface points into frames and
keep those the depth map agrees with (not occluded, inside the image).

Pure numpy over the `Frames` protocol: works on ScanNet depth and on rendered synthetic depth.
"""

from __future__ import annotations

import math

import numpy as np

from data_gen.scans.scan import Frames


def visibility_frame_ids(ids: list[int], fps: float, step_s: float) -> list[int]:
    """The first usable frame of every step_s-long time bucket (all frames when step_s is 0).

    Bucketing by stream index (not by position in `ids`) keeps the time resolution even when
    tracking-lost frames leave gaps.
    """
    step = max(1, int(round(step_s * fps)))
    out: list[int] = []
    last_bucket = -1
    for i in ids:
        if i // step != last_bucket:
            out.append(i)
            last_bucket = i // step
    return out


def _project(points: np.ndarray, pose: np.ndarray, intrinsic: np.ndarray, near: float, size: tuple[int, int]
             ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(u [P], v [P] pixel, z [P] depth, inside [P]: in front of the camera and within the
    `size` = (w, h) image) of world points [P, 3]."""
    world_to_cam = np.linalg.inv(pose)
    cam = points @ world_to_cam[:3, :3].T + world_to_cam[:3, 3]  # [P, 3]
    z = cam[:, 2]
    in_front = z > max(near, 1e-6)
    zs = np.where(in_front, z, 1.0)  # avoid dividing by ~0 behind the camera
    # Pixel centres sit at integer coordinates (ScanNet's cx ~ (w-1)/2), so round to nearest.
    u = np.floor(intrinsic[0, 0] * cam[:, 0] / zs + intrinsic[0, 2] + 0.5).astype(np.int64)
    v = np.floor(intrinsic[1, 1] * cam[:, 1] / zs + intrinsic[1, 2] + 0.5).astype(np.int64)
    w, h = size
    return u, v, z, in_front & (u >= 0) & (u < w) & (v >= 0) & (v < h)


def visible_points(
    points: np.ndarray,
    pose: np.ndarray,
    intrinsic: np.ndarray,
    depth: np.ndarray,
    tolerance: float,
    near: float,
) -> np.ndarray:
    """Which world points [P, 3] are seen in one frame -> bool [P].

    pose: [4, 4] camera-to-world (x right, y down, z forward); intrinsic: [4, 4] or [3, 3] for
    the depth image; depth: [h, w] metres, 0 = no measurement (such pixels see nothing).
    """
    h, w = depth.shape
    return _depth_test(*_project(points, pose, intrinsic, near, (w, h)), depth, tolerance)


def _depth_test(u: np.ndarray, v: np.ndarray, z: np.ndarray, inside: np.ndarray, depth: np.ndarray,
                tolerance: float) -> np.ndarray:
    """Which projected points (`_project`'s output) the depth image shows at their own depth."""
    measured = np.zeros(len(z), dtype=np.float64)
    measured[inside] = depth[v[inside], u[inside]]
    return inside & (measured > 0) & (np.abs(measured - z) < tolerance)


def first_visible_frames(
    frames: Frames,
    intrinsic: np.ndarray,
    points: np.ndarray,
    owner: np.ndarray,
    num_owners: int,
    frame_ids: list[int],
    min_fraction: float,
    tolerance: float,
    near: float,
    depth_size: tuple[int, int],
) -> np.ndarray:
    """First frame (stream index) in which each owner is visible -> [K] int64, -1 = never.

    points: [P, 3] world points; owner: [P] int in [0, K) saying which object each belongs to.
    An owner is visible in a frame when at least ceil(min_fraction * its point count) (and at
    least one) of its points pass the depth test. A frame in which no unseen owner has enough
    points inside the `depth_size` (w, h) image is passed without decoding its depth (the same
    result: such a frame can make no owner visible).
    """
    owner = np.asarray(owner, dtype=np.int64)
    total = np.bincount(owner, minlength=num_owners)  # [K]
    need = np.maximum(np.ceil(min_fraction * total - 1e-9), 1).astype(np.int64)
    first = np.full(num_owners, -1, dtype=np.int64)
    active = np.ones(len(points), dtype=bool)  # points of owners not yet seen
    for fid in frame_ids:
        if not active.any():
            break
        idx = np.flatnonzero(active)
        u, v, z, inside = _project(points[idx], frames.pose(fid), intrinsic, near, depth_size)
        if not (np.bincount(owner[idx[inside]], minlength=num_owners) >= need).any():
            continue
        seen = _depth_test(u, v, z, inside, np.asarray(frames.depth(fid)), tolerance)
        counts = np.bincount(owner[idx[seen]], minlength=num_owners)  # [K]
        newly = (counts >= need) & (first < 0)
        if newly.any():
            first[newly] = fid
            active &= ~newly[owner]
    return first


def frame_time(frame_index: int, fps: float) -> float:
    """Seconds from the start of the video (VSI-Bench: frame / fps)."""
    if not math.isfinite(fps) or fps <= 0:
        raise ValueError(f"fps must be positive, got {fps}")
    return frame_index / fps
