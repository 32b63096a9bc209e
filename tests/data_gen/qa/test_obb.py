"""Free oriented boxes: `minimal_obb` against Open3D's own output (fixtures/obb_open3d.json, made by
fixtures/make_obb_fixtures.py), the meta_info layout, and `box_distance` against hand-computed
distances, the z-aligned prism distance of geometry.py, a bounded least-squares solve and dense
surface sampling."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from scipy.optimize import lsq_linear
from scipy.spatial import cKDTree
from scipy.spatial.transform import Rotation

from data_gen.errors import InputError
from data_gen.qa import geometry
from data_gen.qa.obb import Box3D, box_distance, box_distances, minimal_obb

FIXTURE = json.loads((Path(__file__).parent / "fixtures" / "obb_open3d.json").read_text())
CASES = {c["name"]: c for c in FIXTURE["cases"]}
DEGENERATE = {c["name"]: c for c in FIXTURE["degenerate"]}
# Cases whose smallest volume is reached by different boxes: a tetrahedron's faces through one edge
# all give the same volume (edge length x twice the area of the triangle seen along it), and which
# of them Open3D keeps hangs on its rounding. Only the volume is compared there.
TIED = {"tetrahedron_4"}
S2 = math.sqrt(2) / 2


def aabb(lo, hi) -> Box3D:
    lo, hi = np.asarray(lo, float), np.asarray(hi, float)
    return Box3D((lo + hi) / 2, np.eye(3), hi - lo)


def turned(box: Box3D, rotvec, about=None) -> Box3D:
    """`box` rotated by a rotation vector (radians) about `about` (default: its centre)."""
    r = Rotation.from_rotvec(rotvec).as_matrix()
    about = np.asarray(box.center if about is None else about, float)
    return Box3D(r @ (np.asarray(box.center) - about) + about, np.asarray(box.axes) @ r.T, box.extents)


def random_box(rng: np.random.Generator, spread: float = 1.5) -> Box3D:
    axes = Rotation.random(random_state=int(rng.integers(1 << 31))).as_matrix().T
    return Box3D(rng.uniform(-spread, spread, 3), axes, rng.uniform(0.05, 1.5, 3))


def corner_set_distance(a: np.ndarray, b: np.ndarray) -> float:
    """Hausdorff distance between two corner sets [8, 3]."""
    d = np.linalg.norm(a[:, None] - b[None], axis=-1)
    return float(max(d.min(0).max(), d.min(1).max()))


def local_coords(box: Box3D, pts: np.ndarray) -> np.ndarray:
    return (np.asarray(pts) - np.asarray(box.center)) @ np.asarray(box.axes).T


# ---------------------------------------------------------------------------- minimal_obb


def test_fixture_says_which_open3d_made_it():
    assert FIXTURE["open3d_version"] == "0.19.0"
    assert "0.18.0" in FIXTURE["identical_in"]  # the algorithm did not change between the two
    assert len(CASES) >= 10


@pytest.mark.parametrize("name", sorted(CASES))
def test_minimal_obb_matches_open3d(name):
    case = CASES[name]
    box = minimal_obb(np.array(case["points"]))
    ref = Box3D.from_rotation(case["center"], case["R"], case["extent"])
    assert box.volume == pytest.approx(case["volume"], rel=1e-6, abs=1e-12)
    if name in TIED:
        return
    np.testing.assert_allclose(sorted(box.extents), sorted(case["extent"]), atol=1e-6)
    assert corner_set_distance(box.corners(), ref.corners()) < 1e-6
    # Same axis order and signs as Open3D, not just the same box.
    np.testing.assert_allclose(box.rotation, case["R"], atol=1e-6)
    np.testing.assert_allclose(box.extents, case["extent"], atol=1e-6)


@pytest.mark.parametrize("name", sorted(CASES))
def test_minimal_obb_holds_its_points_tightly(name):
    pts = np.array(CASES[name]["points"])
    box = minimal_obb(pts)
    q = local_coords(box, pts)  # [N, 3]
    h = np.asarray(box.extents) / 2
    assert (np.abs(q) <= h + 1e-9).all()
    # Every face touches a point.
    np.testing.assert_allclose(q.max(0), h, atol=1e-9)
    np.testing.assert_allclose(q.min(0), -h, atol=1e-9)
    assert np.linalg.det(box.rotation) == pytest.approx(1.0)


def test_tied_case_is_a_true_tie():
    case = CASES["tetrahedron_4"]
    box = minimal_obb(np.array(case["points"]))
    assert box.volume == pytest.approx(case["volume"], rel=1e-12)


@pytest.mark.parametrize("name", sorted(DEGENERATE))
def test_open3d_fails_on_degenerate_inputs(name):
    assert DEGENERATE[name]["error"].startswith(("QH6214", "QH6154", "QH6421"))


def test_three_points_give_their_flat_rectangle():
    pts = np.array(DEGENERATE["three_points"]["points"])
    box = minimal_obb(pts)
    assert min(box.extents) < 1e-12
    # A triangle's smallest rectangle has a side on a triangle side: area = twice the triangle's.
    area = np.prod(sorted(box.extents)[1:])
    assert area == pytest.approx(np.linalg.norm(np.cross(pts[1] - pts[0], pts[2] - pts[0])), rel=1e-9)
    assert (np.abs(local_coords(box, pts)) <= np.asarray(box.extents) / 2 + 1e-9).all()


def test_coplanar_points_give_the_minimal_area_rectangle():
    pts = np.array(DEGENERATE["coplanar"]["points"])  # all at z = 1.5
    box = minimal_obb(pts)
    _, size, _ = geometry.min_area_rect(pts[:, :2])
    assert min(box.extents) < 1e-12
    np.testing.assert_allclose(sorted(box.extents)[1:], sorted(size), atol=1e-9)
    assert box.center[2] == pytest.approx(1.5)
    assert (np.abs(local_coords(box, pts)) <= np.asarray(box.extents) / 2 + 1e-9).all()


def test_collinear_points_give_a_segment():
    pts = np.array(DEGENERATE["collinear"]["points"])
    box = minimal_obb(pts)
    ext = sorted(box.extents)
    assert ext[0] < 1e-12 and ext[1] < 1e-12
    assert ext[2] == pytest.approx(np.linalg.norm(pts[-1] - pts[0]))
    np.testing.assert_allclose(box.center, (pts[0] + pts[-1]) / 2, atol=1e-12)


@pytest.mark.parametrize("name", ["one_point", "same_point_4x"])
def test_a_single_point_gives_an_empty_box(name):
    pts = np.array(DEGENERATE[name]["points"])
    box = minimal_obb(pts)
    assert box.extents == (0.0, 0.0, 0.0)
    np.testing.assert_allclose(box.center, pts[0])


def test_minimal_obb_rejects_empty_and_non_finite_points():
    with pytest.raises(InputError):
        minimal_obb(np.zeros((0, 3)))
    with pytest.raises(InputError):
        minimal_obb(np.array([[0.0, 0.0, np.nan]] * 4))


def test_minimal_obb_of_a_tilted_box_is_that_box():
    box = Box3D([1.0, -2.0, 0.7], Rotation.from_rotvec([0.3, -0.5, 0.9]).as_matrix().T, [0.9, 0.4, 0.25])
    rng = np.random.default_rng(3)
    inner = box.center + (rng.uniform(-0.5, 0.5, (200, 3)) * box.extents) @ np.asarray(box.axes)
    fitted = minimal_obb(np.r_[box.corners(), inner])
    assert corner_set_distance(fitted.corners(), box.corners()) < 1e-9


# ---------------------------------------------------------------------------- Box3D


def test_corners_are_the_eight_sign_patterns():
    box = aabb([0, 0, 0], [1, 2, 3])
    c = box.corners()
    assert c.shape == (8, 3)
    assert len({tuple(p) for p in c.tolist()}) == 8
    assert {tuple(p) for p in c.tolist()} == {(x, y, z) for x in (0, 1) for y in (0, 2) for z in (0, 3)}
    assert box.longest_side == 3.0
    assert box.volume == 6.0


def test_axes_are_rows_and_open3d_rotation_is_columns():
    r = Rotation.from_rotvec([0.2, 0.4, -0.3]).as_matrix()
    box = Box3D.from_rotation([1, 2, 3], r, [0.5, 1.0, 2.0])
    np.testing.assert_allclose(box.axes, r.T)
    np.testing.assert_allclose(box.rotation, r)
    # Open3D's GetBoxPoints: center + R @ (+-extent / 2), in its own order.
    signs = 2 * np.array(list(np.ndindex(2, 2, 2))) - 1  # [8, 3]
    o3d_points = np.array([box.center + r @ (s * np.array(box.extents) / 2) for s in signs])
    assert corner_set_distance(box.corners(), o3d_points) < 1e-12


def test_meta_info_of_a_box_turned_45_degrees():
    box = Box3D([1.0, 2.0, 0.5], [[S2, S2, 0], [-S2, S2, 0], [0, 0, 1]], [2.0, 1.0, 1.0])
    m = box.to_meta_info()
    assert set(m) == {"centroid", "axesLengths", "normalizedAxes", "min", "max"}
    assert m["normalizedAxes"] == [S2, S2, 0, -S2, S2, 0, 0, 0, 1]  # row-major, rows = axes
    half = 1.5 * S2  # (1 + 0.5) cos 45 along x and along y
    np.testing.assert_allclose(m["min"], [1 - half, 2 - half, 0.0])
    np.testing.assert_allclose(m["max"], [1 + half, 2 + half, 1.0])


def test_meta_info_and_dict_round_trip_exactly_through_json():
    box = minimal_obb(np.array(CASES["table_scanned"]["points"]))
    assert Box3D.from_meta_info(json.loads(json.dumps(box.to_meta_info()))) == box
    assert Box3D.from_dict(json.loads(json.dumps(box.to_dict()))) == box


def test_from_meta_info_reads_a_scannetpp_box():
    # An `obb` entry of ScanNet++'s segments_anno.json: the layout VSI-Bench's meta_info uses.
    entry = {
        "centroid": [6.650374448475603, 1.900442331056328, 3.092642188072204],
        "axesLengths": [3.63003116534402, 0.2991878986358648, 1.2790911125582163],
        "normalizedAxes": [-0.0011438008336857619, -0.9999993458596126, -2.2204445967668742e-16, 0,
                           -2.220446049250313e-16, 1, -0.9999993458596126, 0.0011438008336857619,
                           2.5397480422867643e-19],  # fmt: skip
        "min": [6.008753294212459, 0.08469642291886226, 2.943048238754271],
        "max": [7.291995602738746, 3.716188239193794, 3.242236137390137],
    }
    box = Box3D.from_meta_info(entry)  # min / max agree only with the rows-are-axes reading
    assert box.longest_side == pytest.approx(3.63003116534402)
    lo, hi = box.bounds()
    np.testing.assert_allclose(lo, entry["min"], atol=1e-9)
    np.testing.assert_allclose(hi, entry["max"], atol=1e-9)


def test_from_meta_info_rejects_axes_written_as_columns():
    box = Box3D([0, 0, 0], Rotation.from_rotvec([0.3, 0.2, 0.6]).as_matrix().T, [2.0, 0.5, 0.3])
    m = box.to_meta_info()
    m["normalizedAxes"] = np.asarray(box.axes).T.ravel().tolist()
    with pytest.raises(InputError, match="columns"):
        Box3D.from_meta_info(m)


def test_box3d_rejects_bad_values():
    with pytest.raises(InputError):
        Box3D([0, 0, 0], np.eye(3), [1, -1, 1])
    with pytest.raises(InputError):
        Box3D([0, 0, 0], [[1, 0, 0], [1, 0, 0], [0, 0, 1]], [1, 1, 1])
    with pytest.raises(InputError):
        Box3D([0, 0], np.eye(3), [1, 1, 1])


# ---------------------------------------------------------------------------- box_distance

UNIT = aabb([0, 0, 0], [1, 1, 1])


@pytest.mark.parametrize(
    ("other", "expected"),
    [
        (aabb([2, 0, 0], [3, 1, 1]), 1.0),  # face to face
        (aabb([2, 3, 0], [3, 4, 1]), math.sqrt(5)),  # edge to edge, parallel
        (aabb([2, 2, 2], [3, 3, 3]), math.sqrt(3)),  # corner to corner
        (aabb([0.2, 0.3, 1.5], [0.6, 0.6, 2]), 0.5),  # above the top face
        (aabb([1, 0, 0], [2, 1, 1]), 0.0),  # touching faces
        (aabb([1, 1, 1], [2, 2, 2]), 0.0),  # touching corners
        (aabb([0.5, 0.5, 0.5], [3, 3, 3]), 0.0),  # overlapping
        (aabb([0.2, 0.2, 0.2], [0.4, 0.4, 0.4]), 0.0),  # inside
        (aabb([-1, -1, -1], [2, 2, 2]), 0.0),  # around
    ],
)
def test_box_distance_of_axis_aligned_boxes(other, expected):
    assert box_distance(UNIT, other) == pytest.approx(expected, abs=1e-12)
    assert box_distance(other, UNIT) == pytest.approx(expected, abs=1e-12)


def test_box_distance_to_a_box_turned_45_degrees_about_z():
    # A unit cube turned 45 degrees, centred at x = 3: its vertical edge at x = 3 - sqrt(2)/2.
    other = turned(aabb([2.5, 0, 0], [3.5, 1, 1]), [0, 0, math.pi / 4])
    assert box_distance(UNIT, other) == pytest.approx(2 - S2, abs=1e-12)
    # On the diagonal beyond UNIT's vertical edge at (1, 1): the turned cube's faces now face the
    # diagonals, the nearest 0.5 from its centre, so the centre sits 0.9 from that edge.
    c = 1 + 0.9 * S2
    other = turned(aabb([c - 0.5, c - 0.5, 0.2], [c + 0.5, c + 0.5, 1.2]), [0, 0, math.pi / 4])
    assert box_distance(UNIT, other) == pytest.approx(0.4, abs=1e-12)


def test_box_distance_to_tilted_boxes():
    # Turned 45 degrees about x: its lowest edge runs along x at z = 1.25.
    other = turned(aabb([0, 0, 0], [1, 1, 1]), [math.pi / 4, 0, 0], about=[0.5, 0.5, 0.5])
    other = Box3D(np.add(other.center, [0, 0, 1.25 + S2 - 0.5]), other.axes, other.extents)
    assert box_distance(UNIT, other) == pytest.approx(0.25, abs=1e-12)
    # A cube standing on a corner (body diagonal vertical) above the middle of the top face.
    up = Rotation.align_vectors([[0, 0, 1]], [[1, 1, 1]])[0].as_matrix()
    corner_down = Box3D([0.5, 0.5, 1.3 + math.sqrt(3) / 2], up.T, [1, 1, 1])
    assert box_distance(UNIT, corner_down) == pytest.approx(0.3, abs=1e-12)
    # Edge to edge across: A's top edge along x, B's bottom edge along y, 0.1 apart.
    a = turned(aabb([-1, -1, -1], [1, 1, 1]), [math.pi / 4, 0, 0])
    b = turned(aabb([-1, -1, -1], [1, 1, 1]), [0, math.pi / 4, 0])
    b = Box3D([0, 0, 2 * math.sqrt(2) + 0.1], b.axes, b.extents)
    assert box_distance(a, b) == pytest.approx(0.1, abs=1e-12)


def test_box_distance_of_crossing_boxes_is_zero():
    # A plus sign: no corner of either box is inside the other.
    a = aabb([-2, -0.1, -0.1], [2, 0.1, 0.1])
    b = turned(aabb([-0.1, -2, -0.2], [0.1, 2, 0.2]), [0.3, 0, 0.2])
    assert box_distance(a, b) == 0.0
    assert box_distance(b, a) == 0.0


def test_box_distance_of_flat_boxes():
    point_a, point_b = Box3D([0, 0, 0], np.eye(3), [0, 0, 0]), Box3D([1, 2, 2], np.eye(3), [0, 0, 0])
    assert box_distance(point_a, point_b) == pytest.approx(3.0)
    sheet = turned(Box3D([0, 0, 0], np.eye(3), [2, 2, 0]), [0, 0, 0.4])  # a square in z = 0
    assert box_distance(sheet, Box3D([0.3, -0.2, 0.7], np.eye(3), [0, 0, 0])) == pytest.approx(0.7)
    assert box_distance(sheet, aabb([-0.1, -0.1, -0.1], [0.1, 0.1, 0.1])) == 0.0


def prism(box: geometry.OrientedBox) -> Box3D:
    c, s = math.cos(box.yaw), math.sin(box.yaw)
    return Box3D(box.center, [[c, s, 0], [-s, c, 0], [0, 0, 1]], box.size)


def test_box_distance_matches_geometry_on_z_aligned_prisms():
    rng = np.random.default_rng(11)
    for _ in range(300):
        a, b = (geometry.OrientedBox(tuple(rng.uniform(-1.5, 1.5, 3)), tuple(rng.uniform(0.05, 1.5, 3)),
                                     float(rng.uniform(0, math.pi / 2))) for _ in range(2))  # fmt: skip
        assert box_distance(prism(a), prism(b)) == pytest.approx(geometry.box_distance(a, b), abs=1e-9)


def least_squares_distance(a: Box3D, b: Box3D) -> float:
    """min |ca + A^T s - cb - B^T t| over |s| <= ha, |t| <= hb: a bounded linear least squares."""
    m = np.c_[np.asarray(a.axes).T, -np.asarray(b.axes).T]  # [3, 6]
    h = np.maximum(np.r_[a.extents, b.extents] / 2, 1e-12)  # lsq_linear needs lower < upper
    res = lsq_linear(m, np.subtract(b.center, a.center), bounds=(-h, h), method="bvls", tol=1e-14)
    return float(np.linalg.norm(m @ res.x - np.subtract(b.center, a.center)))


def test_box_distance_matches_bounded_least_squares_on_random_pairs():
    rng = np.random.default_rng(5)
    pairs = [(random_box(rng), random_box(rng)) for _ in range(300)]
    ours = np.array([box_distance(a, b) for a, b in pairs])
    ref = np.array([least_squares_distance(a, b) for a, b in pairs])
    assert (ours == 0).sum() > 20 and (ours > 0.1).sum() > 100  # both regimes exercised
    np.testing.assert_allclose(ours, ref, atol=1e-6)


def surface_samples(box: Box3D, spacing: float) -> np.ndarray:
    """Grid points on the 6 faces, at most `spacing` apart -> [P, 3]."""
    h = np.asarray(box.extents) / 2
    pts = []
    for axis in range(3):
        i, j = [k for k in range(3) if k != axis]
        gi = np.linspace(-h[i], h[i], int(math.ceil(2 * h[i] / spacing)) + 1)
        gj = np.linspace(-h[j], h[j], int(math.ceil(2 * h[j] / spacing)) + 1)
        ui, uj = np.meshgrid(gi, gj, indexing="ij")
        for side in (-1, 1):
            q = np.zeros((ui.size, 3))
            q[:, i], q[:, j], q[:, axis] = ui.ravel(), uj.ravel(), side * h[axis]
            pts.append(q)
    return np.asarray(box.center) + np.concatenate(pts) @ np.asarray(box.axes)


def brute_force_distance(a: Box3D, b: Box3D, spacing: float) -> float:
    pa, pb = surface_samples(a, spacing), surface_samples(b, spacing)
    for box, pts in ((a, pb), (b, pa)):
        if (np.abs(local_coords(box, pts)) <= np.asarray(box.extents) / 2 + 1e-12).all(1).any():
            return 0.0  # a sample of one inside the other
    return float(cKDTree(pa).query(pb)[0].min())


def test_box_distance_matches_dense_surface_sampling_on_random_pairs():
    rng = np.random.default_rng(9)
    spacing = 0.02
    for _ in range(25):
        a, b = random_box(rng, spread=1.0), random_box(rng, spread=1.0)
        exact, brute = box_distance(a, b), brute_force_distance(a, b, spacing)
        # Samples are points of the boxes (brute >= exact); each surface point is within
        # spacing / sqrt(2) of a sample (brute <= exact + sqrt(2) spacing).
        assert exact - 1e-9 <= brute <= exact + math.sqrt(2) * spacing + 1e-9


def test_box_distances_is_every_pair():
    rng = np.random.default_rng(2)
    boxes = [random_box(rng, spread=3.0) for _ in range(12)]
    d = box_distances(boxes)
    assert d.shape == (12, 12)
    np.testing.assert_array_equal(np.diag(d), 0.0)
    for i in range(12):
        for j in range(12):
            if i != j:
                assert d[i, j] == pytest.approx(box_distance(boxes[i], boxes[j]), abs=1e-12)
