"""Boxes, box-box distances and alpha-shape areas against hand-computed values."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.spatial import cKDTree

from data_gen.qa.geometry import (
    OrientedBox,
    alpha_shape_area,
    box_distance,
    min_area_rect,
    oriented_box,
    polygon_distance,
    sample_surface,
)
from tests.data_gen.qa.qa_scenes import box_quads, grid_quad


def aabb(lo, hi) -> OrientedBox:
    lo, hi = np.asarray(lo, float), np.asarray(hi, float)
    return OrientedBox(tuple((lo + hi) / 2), tuple(hi - lo), 0.0)


def test_min_area_rect_of_a_rotated_rectangle():
    # A 2 x 1 rectangle turned 30 degrees, filled with points: the rectangle comes back exactly.
    rng = np.random.default_rng(0)
    local = np.c_[rng.uniform(-1, 1, 500), rng.uniform(-0.5, 0.5, 500)]
    local = np.r_[local, [[-1, -0.5], [1, -0.5], [1, 0.5], [-1, 0.5]]]
    a = math.radians(30)
    rot = np.array([[math.cos(a), -math.sin(a)], [math.sin(a), math.cos(a)]])
    pts = local @ rot.T + [3.0, -1.0]
    center, size, yaw = min_area_rect(pts)
    np.testing.assert_allclose(center, [3.0, -1.0], atol=1e-9)
    np.testing.assert_allclose(size, [2.0, 1.0], atol=1e-9)
    assert yaw == pytest.approx(a)


def test_oriented_box_of_an_axis_aligned_box_keeps_yaw_zero():
    pts = np.array([[x, y, z] for x in (1.0, 2.6) for y in (0.5, 1.3) for z in (0.0, 0.75)])
    box = oriented_box(pts)
    assert box.yaw == 0.0
    np.testing.assert_allclose(box.center, [1.8, 0.9, 0.375])
    np.testing.assert_allclose(box.size, [1.6, 0.8, 0.75])
    corners = box.corners()
    assert corners.shape == (8, 3)
    np.testing.assert_allclose(np.sort(corners, axis=0), np.sort(pts, axis=0))


def test_min_area_rect_of_degenerate_inputs():
    center, size, yaw = min_area_rect(np.array([[1.0, 2.0]]))
    np.testing.assert_allclose(center, [1, 2])
    np.testing.assert_allclose(size, [0, 0])
    center, size, _ = min_area_rect(np.array([[0.0, 0.0], [2.0, 0.0], [1.0, 0.0]]))  # collinear
    np.testing.assert_allclose(sorted(size), [0.0, 2.0], atol=1e-12)


@pytest.mark.parametrize(
    "a, b, expected",
    [
        # table and chair of the test room: gaps 0.45 in x and 0.35 in y
        (((1.7, 1.6, 0.0), (3.3, 2.4, 0.75)), ((0.75, 0.75, 0.0), (1.25, 1.25, 0.9)), math.hypot(0.45, 0.35)),
        # table and sofa: only a 0.7 m gap in y
        (((1.7, 1.6, 0.0), (3.3, 2.4, 0.75)), ((1.5, 3.1, 0.0), (3.5, 3.9, 0.85)), 0.7),
        # one box above the other: the z gap alone
        (((0, 0, 0), (1, 1, 1)), ((0.2, 0.2, 1.5), (0.8, 0.8, 2.0)), 0.5),
        # overlapping boxes touch: 0
        (((0, 0, 0), (1, 1, 1)), ((0.5, 0.5, 0.5), (2, 2, 2)), 0.0),
        # gaps in x, y and z at once
        (((0, 0, 0), (1, 1, 1)), ((2, 3, 3), (3, 4, 4)), math.sqrt(1 + 4 + 4)),
    ],
)
def test_box_distance_axis_aligned(a, b, expected):
    assert box_distance(aabb(*a), aabb(*b)) == pytest.approx(expected, abs=1e-9)
    assert box_distance(aabb(*b), aabb(*a)) == pytest.approx(expected, abs=1e-9)


def test_box_distance_rotated_diamond():
    # Unit square [0,1]^2 (z 0..1) and a unit square turned 45 degrees at (3, 0.5), z 2..3:
    # its left vertex is at x = 3 - sqrt(2)/2, so d_xy = 2 - sqrt(2)/2, d_z = 1.
    a = aabb((0, 0, 0), (1, 1, 1))
    b = OrientedBox((3.0, 0.5, 2.5), (1.0, 1.0, 1.0), math.pi / 4)
    d_xy = 2 - math.sqrt(2) / 2
    assert box_distance(a, b) == pytest.approx(math.hypot(d_xy, 1.0), abs=1e-9)
    # Diamond reaching into the square: they overlap in the plane, so only z remains.
    c = OrientedBox((1.5, 0.5, 2.5), (1.0, 1.0, 1.0), math.pi / 4)
    assert box_distance(a, c) == pytest.approx(1.0)


def _box_surface_points(box: OrientedBox, rng: np.random.Generator, n: int = 10000) -> np.ndarray:
    """[n, 3] points on the box's six faces (a dense grid mesh, sampled)."""
    half = np.array(box.size) / 2
    verts, faces, count = [], [], 0
    for quad in box_quads(-half, half):
        v, f = grid_quad(*quad, step=0.02)
        verts.append(v)
        faces.append(f + count)
        count += len(v)
    pts = sample_surface(np.concatenate(verts), np.concatenate(faces), n, rng)
    c, s = math.cos(box.yaw), math.sin(box.yaw)
    return pts @ np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]]).T + box.center


