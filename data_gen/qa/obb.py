"""Freely oriented 3D boxes as VSI-Bench builds them, and exact distances between them.

`minimal_obb` reproduces Open3D 0.18/0.19's `OrientedBoundingBox::CreateFromPointsMinimal`
(`PointCloud.get_minimal_oriented_bounding_box(robust=False)`), which VSI-Bench's box annotations
came from: take the convex hull (Qhull, option `Qt`, so every facet is a triangle), and for every
hull triangle (a, b, c), oriented outward, fit the axis-aligned box of the hull in the frame
u = b - a, w = u x (c - a), v = w x u; keep the smallest volume. That is a heuristic, not the true
minimum: only boxes with a face on a hull facet and an edge along that triangle's first edge are
tried. (Open3D 0.20 replaced it with Jylanki's exact search, whose boxes are smaller by a median
2%, up to 30%, on tests/data_gen/qa/fixtures/obb_open3d.json; we follow the version the benchmark
used, which came out before 0.20.)

Conventions (Open3D's, and the benchmark's meta_info):
- `axes` are the box's unit axes as ROWS: `axes[k]` is the direction of `extents[k]`. Open3D's `R`
  holds the same vectors as columns (`R = axes.T`, world = center + R @ local). meta_info's
  `normalizedAxes` is `axes` flattened row-major, `axesLengths` is `extents`, `centroid` is `center`,
  `min` / `max` bound the box's 8 corners (the same layout as ScanNet++'s and ARKitScenes' boxes).
- Axis order is Open3D's: extents[0] along the chosen triangle edge, extents[1] across it in the
  facet plane, extents[2] along the facet's outward normal. Not sorted by length.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy.spatial import ConvexHull, QhullError

from data_gen.errors import InputError
from data_gen.qa.geometry import OrientedBox, min_area_rect, oriented_box

# Corner k has sign SIGNS[k, i] along axis i: all 8 sign patterns, axis 0 the slowest.
SIGNS = np.array(list(itertools.product((-1.0, 1.0), repeat=3)))  # [8, 3]
# The 12 edges [12, 2]: corner pairs whose sign patterns differ along exactly one axis.
EDGES = np.array([(i, j) for i in range(8) for j in range(i + 1, 8) if (SIGNS[i] != SIGNS[j]).sum() == 1])
# Volumes within this relative margin of the minimum tie; the first such hull triangle wins, so the
# choice does not hang on rounding (Open3D keeps the first strictly smaller volume it computes).
_TIE = 1e-9
# Hull-triangle frames evaluated at once: bounds the [H, T * 3] projection array to ~16 MB.
_CHUNK = 2_000_000
_ORTHO_TOL = 1e-6


@dataclass(frozen=True)
class Box3D:
    """A solid box: `center` [3] (m), unit `axes` [3, 3] as rows, `extents` [3] (m, >= 0, full side
    lengths, `extents[k]` along `axes[k]`). Any array-likes are accepted and stored as float tuples.
    """

    center: tuple[float, float, float]
    axes: tuple[tuple[float, float, float], tuple[float, float, float], tuple[float, float, float]]
    extents: tuple[float, float, float]

    def __post_init__(self) -> None:
        center = np.asarray(self.center, dtype=np.float64)
        axes = np.asarray(self.axes, dtype=np.float64)
        extents = np.asarray(self.extents, dtype=np.float64)
        if center.shape != (3,) or axes.shape != (3, 3) or extents.shape != (3,):
            raise InputError(f"Box3D needs center [3], axes [3, 3], extents [3]; got "
                             f"{center.shape}, {axes.shape}, {extents.shape}")  # fmt: skip
        if not (np.isfinite(center).all() and np.isfinite(axes).all() and np.isfinite(extents).all()):
            raise InputError("Box3D with a non-finite value")
        if (extents < 0).any():
            raise InputError(f"Box3D extents must be >= 0, got {extents.tolist()}")
        if np.abs(axes @ axes.T - np.eye(3)).max() > _ORTHO_TOL:
            raise InputError(f"Box3D axes are not orthonormal: {axes.tolist()}")
        object.__setattr__(self, "center", tuple(float(v) for v in center))
        object.__setattr__(self, "axes", tuple(tuple(float(v) for v in row) for row in axes))
        object.__setattr__(self, "extents", tuple(float(v) for v in extents))

    @classmethod
    def from_rotation(cls, center, rotation, extents) -> Box3D:
        """From Open3D's (center, R, extent): R's COLUMNS are the axes."""
        return cls(center, np.asarray(rotation, dtype=np.float64).T, extents)

    @property
    def rotation(self) -> np.ndarray:
        """[3, 3] Open3D's R: the axes as columns, so world = center + R @ local."""
        return np.asarray(self.axes).T

    @property
    def volume(self) -> float:
        return self.extents[0] * self.extents[1] * self.extents[2]

    @property
    def longest_side(self) -> float:
        return max(self.extents)

    def corners(self) -> np.ndarray:
        """[8, 3]: corner k = center + sum_i SIGNS[k, i] * extents[i] / 2 * axes[i]."""
        return np.asarray(self.center) + (SIGNS * (np.asarray(self.extents) / 2)) @ np.asarray(self.axes)

    def bounds(self) -> tuple[np.ndarray, np.ndarray]:
        """The axis-aligned box around this one: (min [3], max [3]) of the corners."""
        corners = self.corners()
        return corners.min(0), corners.max(0)

    def to_dict(self) -> dict:
        return {"center": list(self.center), "axes": [list(r) for r in self.axes],
                "extents": list(self.extents)}  # fmt: skip

    @classmethod
    def from_dict(cls, d: dict) -> Box3D:
        return cls(d["center"], d["axes"], d["extents"])

    def to_meta_info(self) -> dict:
        """VSI-Bench's meta_info entry (also ScanNet++'s `obb`): normalizedAxes row-major, rows = axes."""
        lo, hi = self.bounds()
        return {
            "centroid": list(self.center),
            "axesLengths": list(self.extents),
            "normalizedAxes": [v for row in self.axes for v in row],
            "min": lo.tolist(),
            "max": hi.tolist(),
        }

    @classmethod
    def from_meta_info(cls, d: dict, bounds_tol: float = 1e-3) -> Box3D:
        """Inverse of `to_meta_info`. When the entry has `min` / `max`, they must bound the box to
        `bounds_tol` metres: that catches an entry written with the axes as columns instead."""
        try:
            axes = np.asarray(d["normalizedAxes"], dtype=np.float64).reshape(3, 3)
            box = cls(d["centroid"], axes, d["axesLengths"])
        except (KeyError, TypeError, ValueError) as e:
            raise InputError(f"malformed meta_info box {d!r}: {e}") from e
        if "min" in d and "max" in d:
            given = np.r_[np.asarray(d["min"], dtype=np.float64), np.asarray(d["max"], dtype=np.float64)]
            if np.abs(np.r_[box.bounds()] - given).max() > bounds_tol:
                transposed = cls(d["centroid"], axes.T, d["axesLengths"])
                fits = np.abs(np.r_[transposed.bounds()] - given).max() <= bounds_tol
                hint = " (they fit normalizedAxes read as columns)" if fits else ""
                raise InputError(f"meta_info box min/max do not bound its oriented box{hint}: {d!r}")
        return box


