"""Space-aware frame selection: voxel coverage on hand-made point sets and on a rendered room."""

from __future__ import annotations

import time

import numpy as np
import pytest

from data_gen.qa.frame_selection import (
    greedy_max_coverage,
    pad_positions,
    scan_frame_geometry,
    select_frames,
    uniform_indices,
    voxelize,
)
from tests.data_gen.qa.qa_scenes import MeshBuilder, camera_pose, intrinsic, make_scan, render_depth


def test_uniform_indices():
    assert uniform_indices(list(range(10)), 4) == [0, 3, 6, 9]
    assert uniform_indices([0, 2, 5, 7, 9, 10], 3) == [0, 7, 10]  # positions 0, 2.5 -> 3, 5
    assert uniform_indices([4, 8], 16) == [4, 8]
    assert uniform_indices([7], 1) == [7]
    assert uniform_indices([], 4) == []


def slab(x0: int, x1: int, y1: int = 40) -> np.ndarray:
    """Points at the centres of unit cells x in [x0, x1), y in [0, y1), z in [0, 20)."""
    x, y, z = np.meshgrid(np.arange(x0, x1), np.arange(y1), np.arange(20), indexing="ij")
    return np.stack([x, y, z], -1).reshape(-1, 3) + 0.5


# Bounding box of all points: 39 x 39 x 19, so 19 divisions make unit voxels = the cells above.
FRAMES = [slab(0, 10), slab(0, 20), slab(20, 30), slab(30, 40, y1=20), slab(10, 20), np.zeros((0, 3))]


def test_voxelize_counts_unit_cells():
    sets, num_voxels = voxelize(FRAMES, None, voxel_divisions=19)
    assert num_voxels == 40 * 40 * 20 - 10 * 20 * 20  # the x >= 30, y >= 20 corner is never seen
    assert [len(s) for s in sets] == [8000, 16000, 8000, 4000, 8000, 0]


def test_greedy_takes_the_biggest_new_coverage_and_stops_when_nothing_is_new():
    # f1 (16000 voxels) first; then f2 adds 8000, f3 4000; f0 and f4 are inside f1: stop at 3.
    assert select_frames(FRAMES, None, num_frames=16, voxel_divisions=19) == [1, 2, 3]
    assert select_frames(FRAMES, None, num_frames=2, voxel_divisions=19) == [1, 2]


def test_confidence_filter_threshold_and_median():
    conf = [np.ones(len(p), np.float32) for p in FRAMES]
    conf[3][:] = 0.05  # below 0.1: frame 3 sees nothing
    assert select_frames(FRAMES, conf, voxel_divisions=19) == [1, 2]
    conf = [np.ones(len(p), np.float32) for p in FRAMES]
    conf[2][:] = 0.5  # above 0.1 but below the median (1.0): dropped too
    assert select_frames(FRAMES, conf, voxel_divisions=19) == [1, 3]
    conf[2][:] = 1.0
    conf[3][:100] = np.nan  # unusable confidences drop their points, nothing else
    pts = [p.copy() for p in FRAMES]
    pts[0][:5] = np.inf  # so do non-finite points
    assert select_frames(pts, conf, voxel_divisions=19) == [1, 2, 3]
    with pytest.raises(ValueError):
        select_frames(FRAMES, conf[:2])


def test_empty_and_identical_frames():
    assert select_frames([np.zeros((0, 3)), np.zeros((0, 3))], None) == []
    same = [slab(0, 5)] * 4
    assert select_frames(same, None, num_frames=3) == [0]  # ties go to the earliest frame
    assert pad_positions([0], 4, 3) == [0, 1, 3]  # evenly spaced among the unused 1, 2, 3
    assert pad_positions([1, 2], 3, 16) == [0, 1, 2]
    assert pad_positions([5, 9], 128, 2) == [5, 9]