def test_box_distance_matches_sampled_surfaces_within_a_centimetre():
    rng = np.random.default_rng(1)
    checked = 0
    for _ in range(8):
        boxes = [
            OrientedBox(
                (*rng.uniform(0, 3, 2), rng.uniform(0.3, 1.0)),
                tuple(rng.uniform(0.3, 1.2, 3)),
                float(rng.uniform(0, math.pi / 2)),
            )
            for _ in range(2)
        ]
        exact = box_distance(*boxes)
        if exact == 0:
            continue
        a, b = (_box_surface_points(box, rng) for box in boxes)
        sampled = cKDTree(a).query(b)[0].min()
        assert exact <= sampled + 1e-9  # no surface pair is closer than the exact distance
        assert sampled - exact < 0.01
        checked += 1
    assert checked >= 3


def test_polygon_distance_is_symmetric_and_zero_inside():
    square = np.array([[0, 0], [4, 0], [4, 4], [0, 4]], float)
    inner = np.array([[1, 1], [2, 1], [2, 2], [1, 2]], float)
    assert polygon_distance(square, inner) == 0.0
    far = inner + [5.0, 0.0]
    assert polygon_distance(square, far) == pytest.approx(2.0)
    assert polygon_distance(far, square) == pytest.approx(2.0)


def test_alpha_shape_of_a_dense_rectangle_and_an_l():
    g = np.stack(np.meshgrid(np.linspace(0, 5, 101), np.linspace(0, 4, 81)), -1).reshape(-1, 2)
    area, centre = alpha_shape_area(g, alpha=5.0)
    assert area == pytest.approx(20.0, rel=1e-9)
    np.testing.assert_allclose(centre, [2.5, 2.0], atol=1e-9)
    # The L keeps its notch: 16 m^2, not the 20 m^2 of its bounding box or hull. Triangles
    # smaller than the alpha radius bridge the re-entrant corner, hence a few dm^2 extra at most.
    ell = g[(g[:, 1] <= 2.0 + 1e-9) | (g[:, 0] <= 3.0 + 1e-9)]
    area, _ = alpha_shape_area(ell, alpha=5.0)
    assert area == pytest.approx(16.0, abs=0.05)


def test_alpha_shape_drops_sparse_gaps_and_degenerate_input():
    # Two 1 x 1 patches 1 m apart: the gap (circumradius > 0.2 m) is not bridged.
    patch = np.stack(np.meshgrid(np.linspace(0, 1, 21), np.linspace(0, 1, 21)), -1).reshape(-1, 2)
    area, _ = alpha_shape_area(np.r_[patch, patch + [2.0, 0.0]], alpha=5.0)
    assert area == pytest.approx(2.0, rel=1e-9)
    assert alpha_shape_area(np.array([[0, 0], [1, 1], [2, 2]], float))[0] == 0.0
    assert alpha_shape_area(np.zeros((0, 2)))[0] == 0.0


def test_unique_rows_matches_numpy():
    from data_gen.qa.geometry import _unique_rows

    rng = np.random.default_rng(0)
    for n in (0, 1, 2, 50, 2000):
        pts = np.round(rng.uniform(-1, 1, (n, 2)), 1)  # many repeats
        np.testing.assert_array_equal(_unique_rows(pts), np.unique(pts, axis=0).reshape(-1, 2))


def test_box_distance_far_apart_shortcut_changes_nothing():
    # box_distance skips the overlap test for footprints whose circumscribed circles are apart.
    rng = np.random.default_rng(1)
    for _ in range(2000):
        scale = rng.choice([0.05, 1.0, 4.0])
        a, b = (
            OrientedBox(tuple(rng.uniform(-3, 3, 3) * scale), tuple(rng.uniform(0, 2, 3)), float(rng.uniform(0, np.pi / 2)))
            for _ in range(2)
        )
        d_xy = polygon_distance(a.corners_xy(), b.corners_xy())
        d_z = max(0.0, a.z_range[0] - b.z_range[1], b.z_range[0] - a.z_range[1])
        assert box_distance(a, b) == math.hypot(d_xy, d_z)