def prism_box(prism: OrientedBox) -> Box3D:
    """A z-aligned prism (`geometry.OrientedBox`) as a Box3D: axes along yaw, across it, and up."""
    c, s = math.cos(prism.yaw), math.sin(prism.yaw)
    return Box3D(prism.center, ((c, s, 0.0), (-s, c, 0.0), (0.0, 0.0, 1.0)), prism.size)


def upright_box(points: np.ndarray) -> Box3D:
    """The upright alternative to `minimal_obb`: the minimal-area floor rectangle of points [N, 3]
    times their vertical extent (`qa.boxes=upright`; our boxes before VSI-Bench's were matched)."""
    return prism_box(oriented_box(points))


def minimal_obb(points: np.ndarray) -> Box3D:
    """Open3D 0.18/0.19's minimal oriented box of points [N, 3] (see the module docstring).

    Degenerate inputs, on which Open3D raises (Qhull QH6214 for fewer than 4 points, QH6154 for
    coplanar or collinear ones; robust=True instead joggles them into a ~1e-10 m thick box): we
    return the exact flat box, the minimal-area rectangle of the points in their best-fit plane
    times their spread along its normal (0 when exactly coplanar); collinear points give a segment
    (two extents ~0), a single point (or copies of it) a box of extents 0.
    """
    pts = np.asarray(points, dtype=np.float64).reshape(-1, 3)
    if len(pts) == 0:
        raise InputError("minimal_obb of no points")
    if not np.isfinite(pts).all():
        raise InputError("minimal_obb of non-finite points")
    origin = pts.mean(0)
    local = pts - origin  # conditioning: room coordinates are metres away from the object
    box = None
    if len(pts) >= 4:
        try:
            hull = ConvexHull(pts, qhull_options="Qt")  # Open3D's input and options (robust=False)
        except QhullError:
            hull = None
        if hull is not None:
            box = _hull_box(local, hull)
    center, axes, extents = box if box is not None else _flat_box(local)
    return Box3D(center + origin, axes, extents)


