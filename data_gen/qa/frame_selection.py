"""Space-aware frame selection (Spatial-MLLM §2): pick the frames whose 3D points cover the most voxels.

Geometry comes in as per-frame points and confidences, so the scan's true depth + poses
(`scan_frame_geometry`) and, later, predicted point maps feed the same function. The per-scene
build uses the one-array forms (`scan_frame_coords` -> `voxelize_coords`): all candidate frames
in one [3, N] array, so each pass is one numpy call instead of one per frame.

Speed: voxels are flat integer cell ids, deduplicated per frame in O(n) (a scatter table instead
of a sort), compacted to 0..M-1 and packed into per-frame uint64 bitsets; each greedy round is
then one AND-NOT + popcount over a [frames, M/64] array. Measured (2 shared cores), 128 frames of
640x480 depth: geometry ~0.55 s, voxelisation ~0.65 s, greedy 128 -> 16 ~2 ms; a synthetic
scene's 96 candidates of 320x240 at the default depth_stride 4: ~5 + ~7 + ~1.5 ms.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from data_gen.scans.scan import Scan

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


def scan_frame_coords(
    scan: Scan, candidate_ids: Sequence[int], depth_stride: int = 4
) -> tuple[np.ndarray, np.ndarray]:
    """World points of the candidate frames from the true depth and pose, all frames in one array.

    Returns (xyz [3, N] float32: the x, y and z rows of the points, frame by frame; bounds [F + 1]
    int64: frame f's points are xyz[:, bounds[f]:bounds[f + 1]]). Pixels without a depth
    measurement (0 or non-finite) give no point. Coordinate rows, not [N, 3] rows, so that every
    later pass over x, y or z reads contiguous memory.
    """
    k = np.asarray(scan.intrinsic_depth, dtype=np.float64)
    fx, fy, cx, cy = k[0, 0], k[1, 1], k[0, 2], k[1, 2]
    n = len(candidate_ids)
    # Keep a compact copy of the pixels used, not a view: the full frame is freed right away (a
    # 640x480 scan's 128 candidates would otherwise hold 157 MB of depth).
    depths = [np.ascontiguousarray(np.asarray(scan.frames.depth(fid), dtype=np.float32)[::depth_stride, ::depth_stride])
              for fid in candidate_ids]  # fmt: skip
    poses = [np.asarray(scan.frames.pose(fid), dtype=np.float32) for fid in candidate_ids]
    # Frames of one size (a scan's always are) go through in one batch.
    groups: dict[tuple[int, int], list[int]] = {}
    for f, d in enumerate(depths):
        groups.setdefault(d.shape, []).append(f)
    pieces: list[tuple[list[int], np.ndarray, np.ndarray]] = []  # (frames, xyz [3, m], points per frame)
    for (h, w), members in groups.items():
        depth = np.stack([depths[f] for f in members])  # [G, h, w]
        pose = np.stack([poses[f] for f in members])
        rot, t = pose[:, :3, :3], pose[:, :3, 3]  # [G, 3, 3], [G, 3]
        a = ((np.arange(w) * depth_stride - cx) / fx).astype(np.float32)  # [w] ray x per unit depth
        b = ((np.arange(h) * depth_stride - cy) / fy).astype(np.float32)  # [h] ray y per unit depth
        # world_i = depth * (R[i,0] a_u + R[i,1] b_v + R[i,2]) + t_i: the ray grid is separable, so
        # three broadcasts replace an [N,3] @ [3,3] matmul (~20x faster at 640x480).
        xyz = np.empty((3, *depth.shape), dtype=np.float32)  # [3, G, h, w]
        for i in range(3):
            np.add(rot[:, i, 0, None, None] * a[None, None, :],
                   (rot[:, i, 1, None] * b[None, :] + rot[:, i, 2, None])[:, :, None], out=xyz[i])  # fmt: skip
            xyz[i] *= depth
            xyz[i] += t[:, i, None, None]
        z = depth.reshape(len(members), -1)
        valid = (z > 0) & (z < np.inf)  # [G, h*w] 0 = no measurement; NaN compares False
        xyz = xyz.reshape(3, -1)
        pieces.append((members, xyz if valid.all() else xyz[:, valid.reshape(-1)], valid.sum(1)))
    counts = np.zeros(n, dtype=np.int64)
    for members, _, c in pieces:
        counts[members] = c
    bounds = np.concatenate([[0], np.cumsum(counts)])
    if len(pieces) <= 1:
        return (pieces[0][1] if pieces else np.zeros((3, 0), dtype=np.float32)), bounds
    out = np.empty((3, int(bounds[-1])), dtype=np.float32)  # frames back in candidate order
    for members, xyz, c in pieces:
        starts = np.concatenate([[0], np.cumsum(c)])
        for j, f in enumerate(members):
            out[:, bounds[f] : bounds[f + 1]] = xyz[:, starts[j] : starts[j + 1]]
    return out, bounds


def scan_frame_geometry(
    scan: Scan, candidate_ids: Sequence[int], depth_stride: int = 4
) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """World points of each candidate frame from the true depth and pose, confidence 1.

    Returns (points: F x [Ni, 3] float32, confidences: F x [Ni] float32). Pixels without a depth
    measurement (0 or non-finite) give no point. `scan_frame_coords` has them in one array.
    """
    xyz, bounds = scan_frame_coords(scan, candidate_ids, depth_stride)
    points = np.ascontiguousarray(xyz.T)  # [N, 3]
    per_frame = [points[bounds[f] : bounds[f + 1]] for f in range(len(candidate_ids))]
    return per_frame, [np.ones(len(p), dtype=np.float32) for p in per_frame]


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
    if confidences is not None and len(confidences) != n_frames:
        raise ValueError(f"{len(confidences)} confidence arrays for {n_frames} frames")
    pts = [np.asarray(p, dtype=np.float32).reshape(-1, 3) for p in points]
    conf = None if confidences is None else [np.asarray(c, dtype=np.float32).reshape(-1) for c in confidences]
    # One block per frame: x, y, z are strided views of its [N, 3] rows, nothing is copied.
    blocks = [(p.T, np.array([0, len(p)]), None if conf is None else conf[i]) for i, p in enumerate(pts)]
    return _voxel_sets(blocks, n_frames, conf, conf_threshold, voxel_divisions)


def voxelize_coords(
    xyz: np.ndarray,
    bounds: np.ndarray,
    confidences: np.ndarray | None = None,
    conf_threshold: float = 0.1,
    voxel_divisions: int = 20,
) -> tuple[list[np.ndarray], int]:
    """`voxelize` of all frames' points in one array: xyz [3, N] float32 coordinate rows, frame f's
    points at bounds[f]:bounds[f + 1], confidences [N] or None (all 1). One pass over all points
    instead of one per frame (most frames are small)."""
    xyz = np.asarray(xyz, dtype=np.float32).reshape(3, -1)
    bounds = np.asarray(bounds, dtype=np.int64)
    conf = None if confidences is None else np.asarray(confidences, dtype=np.float32).reshape(-1)
    return _voxel_sets([(xyz, bounds, conf)], len(bounds) - 1, None if conf is None else [conf],
                       conf_threshold, voxel_divisions)  # fmt: skip


def _voxel_sets(
    blocks: list[tuple[np.ndarray, np.ndarray, np.ndarray | None]],
    n_frames: int,
    conf: list[np.ndarray] | None,
    conf_threshold: float,
    voxel_divisions: int,
) -> tuple[list[np.ndarray], int]:
    """`voxelize` over blocks of consecutive frames: (xyz [3, n] rows, bounds [g + 1] of its g
    frames' points, confidences [n] or None); `conf` is every block's confidences (or None)."""
    if conf is not None:
        if [len(c) for c in conf] != [x.shape[1] for x, _, _ in blocks]:
            raise ValueError("each frame needs one confidence per point")
        median = _median(conf)
    kept = []
    for xyz, bounds, c in blocks:
        keep = np.isfinite(xyz[0] + xyz[1] + xyz[2])  # all three coordinates finite
        if c is not None:
            keep &= (c > conf_threshold) & (c >= median)
        if not keep.all():
            xyz = xyz[:, keep]
            bounds = np.concatenate([[0], np.cumsum(keep)])[bounds]
        kept.append((xyz, bounds))
    nonempty = [x for x, _ in kept if x.shape[1]]
    if not nonempty:
        return [np.zeros(0, dtype=np.int64) for _ in range(n_frames)], 0
    # Row-wise reductions over [3, n] (columns of [N, 3] when the blocks are its transposes).
    lo = np.array([min(x[j].min() for x in nonempty) for j in range(3)], dtype=np.float32)
    hi = np.array([max(x[j].max() for x in nonempty) for j in range(3)], dtype=np.float32)
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
    order = np.arange(max(int(np.diff(b).max(initial=0)) for _, b in kept), dtype=np.int32)
    sets = []
    for xyz, bounds in kept:
        # Coordinate row by row: [N, 3] temporaries are strided and ~5x slower.
        key = ((xyz[0] - lo[0]) * inv).astype(key_type)  # [n] cell x
        key *= d1
        key += ((xyz[1] - lo[1]) * inv).astype(key_type)
        key *= d2
        key += ((xyz[2] - lo[2]) * inv).astype(key_type)  # [n] flat cell id
        for f in range(len(bounds) - 1):
            k = key[bounds[f] : bounds[f + 1]]
            if scatter is not None:
                # O(N) dedupe: one writer wins each cell; keep exactly the winners.
                o = order[: len(k)]
                scatter[k] = o
                sets.append(k[scatter[k] == o])
            else:
                sets.append(np.unique(k))

    # Compact the voxel ids seen anywhere to 0..M-1 so the bitsets stay small.
    seen = np.concatenate(sets)
    if total <= _SCATTER_MAX:
        used = np.zeros(total, dtype=bool)
        used[seen] = True
        remap = np.cumsum(used, dtype=np.int64) - 1
        return [remap[s] for s in sets], int(remap[-1] + 1)
    uniq, inverse = np.unique(seen, return_inverse=True)
    sizes = np.cumsum([0] + [len(s) for s in sets])
    return [inverse[sizes[i] : sizes[i + 1]].astype(np.int64) for i in range(n_frames)], len(uniq)


def greedy_max_coverage(voxel_sets: list[np.ndarray], num_voxels: int, k: int) -> list[int]:
    """Repeatedly take the frame adding the most uncovered voxels, until k frames or no gain.

    Ties go to the earliest frame. Returns the chosen frame positions, sorted.
    """
    n_frames = len(voxel_sets)
    words = max(1, (num_voxels + 63) // 64)
    bits = np.zeros((n_frames, words), dtype=np.uint64)  # [F, W] one bit per voxel
    if n_frames:
        ids = np.concatenate([np.asarray(v, dtype=np.int64).reshape(-1) for v in voxel_sets])
        owner = np.repeat(np.arange(n_frames, dtype=np.int64), [np.size(v) for v in voxel_sets])
        # One scattered OR for all frames: flat word index frame * W + id // 64, bit id % 64.
        np.bitwise_or.at(bits.reshape(-1), owner * words + (ids >> 6), np.left_shift(np.uint64(1), (ids & 63).astype(np.uint64)))
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
