"""Pure geometry in the aligned frame (+z up, metres): oriented boxes, their distances, alpha shapes.

An object's box is a prism: a minimal-area rectangle in the floor plane times its vertical
extent. That keeps distances exact and cheap: the closest-point distance between two prisms is
sqrt(d_xy^2 + d_z^2), because the xy and z parts of the two point sets vary independently.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.spatial import ConvexHull, Delaunay, QhullError


@dataclass(frozen=True)
class OrientedBox:
    """A z-aligned box: `size[0]` along (cos yaw, sin yaw), `size[1]` across it, `size[2]` up."""

    center: tuple[float, float, float]  # metres
    size: tuple[float, float, float]  # metres, >= 0
    yaw: float  # radians in [0, pi/2)

    @property
    def z_range(self) -> tuple[float, float]:
        return self.center[2] - self.size[2] / 2, self.center[2] + self.size[2] / 2

    def corners_xy(self) -> np.ndarray:
        """[4, 2] footprint corners, counter-clockwise."""
        c, s = math.cos(self.yaw), math.sin(self.yaw)
        hx, hy = self.size[0] / 2, self.size[1] / 2
        local = np.array([[-hx, -hy], [hx, -hy], [hx, hy], [-hx, hy]])  # [4, 2]
        rot = np.array([[c, -s], [s, c]])
        return local @ rot.T + np.asarray(self.center[:2])

    def corners(self) -> np.ndarray:
        """[8, 3]: the footprint at the bottom, then at the top."""
        xy = self.corners_xy()
        z0, z1 = self.z_range
        return np.concatenate([np.c_[xy, np.full(4, z0)], np.c_[xy, np.full(4, z1)]])

    def to_dict(self) -> dict:
        return {"center": list(self.center), "size": list(self.size), "yaw": self.yaw}

    @classmethod
    def from_dict(cls, d: dict) -> OrientedBox:
        return cls(tuple(float(v) for v in d["center"]), tuple(float(v) for v in d["size"]), float(d["yaw"]))


def min_area_rect(points: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
    """Minimal-area enclosing rectangle of 2D points [N, 2] -> (center [2], size [2], yaw).

    One side of the optimal rectangle lies on a convex-hull edge, so trying every hull edge's
    direction is exact. yaw is folded into [0, pi/2); size[0] lies along yaw.
    """
    pts = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    if len(pts) == 0:
        raise ValueError("min_area_rect of no points")
    try:
        hull = pts[ConvexHull(pts).vertices]  # [H, 2]
    except (QhullError, ValueError):
        hull = pts  # collinear or too few points: every point is a candidate direction source
    edges = np.roll(hull, -1, axis=0) - hull  # [H, 2]
    angles = np.mod(np.arctan2(edges[:, 1], edges[:, 0]), np.pi / 2)
    angles = np.where(angles > np.pi / 2 - 1e-9, 0.0, angles)
    angles = np.unique(np.append(angles, 0.0))  # [A]; 0 covers the degenerate cases
    c, s = np.cos(angles), np.sin(angles)
    # Coordinates of the hull in each candidate frame: u along yaw, v across.
    u = hull[None, :, 0] * c[:, None] + hull[None, :, 1] * s[:, None]  # [A, H]
    v = -hull[None, :, 0] * s[:, None] + hull[None, :, 1] * c[:, None]  # [A, H]
    du, dv = u.max(1) - u.min(1), v.max(1) - v.min(1)
    # Prefer the axis-aligned answer when areas tie to rounding, so boxes stay readable.
    area = np.round(du * dv, 9)
    best = int(np.argmin(area))
    a = float(angles[best])
    cu, cv = (u[best].max() + u[best].min()) / 2, (v[best].max() + v[best].min()) / 2
    center = np.array([cu * math.cos(a) - cv * math.sin(a), cu * math.sin(a) + cv * math.cos(a)])
    return center, np.array([du[best], dv[best]]), a


def oriented_box(points: np.ndarray) -> OrientedBox:
    """Box of 3D points [N, 3]: minimal-area floor rectangle x vertical extent."""
    pts = np.asarray(points, dtype=np.float64).reshape(-1, 3)
    center_xy, size_xy, yaw = min_area_rect(pts[:, :2])
    z0, z1 = float(pts[:, 2].min()), float(pts[:, 2].max())
    return OrientedBox(
        (float(center_xy[0]), float(center_xy[1]), (z0 + z1) / 2),
        (float(size_xy[0]), float(size_xy[1]), z1 - z0),
        yaw,
    )


def _segments_point_distance(p: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Distance from points p [P, 2] to segments a->b [S, 2] -> [P, S]."""
    ab = b - a  # [S, 2]
    ap = p[:, None, :] - a[None]  # [P, S, 2]
    t = np.clip((ap * ab).sum(-1) / np.maximum((ab * ab).sum(-1), 1e-18), 0.0, 1.0)  # [P, S]
    return np.linalg.norm(ap - t[..., None] * ab, axis=-1)