def _hull_box(pts: np.ndarray, hull: ConvexHull) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """Open3D's per-hull-triangle search over `hull` of points [N, 3] (centred copies of the points
    Qhull saw) -> (center [3], axes [3, 3] rows, extents [3]); None if every triangle is degenerate."""
    verts = pts[hull.vertices]  # [H, 3]
    tri = pts[hull.simplices]  # [T, 3, 3]: Qhull's vertex order, as Open3D reads it
    a, b, c = tri[:, 0], tri[:, 1], tri[:, 2]
    # Open3D orients each triangle outward (seen from the hull vertices' mean) by swapping a and b.
    inward = np.einsum("td,td->t", np.cross(b - a, c - a), (a + b + c) / 3 - verts.mean(0)) < 0
    a, b = np.where(inward[:, None], b, a), np.where(inward[:, None], a, b)
    u = b - a
    w = np.cross(u, c - a)
    v = np.cross(w, u)
    frames = np.stack([u, v, w], axis=1)  # [T, 3, 3]: row k of frames[t] is axis k of triangle t
    with np.errstate(invalid="ignore", divide="ignore"):  # zero-area triangles give NaN frames
        frames = frames / np.linalg.norm(frames, axis=2, keepdims=True)
    lo = np.empty((len(tri), 3))
    hi = np.empty((len(tri), 3))
    step = max(1, _CHUNK // (3 * len(verts)))
    for s in range(0, len(tri), step):
        chunk = frames[s : s + step]  # [t, 3, 3]
        proj = verts @ chunk.reshape(-1, 3).T  # [H, t*3]: every hull vertex in every frame
        lo[s : s + step] = proj.min(0).reshape(-1, 3)
        hi[s : s + step] = proj.max(0).reshape(-1, 3)
    volume = np.prod(hi - lo, axis=1)  # [T]
    volume = np.where(np.isfinite(volume), volume, np.inf)
    if not np.isfinite(volume).any():
        return None
    best = int(np.argmax(volume <= volume.min() * (1 + _TIE)))
    axes = frames[best]
    center = ((lo[best] + hi[best]) / 2) @ axes
    return center, axes, hi[best] - lo[best]


def _flat_box(pts: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Points [N, 3] (centred) with no 3D hull -> the flat box of `minimal_obb`'s docstring."""
    _, _, vt = np.linalg.svd(pts, full_matrices=True)  # rows: principal directions, widest first
    e1, e2 = vt[0], vt[1]
    center2, size2, yaw = min_area_rect(pts @ np.stack([e1, e2]).T)
    u = math.cos(yaw) * e1 + math.sin(yaw) * e2
    v = -math.sin(yaw) * e1 + math.cos(yaw) * e2
    w = np.cross(u, v)
    t = pts @ w
    center = center2[0] * e1 + center2[1] * e2 + (t.max() + t.min()) / 2 * w
    return center, np.stack([u, v, w]), np.array([size2[0], size2[1], t.max() - t.min()])


def box_distance(a: Box3D, b: Box3D) -> float:
    """Exact closest-point distance between two solid boxes, metres; 0 when they touch or overlap."""
    return float(_pair_distances(*_arrays([a]), *_arrays([b]))[0])


def box_distances(boxes: Sequence[Box3D]) -> np.ndarray:
    """[N, N] `box_distance` of every pair, vectorised over pairs (0 on the diagonal)."""
    n = len(boxes)
    out = np.zeros((n, n))
    i, j = np.triu_indices(n, k=1)
    c, ax, h = _arrays(boxes)
    for s in range(0, len(i), 512):  # bounds the [P, 12, 12, 3] edge-pair arrays
        ii, jj = i[s : s + 512], j[s : s + 512]
        d = _pair_distances(c[ii], ax[ii], h[ii], c[jj], ax[jj], h[jj])
        out[ii, jj] = d
        out[jj, ii] = d
    return out


def _arrays(boxes: Sequence[Box3D]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Boxes -> centers [P, 3], axes [P, 3, 3] (rows), half extents [P, 3]."""
    return (
        np.array([bx.center for bx in boxes], dtype=np.float64).reshape(-1, 3),
        np.array([bx.axes for bx in boxes], dtype=np.float64).reshape(-1, 3, 3),
        np.array([bx.extents for bx in boxes], dtype=np.float64).reshape(-1, 3) / 2,
    )


def _pair_distances(ca, axa, ha, cb, axb, hb) -> np.ndarray:
    """[P] distances between P box pairs (centers [P, 3], axes [P, 3, 3], half extents [P, 3]).

    Two convex polytopes meet iff an edge of one meets the other (a vertex of their intersection
    lies on two faces of one of them, so on its edge). When they do not, the closest pair of points
    is a vertex of one and the other solid, or an edge of each (a face-face or face-edge minimum is
    also reached at such a pair). All three are exact, so the minimum over them is.
    """
    corners_a = ca[:, None] + (SIGNS * ha[:, None]) @ axa  # [P, 8, 3]
    corners_b = cb[:, None] + (SIGNS * hb[:, None]) @ axb  # [P, 8, 3]
    meet = _edges_meet_box(corners_a, cb, axb, hb) | _edges_meet_box(corners_b, ca, axa, ha)  # [P]
    vertex = np.minimum(
        _points_box_distance(corners_a, cb, axb, hb).min(1),
        _points_box_distance(corners_b, ca, axa, ha).min(1),
    )  # [P]
    ea0, ea1 = corners_a[:, EDGES[:, 0]], corners_a[:, EDGES[:, 1]]  # [P, 12, 3]
    eb0, eb1 = corners_b[:, EDGES[:, 0]], corners_b[:, EDGES[:, 1]]
    edge = _segments_distance(ea0[:, :, None], ea1[:, :, None], eb0[:, None], eb1[:, None])  # [P, 12, 12]
    return np.where(meet, 0.0, np.minimum(vertex, edge.min((1, 2))))


def _points_box_distance(pts: np.ndarray, c: np.ndarray, ax: np.ndarray, h: np.ndarray) -> np.ndarray:
    """Distance from points [P, M, 3] to solid boxes [P] -> [P, M]."""
    local = (pts - c[:, None]) @ ax.transpose(0, 2, 1)  # [P, M, 3] in the box's frame
    return np.linalg.norm(np.maximum(np.abs(local) - h[:, None], 0.0), axis=-1)


def _edges_meet_box(corners: np.ndarray, c: np.ndarray, ax: np.ndarray, h: np.ndarray) -> np.ndarray:
    """Whether any of the 12 edges of boxes given by corners [P, 8, 3] meets solid box [P] -> [P]."""
    p0 = (corners[:, EDGES[:, 0]] - c[:, None]) @ ax.transpose(0, 2, 1)  # [P, 12, 3] box frame
    d = (corners[:, EDGES[:, 1]] - c[:, None]) @ ax.transpose(0, 2, 1) - p0  # [P, 12, 3]
    hh = h[:, None]  # [P, 1, 3]
    moving = d != 0
    with np.errstate(divide="ignore", invalid="ignore"):
        t1, t2 = (-hh - p0) / d, (hh - p0) / d
    # Slab clipping of the parameter range [0, 1]; an edge parallel to a slab must start inside it.
    enter = np.where(moving, np.minimum(t1, t2), -np.inf).max(-1)  # [P, 12]
    leave = np.where(moving, np.maximum(t1, t2), np.inf).min(-1)
    inside = (moving | (np.abs(p0) <= hh)).all(-1)
    return (inside & (np.maximum(enter, 0.0) <= np.minimum(leave, 1.0))).any(-1)


def _segments_distance(p1, q1, p2, q2) -> np.ndarray:
    """Distance between segments p1-q1 and p2-q2 (broadcast [..., 3]) -> [...]; any may be a point.

    Minimises |p1 + s d1 - p2 - t d2| over s, t in [0, 1]: the unconstrained s, clamped; t from s,
    clamped; then s again from the clamped t (the standard closed-form, parallel segments included).
    """
    d1, d2, r = q1 - p1, q2 - p2, p1 - p2
    a = (d1 * d1).sum(-1)
    e = (d2 * d2).sum(-1)
    b = (d1 * d2).sum(-1)
    c = (d1 * r).sum(-1)
    f = (d2 * r).sum(-1)
    denom = a * e - b * b  # >= 0; 0 when parallel (or either is a point)
    with np.errstate(divide="ignore", invalid="ignore"):
        s = np.where(denom > 0, np.clip((b * f - c * e) / denom, 0.0, 1.0), 0.0)
        t = np.where(e > 0, (b * s + f) / e, 0.0)
        t = np.clip(t, 0.0, 1.0)
        s = np.where(a > 0, np.clip((b * t - c) / a, 0.0, 1.0), 0.0)
    return np.linalg.norm(r + s[..., None] * d1 - t[..., None] * d2, axis=-1)