def stare_then_sweep_scan():
    """A 6 x 6 m room seen from its centre: 30 frames staring at +x, then one frame at each of
    60, 120, ..., 300 degrees (60-degree field of view): six frames cover the whole room."""
    room = ((0.0, 0.0, 0.0), (6.0, 6.0, 2.5))
    yaws = [0.0] * 30 + [60.0, 120.0, 180.0, 240.0, 300.0]
    k = intrinsic(80, 60, 60.0)
    poses = np.stack([camera_pose((3.0, 3.0, 1.2), y) for y in yaws])
    depths = [render_depth(p, k, 80, 60, room, []) for p in poses]
    mesh = MeshBuilder()
    mesh.add([((0, 0, 0), (6, 0, 0), (0, 6, 0))], "floor", 0)
    return make_scan("scene0702_00", mesh, poses, depths, k)


def test_selection_on_a_room_where_the_answer_is_obvious():
    scan = stare_then_sweep_scan()
    ids = scan.frames.ids
    points, conf = scan_frame_geometry(scan, ids, depth_stride=2)
    assert len(points) == 35 and all(len(p) == 40 * 30 for p in points)
    chosen = select_frames(points, conf, num_frames=6)
    assert chosen == [0, 30, 31, 32, 33, 34]
    # Uniform sampling spends most of its budget on the stare and misses three directions.
    sets, _ = voxelize(points, conf)

    def cover(positions: list[int]) -> int:
        return len(np.unique(np.concatenate([sets[p] for p in positions])))

    uniform = [ids.index(i) for i in uniform_indices(ids, 6)]
    assert cover(chosen) > 1.5 * cover(uniform)
    assert cover(chosen) == cover(range(len(sets)))  # the six frames see everything


def test_scan_frame_geometry_back_projects_onto_the_walls():
    scan = stare_then_sweep_scan()
    points, conf = scan_frame_geometry(scan, [0], depth_stride=1)
    (p,) = points
    assert p.dtype == np.float32 and p.shape == (80 * 60, 3) and np.all(conf[0] == 1)
    # Looking along +x from the centre: every point lies on the wall x = 6 or floor/ceiling.
    on_wall = np.abs(p[:, 0] - 6.0) < 1e-3
    on_flat = (np.abs(p[:, 2]) < 1e-3) | (np.abs(p[:, 2] - 2.5) < 1e-3)
    assert np.all(on_wall | on_flat)
    assert p[:, 0].min() > 3.0


def test_greedy_is_fast_on_large_voxel_sets():
    rng = np.random.default_rng(0)
    sets = [np.unique(rng.integers(0, 60000, 8000)) for _ in range(128)]
    t = time.perf_counter()
    chosen = greedy_max_coverage(sets, 60000, 16)
    elapsed = time.perf_counter() - t
    assert len(chosen) == 16
    assert elapsed < 0.5  # ~5 ms on a quiet core; loose for shared CI machines


def test_one_array_path_matches_the_per_frame_path():
    from data_gen.qa.frame_selection import scan_frame_coords, voxelize_coords

    scan = stare_then_sweep_scan()
    ids = scan.frames.ids
    points, conf = scan_frame_geometry(scan, ids, depth_stride=3)
    xyz, bounds = scan_frame_coords(scan, ids, depth_stride=3)
    assert xyz.shape == (3, sum(len(p) for p in points)) and bounds[-1] == xyz.shape[1]
    for f, p in enumerate(points):
        np.testing.assert_array_equal(xyz[:, bounds[f] : bounds[f + 1]].T, p)
    sets, m = voxelize(points, conf)
    flat_sets, flat_m = voxelize_coords(xyz, bounds)
    assert flat_m == m and all(np.array_equal(a, b) for a, b in zip(flat_sets, sets, strict=True))
    # Confidences: the same filter either way.
    conf = [np.where(np.arange(len(p)) % 3 == 0, 0.05, 1.0).astype(np.float32) for p in points]
    sets, m = voxelize(points, conf)
    flat_sets, flat_m = voxelize_coords(xyz, bounds, np.concatenate(conf))
    assert flat_m == m and all(np.array_equal(a, b) for a, b in zip(flat_sets, sets, strict=True))