def _convex_overlap(p: np.ndarray, q: np.ndarray) -> bool:
    """Separating-axis test for two convex polygons [N, 2] (touching counts as overlap)."""
    for poly in (p, q):
        edges = np.roll(poly, -1, axis=0) - poly
        normals = np.c_[-edges[:, 1], edges[:, 0]]  # [E, 2]
        pp, qq = p @ normals.T, q @ normals.T  # [N, E]
        if np.any((pp.max(0) < qq.min(0) - 1e-12) | (qq.max(0) < pp.min(0) - 1e-12)):
            return False
    return True


def polygon_distance(p: np.ndarray, q: np.ndarray) -> float:
    """Closest-point distance between two convex polygons [N, 2], [M, 2]; 0 when they overlap."""
    if _convex_overlap(p, q):
        return 0.0
    return _disjoint_polygon_distance(p, q)


def _disjoint_polygon_distance(p: np.ndarray, q: np.ndarray) -> float:
    # Disjoint convex polygons: the minimum is reached at a vertex of one and an edge of the other.
    d1 = _segments_point_distance(p, q, np.roll(q, -1, axis=0)).min()
    d2 = _segments_point_distance(q, p, np.roll(p, -1, axis=0)).min()
    return float(min(d1, d2))


def box_distance(a: OrientedBox, b: OrientedBox) -> float:
    """Exact closest-point distance between two solid z-aligned boxes, metres (0 if they touch)."""
    pa, pb = a.corners_xy(), b.corners_xy()
    # Footprints whose circumscribed circles are over a millimetre apart are disjoint: skip the
    # separating-axis test (most pairs of a room; the distance itself is computed the same way).
    gap = math.hypot(a.center[0] - b.center[0], a.center[1] - b.center[1]) - (
        math.hypot(a.size[0], a.size[1]) + math.hypot(b.size[0], b.size[1])
    ) / 2
    d_xy = _disjoint_polygon_distance(pa, pb) if gap > 1e-3 else polygon_distance(pa, pb)
    (a0, a1), (b0, b1) = a.z_range, b.z_range
    d_z = max(0.0, a0 - b1, b0 - a1)
    return math.hypot(d_xy, d_z)


def alpha_shape(points: np.ndarray, alpha: float) -> np.ndarray:
    """Triangles [T, 3, 2] of the 2D alpha shape: Delaunay triangles with circumradius < 1/alpha.

    The same rule as the `alphashape` package, so concave rooms (an L) keep their notch.
    """
    pts = _unique_rows(np.asarray(points, dtype=np.float64).reshape(-1, 2))
    if len(pts) < 3:
        return np.zeros((0, 3, 2))
    try:
        tri = pts[Delaunay(pts).simplices]  # [T, 3, 2]
    except (QhullError, ValueError):
        return np.zeros((0, 3, 2))  # all points collinear: no area
    a = np.linalg.norm(tri[:, 1] - tri[:, 2], axis=1)
    b = np.linalg.norm(tri[:, 0] - tri[:, 2], axis=1)
    c = np.linalg.norm(tri[:, 0] - tri[:, 1], axis=1)
    area = _triangle_areas(tri)
    with np.errstate(divide="ignore", invalid="ignore"):
        radius = a * b * c / (4.0 * area)
    keep = (area > 0) & (radius < 1.0 / alpha)
    return tri[keep]


