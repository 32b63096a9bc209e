"""Where a robot can stand: the scan's floor as an occupancy grid, and free space (the floor minus
standing objects, both kept a robot radius away), what route planning plans in.

The floor grid marks the cells that floor-level mesh faces cover (sampled at half a cell), closed
by one cell so that sampling gaps do not cut corridors. It is stored in the scene metadata
(`FloorGrid.to_dict`: origin, cell size, shape and the cells as packed bits).
"""

from __future__ import annotations

import base64
from dataclasses import dataclass

import numpy as np
from scipy import ndimage
from scipy.spatial import ConvexHull

from data_gen.qa.obb import Box3D


@dataclass(frozen=True, eq=False)
class FloorGrid:
    origin: tuple[float, float]  # world (x, y) of cell (0, 0)'s corner, metres
    cell: float  # metres
    cells: np.ndarray  # [nx, ny] bool: floor

    def __eq__(self, other: object) -> bool:
        return (isinstance(other, FloorGrid) and self.origin == other.origin and self.cell == other.cell
                and np.array_equal(self.cells, other.cells))  # fmt: skip

    __hash__ = None  # type: ignore[assignment]

    def to_dict(self) -> dict:
        packed = np.packbits(self.cells.reshape(-1))
        return {"origin": list(self.origin), "cell": self.cell, "shape": list(self.cells.shape),
                "bits": base64.b64encode(packed.tobytes()).decode()}  # fmt: skip

    @classmethod
    def from_dict(cls, d: dict) -> FloorGrid:
        shape = tuple(int(v) for v in d["shape"])
        bits = np.frombuffer(base64.b64decode(d["bits"]), dtype=np.uint8)
        cells = np.unpackbits(bits)[: shape[0] * shape[1]].reshape(shape).astype(bool)
        return cls((float(d["origin"][0]), float(d["origin"][1])), float(d["cell"]), cells)

    def centres(self) -> np.ndarray:
        """World (x, y) of every cell's centre, [nx, ny, 2]."""
        ii, jj = np.meshgrid(np.arange(self.cells.shape[0]), np.arange(self.cells.shape[1]), indexing="ij")
        return np.stack([self.origin[0] + (ii + 0.5) * self.cell, self.origin[1] + (jj + 0.5) * self.cell], axis=-1)

    def world(self, cell: tuple[int, int]) -> np.ndarray:
        return np.array([self.origin[0] + (cell[0] + 0.5) * self.cell, self.origin[1] + (cell[1] + 0.5) * self.cell])


def floor_grid(points_xy: np.ndarray, cell: float) -> FloorGrid:
    """The grid of cells holding floor points [N, 2] (sampled densely enough: at most half a cell
    apart), closed by one cell."""
    pts = np.asarray(points_xy, dtype=np.float64).reshape(-1, 2)
    if len(pts) == 0:
        return FloorGrid((0.0, 0.0), cell, np.zeros((0, 0), dtype=bool))
    origin = np.floor(pts.min(0) / cell) * cell - cell  # a free ring around the floor
    idx = np.floor((pts - origin) / cell).astype(np.int64)
    cells = np.zeros(tuple(idx.max(0) + 2), dtype=bool)
    cells[idx[:, 0], idx[:, 1]] = True
    cells = ndimage.binary_closing(cells, structure=np.ones((3, 3), bool)) | cells
    return FloorGrid((float(origin[0]), float(origin[1])), cell, cells)


def footprint(box: Box3D) -> np.ndarray:
    """The box seen from above: the convex hull of its corners on the floor, [K, 2] counter-clockwise."""
    corners = box.corners()[:, :2]
    hull = ConvexHull(corners, qhull_options="QJ")  # joggled: a flat box (a door) has a line for a footprint
    return corners[hull.vertices]


def polygon_distance(points: np.ndarray, polygon: np.ndarray) -> np.ndarray:
    """[P] distance from points [P, 2] to a convex counter-clockwise polygon [K, 2] (0 inside)."""
    start, edge = polygon, np.roll(polygon, -1, axis=0) - polygon  # [K, 2]
    rel = points[:, None, :] - start[None]  # [P, K, 2]
    t = np.clip((rel * edge).sum(-1) / np.maximum((edge * edge).sum(-1), 1e-12), 0.0, 1.0)  # [P, K]
    distance = np.linalg.norm(rel - t[..., None] * edge, axis=-1).min(1)
    inside = ((edge[None, :, 0] * rel[..., 1] - edge[None, :, 1] * rel[..., 0]) >= 0).all(1)
    return np.where(inside, 0.0, distance)


def free_space(grid: FloorGrid, obstacles: list[Box3D], radius: float) -> np.ndarray:
    """[nx, ny] bool: floor cells at least `radius` from the floor's edge and from every obstacle."""
    if grid.cells.size == 0:
        return grid.cells.copy()
    # Distance (in cells) to the nearest non-floor cell: the walls are the floor's edge.
    to_edge = ndimage.distance_transform_edt(grid.cells) * grid.cell
    free = grid.cells & (to_edge > radius)
    centres = grid.centres().reshape(-1, 2)
    for box in obstacles:
        free &= (polygon_distance(centres, footprint(box)) > radius).reshape(free.shape)
    return free
