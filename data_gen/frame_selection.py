"""Space-aware frame selection (Spatial-MLLM §2): pick the frames whose 3D points cover the most voxels.

Geometry comes in as per-frame points and confidences, so the scan's true depth + poses
(`scan_frame_geometry`) and, later, predicted point maps feed the same function.

Speed: voxels are flat integer cell ids, deduplicated per frame in O(n) (a scatter table instead
of a sort), compacted to 0..M-1 and packed into per-frame uint64 bitsets; each greedy round is
then one AND-NOT + popcount over a [frames, M/64] array. Measured (2 shared cores), 128 frames of
640x480 depth: geometry ~0.55 s, voxelisation ~0.8 s, greedy 128 -> 16 ~5 ms; at the default
depth_stride 4: ~40 + ~50 + ~5 ms.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from data_gen.scan import Scan

_SCATTER_MAX = 1 << 24  # voxel grids up to 16M cells dedupe through a 64 MB scatter table


def uniform_positions(n: int, k: int) -> np.ndarray:
    """k evenly spaced positions in range(n), first and last included (all n when k >= n)."""
    if k >= n:
        return np.arange(n)
    if k == 1:
        return np.zeros(1, dtype=np.int64)
    # Spacing >= 1, so rounding half up keeps the positions distinct.
    return np.floor(np.linspace(0, n - 1, k) + 0.5).astype(np.int64)


def uniform_indices(ids: Sequence[int], k: int) -> list[int]:
    """k evenly spaced entries of ids (all of them when there are at most k)."""
    return [int(ids[p]) for p in uniform_positions(len(ids), k)]


def scan_frame_geometry(
    scan: Scan, candidate_ids: Sequence[int], depth_stride: int = 4
) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """World points of each candidate frame from the true depth and pose, confidence 1.

    Returns (points: F x [Ni, 3] float32, confidences: F x [Ni] float32). Pixels without a depth
    measurement (0 or non-finite) give no point.
    """
    k = np.asarray(scan.intrinsic_depth, dtype=np.float64)
    fx, fy, cx, cy = k[0, 0], k[1, 1], k[0, 2], k[1, 2]
    points, confs = [], []
    for fid in candidate_ids:
        depth = np.asarray(scan.frames.depth(fid), dtype=np.float32)[::depth_stride, ::depth_stride]  # [h, w]
        h, w = depth.shape
        a = ((np.arange(w) * depth_stride - cx) / fx).astype(np.float32)  # [w] ray x per unit depth
        b = ((np.arange(h) * depth_stride - cy) / fy).astype(np.float32)  # [h] ray y per unit depth
        pose = np.asarray(scan.frames.pose(fid), dtype=np.float32)
        rot, t = pose[:3, :3], pose[:3, 3]
        # world_i = depth * (R[i,0] a_u + R[i,1] b_v + R[i,2]) + t_i: the ray grid is separable, so
        # three broadcasts replace an [N,3] @ [3,3] matmul (~20x faster at 640x480).
        cols = [
            ((rot[i, 0] * a[None, :] + (rot[i, 1] * b + rot[i, 2])[:, None]) * depth + t[i]).reshape(-1)
            for i in range(3)
        ]
        world = np.stack(cols, axis=1)  # [h*w, 3]
        z = depth.reshape(-1)
        valid = (z > 0) & (z < np.inf)  # 0 = no measurement; NaN compares False
        if not valid.all():
            world = world[valid]
        points.append(world)
        confs.append(np.ones(len(world), dtype=np.float32))
    return points, confs


def _finite_rows(p: np.ndarray) -> np.ndarray:
    """[N, 3] -> [N] bool: all three coordinates finite (column adds are ~20x faster than .all(1))."""
    return np.isfinite(p[:, 0] + p[:, 1] + p[:, 2])


def _median(conf: list[np.ndarray]) -> float:
    """Median of all finite confidences; no copy when they are constant (true geometry: all 1)."""
    nonempty = [c for c in conf if len(c)]
    with np.errstate(invalid="ignore"):
        lows = [float(np.nanmin(c)) for c in nonempty if not np.isnan(c).all()]
        highs = [float(np.nanmax(c)) for c in nonempty if not np.isnan(c).all()]
    if not lows:
        return 0.0
    if min(lows) == max(highs) and np.isfinite(min(lows)):
        return min(lows)
    pool = np.concatenate(nonempty)
    pool = pool[np.isfinite(pool)]
    return float(np.median(pool)) if len(pool) else 0.0


def voxelize(
    points: list[np.ndarray],
    confidences: list[np.ndarray] | None = None,
    conf_threshold: float = 0.1,
    voxel_divisions: int = 20,
) -> tuple[list[np.ndarray], int]:
    """Per-frame voxel sets -> (F x [Mi] int64 voxel ids in 0..M-1, M).

    Keeps points with confidence > conf_threshold and >= the median confidence over all frames
    (the release's percentile-50 filter), voxel edge = shortest side of the kept points' bounding
    box / voxel_divisions (at most 2^20 cells along any axis, for nearly flat clouds).
    """
    n_frames = len(points)
    kept = []
    if confidences is not None and len(confidences) != n_frames:
        raise ValueError(f"{len(confidences)} confidence arrays for {n_frames} frames")
    conf = None if confidences is None else [np.asarray(c, dtype=np.float32).reshape(-1) for c in confidences]
    pts = [np.asarray(p, dtype=np.float32).reshape(-1, 3) for p in points]
    if conf is not None:
        median = _median(conf)
    for i, p in enumerate(pts):
        keep = _finite_rows(p)
        if conf is not None:
            keep &= (conf[i] > conf_threshold) & (conf[i] >= median)
        kept.append(p if keep.all() else p[keep])
    nonempty = [p for p in kept if len(p)]
    if not nonempty:
        return [np.zeros(0, dtype=np.int64) for _ in range(n_frames)], 0
    # Column-wise reductions: p.min(0) on [N, 3] is strided and ~40x slower.
    lo = np.array([min(p[:, j].min() for p in nonempty) for j in range(3)], dtype=np.float32)
    hi = np.array([max(p[:, j].max() for p in nonempty) for j in range(3)], dtype=np.float32)
    extent = (hi - lo).astype(np.float64)
    shortest = extent.min() if extent.min() > 0 else extent.max()  # flat cloud: fall back to the long side
    edge = max((shortest if shortest > 0 else 1.0) / voxel_divisions, extent.max() / 2**20)
    inv = np.float32(1.0 / edge)
    # Cell index = trunc((p - lo) * inv) (p >= lo, so trunc is floor); the same float32 ops on hi
    # give the largest index, so no clipping is needed.
    dims = ((hi - lo) * inv).astype(np.int64) + 1  # [3]
    total = int(np.prod(dims))
    key_type = np.int32 if total < 2**31 else np.int64
    d1, d2 = key_type(dims[1]), key_type(dims[2])

    scatter = np.empty(total, dtype=np.int32) if total <= _SCATTER_MAX else None
    sets = []
    for p in kept:
        # Column by column: [N, 3] temporaries are strided and ~5x slower.
        key = ((p[:, 0] - lo[0]) * inv).astype(key_type)  # [N] cell x
        key *= d1
        key += ((p[:, 1] - lo[1]) * inv).astype(key_type)
        key *= d2
        key += ((p[:, 2] - lo[2]) * inv).astype(key_type)  # [N] flat cell id
        if scatter is not None:
            # O(N) dedupe: one writer wins each cell; keep exactly the winners.
            order = np.arange(len(key), dtype=np.int32)
            scatter[key] = order
            sets.append(key[scatter[key] == order])
        else:
            sets.append(np.unique(key))

    # Compact the voxel ids seen anywhere to 0..M-1 so the bitsets stay small.
    seen = np.concatenate(sets)
    if total <= _SCATTER_MAX:
        used = np.zeros(total, dtype=bool)
        used[seen] = True
        remap = np.cumsum(used, dtype=np.int64) - 1
        return [remap[s] for s in sets], int(remap[-1] + 1)
    uniq, inverse = np.unique(seen, return_inverse=True)
    bounds = np.cumsum([0] + [len(s) for s in sets])
    return [inverse[bounds[i] : bounds[i + 1]].astype(np.int64) for i in range(n_frames)], len(uniq)


def greedy_max_coverage(voxel_sets: list[np.ndarray], num_voxels: int, k: int) -> list[int]:
    """Repeatedly take the frame adding the most uncovered voxels, until k frames or no gain.

    Ties go to the earliest frame. Returns the chosen frame positions, sorted.
    """
    n_frames = len(voxel_sets)
    words = max(1, (num_voxels + 63) // 64)
    bits = np.zeros((n_frames, words), dtype=np.uint64)  # [F, W] one bit per voxel
    for f, ids in enumerate(voxel_sets):
        if len(ids) == 0:
            continue
        s = np.sort(ids)
        word = s >> 6
        mask = np.left_shift(np.uint64(1), (s & 63).astype(np.uint64))
        starts = np.flatnonzero(np.r_[True, word[1:] != word[:-1]])
        bits[f, word[starts]] = np.bitwise_or.reduceat(mask, starts)
    covered = np.zeros(words, dtype=np.uint64)
    chosen: list[int] = []
    for _ in range(min(k, n_frames)):
        gains = np.bitwise_count(bits & ~covered).sum(axis=1, dtype=np.int64)  # [F]
        best = int(np.argmax(gains))
        if gains[best] == 0:
            break
        chosen.append(best)
        covered |= bits[best]
    return sorted(chosen)


def select_frames(
    points: list[np.ndarray],
    confidences: list[np.ndarray] | None = None,
    num_frames: int = 16,
    conf_threshold: float = 0.1,
    voxel_divisions: int = 20,
) -> list[int]:
    """Space-aware selection: positions (into the candidate list) of up to num_frames frames.

    points: F x [Ni, 3] world points per candidate frame; confidences: F x [Ni] or None (all 1).
    Fewer than num_frames come back when coverage saturates; see pad_positions.
    """
    sets, num_voxels = voxelize(points, confidences, conf_threshold, voxel_divisions)
    return greedy_max_coverage(sets, num_voxels, num_frames)


def pad_positions(chosen: Sequence[int], n_candidates: int, k: int) -> list[int]:
    """Fill a selection up to min(k, n_candidates) with evenly spaced unused positions, sorted."""
    target = min(k, n_candidates)
    have = set(int(c) for c in chosen)
    if len(have) >= target:
        return sorted(have)
    unused = np.array([p for p in range(n_candidates) if p not in have], dtype=np.int64)
    extra = unused[uniform_positions(len(unused), target - len(have))]
    return sorted(have | {int(e) for e in extra})