def _unique_rows(pts: np.ndarray) -> np.ndarray:
    """np.unique(pts, axis=0) for [N, 2]: the distinct rows sorted by x, then y (~5x faster)."""
    if len(pts) < 2:
        return pts.copy()
    s = pts[np.lexsort((pts[:, 1], pts[:, 0]))]
    new = np.ones(len(s), dtype=bool)
    new[1:] = (s[1:, 0] != s[:-1, 0]) | (s[1:, 1] != s[:-1, 1])
    return s[new]


def _triangle_areas(tri: np.ndarray) -> np.ndarray:
    """[T, 3, 2] -> [T] unsigned areas."""
    e1, e2 = tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0]
    return 0.5 * np.abs(e1[:, 0] * e2[:, 1] - e1[:, 1] * e2[:, 0])


def alpha_shape_area(points: np.ndarray, alpha: float = 5.0) -> tuple[float, np.ndarray]:
    """Area (m^2) and area centroid [2] of the alpha shape of 2D points [N, 2]."""
    tri = alpha_shape(points, alpha)
    if len(tri) == 0:
        pts = np.asarray(points, dtype=np.float64).reshape(-1, 2)
        return 0.0, (pts.mean(0) if len(pts) else np.zeros(2))
    areas = _triangle_areas(tri)  # [T]
    total = float(areas.sum())
    centroid = (tri.mean(1) * areas[:, None]).sum(0) / total
    return total, centroid


def sample_triangles(
    vertices: np.ndarray, faces: np.ndarray, spacing: float, rng: np.random.Generator
) -> np.ndarray:
    """Points [P, 3] on triangles, about one per spacing^2 of area (at least one per face)."""
    if len(faces) == 0:
        return np.zeros((0, 3))
    tri = np.asarray(vertices, dtype=np.float64)[faces]  # [F, 3, 3]
    area = 0.5 * np.linalg.norm(np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0]), axis=1)  # [F]
    counts = np.maximum(np.ceil(area / spacing**2), 1).astype(np.int64)
    face_of = np.repeat(np.arange(len(faces)), counts)  # [P]
    return _barycentric_points(tri[face_of], rng)


def sample_surface(vertices: np.ndarray, faces: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """n points [n, 3] on triangles with probability proportional to area."""
    tri = np.asarray(vertices, dtype=np.float64)[faces]  # [F, 3, 3]
    area = 0.5 * np.linalg.norm(np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0]), axis=1)
    if len(faces) == 0 or area.sum() <= 0:
        return np.zeros((0, 3))
    face_of = rng.choice(len(faces), size=n, p=area / area.sum())
    return _barycentric_points(tri[face_of], rng)


def _barycentric_points(tri: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One uniform point in each triangle [P, 3, 3] -> [P, 3]."""
    r = rng.random((len(tri), 2))
    flip = r.sum(1) > 1  # fold the unit square onto the triangle
    r[flip] = 1 - r[flip]
    return tri[:, 0] + r[:, :1] * (tri[:, 1] - tri[:, 0]) + r[:, 1:] * (tri[:, 2] - tri[:, 0])


def rect_grid(box: OrientedBox, spacing: float) -> np.ndarray:
    """Points [P, 2] on a regular grid covering a box's footprint, edges included."""
    nx = max(int(math.ceil(box.size[0] / spacing)), 1) + 1
    ny = max(int(math.ceil(box.size[1] / spacing)), 1) + 1
    u = np.linspace(-box.size[0] / 2, box.size[0] / 2, nx)
    v = np.linspace(-box.size[1] / 2, box.size[1] / 2, ny)
    uu, vv = np.meshgrid(u, v, indexing="ij")
    c, s = math.cos(box.yaw), math.sin(box.yaw)
    x = box.center[0] + uu * c - vv * s
    y = box.center[1] + uu * s + vv * c
    return np.c_[x.ravel(), y.ravel()]
