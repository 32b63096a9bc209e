"""The room of a synthetic scene: a rectangle, or an L (the rectangle minus a corner notch).

All geometry is 2D in the aligned floor plane (metres) plus a ceiling height. The L-shape is kept as
"bounding rectangle minus notch rectangle" because then every inside/clearance test reduces to
distances to two axis-aligned rectangles.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

Rect = tuple[float, float, float, float]  # (x0, y0, x1, y1), x0 < x1, y0 < y1


@dataclass(frozen=True)
class Room:
    bounds: Rect  # bounding rectangle of the floor
    notch: Rect | None  # the corner cut out of `bounds` (L-shaped room), None for a rectangle
    height: float  # ceiling height above the floor (z = 0)

    @property
    def area(self) -> float:
        return _rect_area(self.bounds) - (_rect_area(self.notch) if self.notch else 0.0)

    @property
    def bbox_area(self) -> float:
        return _rect_area(self.bounds)

    def polygon(self) -> np.ndarray:
        """[P, 2] floor outline, counter-clockwise (interior on the left of every edge)."""
        x0, y0, x1, y1 = self.bounds
        corners = [(x0, y0), (x1, y0), (x1, y1), (x0, y1)]
        if self.notch is None:
            return np.array(corners, dtype=np.float64)
        k = self.notch_corner()
        nx0, ny0, nx1, ny1 = self.notch
        # The notch corner opposite the room corner is the reflex vertex of the L.
        inner = (nx1 if corners[k][0] == x0 else nx0, ny1 if corners[k][1] == y0 else ny0)
        prev, cur, nxt = corners[k - 1], corners[k], corners[(k + 1) % 4]
        arrive = (cur[0], inner[1]) if prev[0] == cur[0] else (inner[0], cur[1])
        leave = (cur[0], inner[1]) if nxt[0] == cur[0] else (inner[0], cur[1])
        out = corners[:k] + [arrive, inner, leave] + corners[k + 1 :]
        return np.array(out, dtype=np.float64)

    def notch_corner(self) -> int:
        """Index (0..3, counter-clockwise from (x0, y0)) of the bounding corner the notch removes."""
        assert self.notch is not None
        # A notch touches two sides of the bounding rectangle; if it does not start at x0 it ends at x1.
        x0, y0, _, _ = self.bounds
        nx0, ny0, _, _ = self.notch
        right = nx0 > x0
        top = ny0 > y0
        return {(False, False): 0, (True, False): 1, (True, True): 2, (False, True): 3}[(right, top)]

    def walls(self) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
        """Wall segments as (start [2], end [2], inward unit normal [2]), counter-clockwise."""
        poly = self.polygon()
        out = []
        for i in range(len(poly)):
            a, b = poly[i], poly[(i + 1) % len(poly)]
            d = (b - a) / np.linalg.norm(b - a)
            out.append((a, b, np.array([-d[1], d[0]])))  # left normal = inward for a CCW outline
        return out

    def floor_rects(self) -> list[Rect]:
        """Non-overlapping rectangles whose union is the floor (1 for a rectangle, 2 for an L)."""
        if self.notch is None:
            return [self.bounds]
        x0, y0, x1, y1 = self.bounds
        nx0, ny0, nx1, ny1 = self.notch
        # A full-height strip beside the notch, plus the part of the notch's columns it leaves.
        strip = (x0, y0, nx0, y1) if nx0 > x0 else (nx1, y0, x1, y1)
        rest = (nx0, y0, nx1, ny0) if ny0 > y0 else (nx0, ny1, nx1, y1)
        return [strip, rest]

    def clearance(self, pts: np.ndarray) -> np.ndarray:
        """[N] distance from each point [N, 2] to the nearest wall; <= 0 outside the room."""
        x0, y0, x1, y1 = self.bounds
        d = np.minimum.reduce([pts[:, 0] - x0, x1 - pts[:, 0], pts[:, 1] - y0, y1 - pts[:, 1]])
        if self.notch is not None:
            d = np.minimum(d, rect_distance(pts, _rect_center(self.notch), _rect_half(self.notch), 0.0))
        return d

    def contains(self, pts: np.ndarray, margin: float = 0.0) -> np.ndarray:
        """[N] bool: point [N, 2] is inside the room at least `margin` from every wall."""
        return self.clearance(pts) >= margin

    def footprint_inside(self, center: np.ndarray, half: np.ndarray, yaw: float, margin: float) -> bool:
        """An oriented rectangle lies inside the room with `margin` to every wall."""
        corners = footprint_corners(center, half, yaw)
        x0, y0, x1, y1 = self.bounds
        lo, hi = corners.min(0), corners.max(0)
        if lo[0] < x0 + margin or lo[1] < y0 + margin or hi[0] > x1 - margin or hi[1] > y1 - margin:
            return False
        if self.notch is None:
            return True
        return rects_separated(
            center, half, yaw, _rect_center(self.notch), _rect_half(self.notch), 0.0, margin
        )


def random_room(rng: np.random.Generator) -> Room:
    """Sides 3-8 m, ceiling 2.5-3 m; about a third of the big rooms are L-shaped."""
    sx, sy = rng.uniform(3.0, 8.0, size=2)
    height = float(rng.uniform(2.5, 3.0))
    bounds = (-sx / 2, -sy / 2, sx / 2, sy / 2)
    notch = None
    if min(sx, sy) >= 4.5 and rng.random() < 0.4:
        # Cut at most half of each side, so both arms of the L stay at least half the side wide.
        nx, ny = sx * rng.uniform(0.3, 0.5), sy * rng.uniform(0.3, 0.5)
        k = int(rng.integers(4))  # corner: 0 (x0, y0), 1 (x1, y0), 2 (x1, y1), 3 (x0, y1)
        x0, y0, x1, y1 = bounds
        nx0, nx1 = (x1 - nx, x1) if k in (1, 2) else (x0, x0 + nx)
        ny0, ny1 = (y1 - ny, y1) if k in (2, 3) else (y0, y0 + ny)
        notch = (float(nx0), float(ny0), float(nx1), float(ny1))
    return Room(bounds=tuple(float(v) for v in bounds), notch=notch, height=height)


# ----- oriented rectangles (object footprints) -----


def rotation2(yaw: float) -> np.ndarray:
    """[2, 2] rotation by `yaw` radians (counter-clockwise seen from above)."""
    c, s = np.cos(yaw), np.sin(yaw)
    return np.array([[c, -s], [s, c]])


def footprint_corners(center: np.ndarray, half: np.ndarray, yaw: float) -> np.ndarray:
    """[4, 2] corners of the rectangle with half-extents `half` [2] rotated by `yaw` about `center`."""
    local = np.array([[-1, -1], [1, -1], [1, 1], [-1, 1]]) * half[:2]
    return local @ rotation2(yaw).T + center[:2]


def rect_distance(pts: np.ndarray, center: np.ndarray, half: np.ndarray, yaw: float) -> np.ndarray:
    """[N] signed distance from points [N, 2] to an oriented rectangle (negative inside)."""
    local = (pts - center[:2]) @ rotation2(yaw)  # rotate by -yaw: world -> rectangle frame
    excess = np.abs(local) - half[:2]  # [N, 2]
    outside = np.linalg.norm(np.maximum(excess, 0.0), axis=1)
    return outside + np.minimum(excess.max(axis=1), 0.0)


def rects_separated(
    ca: np.ndarray, ha: np.ndarray, ya: float, cb: np.ndarray, hb: np.ndarray, yb: float, gap: float
) -> bool:
    """Separating-axis test with a gap: True when some axis keeps the rectangles `gap` apart.

    Conservative (a diagonal gap at corners may be rejected although wide enough), which only
    makes placement stricter.
    """
    ra, rb = rotation2(ya), rotation2(yb)
    delta = cb[:2] - ca[:2]
    for axis in (ra[:, 0], ra[:, 1], rb[:, 0], rb[:, 1]):
        pa = ha[0] * abs(ra[:, 0] @ axis) + ha[1] * abs(ra[:, 1] @ axis)
        pb = hb[0] * abs(rb[:, 0] @ axis) + hb[1] * abs(rb[:, 1] @ axis)
        if abs(delta @ axis) >= pa + pb + gap:
            return True
    return False


def _rect_area(r: Rect) -> float:
    return (r[2] - r[0]) * (r[3] - r[1])


def _rect_center(r: Rect) -> np.ndarray:
    return np.array([(r[0] + r[2]) / 2, (r[1] + r[3]) / 2])


def _rect_half(r: Rect) -> np.ndarray:
    return np.array([(r[2] - r[0]) / 2, (r[3] - r[1]) / 2])
