"""Routes through free space (`floor_grid.free_space`): shortest 8-connected paths between cells
(`PathTree`, Dijkstra), pulled straight into as few legs as line of sight allows, and the turns between legs.

Turn bins, counter-clockwise degrees from the current heading to the next leg (seen from above):
[315, 45) none (keep going forward), [45, 135) left, [135, 225) back, [225, 315) right.
"""

from __future__ import annotations

import math

import numpy as np
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import dijkstra

Cell = tuple[int, int]
TURN_EDGES = (45.0, 135.0, 225.0, 315.0)


class PathTree:
    """Shortest 8-connected paths over `free` [nx, ny] from each of `sources` to every free cell (one
    Dijkstra per source, in scipy). A diagonal step costs sqrt 2 and may not cut a blocked corner."""

    def __init__(self, free: np.ndarray, sources: list[Cell]):
        self.free = free
        self.node = np.full(free.shape, -1, dtype=np.int64)
        cells = np.argwhere(free)  # [N, 2]
        self.node[cells[:, 0], cells[:, 1]] = np.arange(len(cells))
        self.cells = cells
        rows, cols, weights = [], [], []
        nx, ny = free.shape
        for di, dj in ((1, 0), (0, 1), (1, 1), (1, -1)):  # each undirected edge once
            i, j = cells[:, 0] + di, cells[:, 1] + dj
            ok = (i >= 0) & (i < nx) & (j >= 0) & (j < ny)
            ok[ok] &= free[i[ok], j[ok]]
            if di and dj:  # not through a blocked corner
                ok[ok] &= free[cells[ok, 0] + di, cells[ok, 1]] & free[cells[ok, 0], cells[ok, 1] + dj]
            rows.append(self.node[cells[ok, 0], cells[ok, 1]])
            cols.append(self.node[i[ok], j[ok]])
            weights.append(np.full(int(ok.sum()), math.sqrt(2) if di and dj else 1.0))
        graph = csr_matrix((np.concatenate(weights), (np.concatenate(rows), np.concatenate(cols))),
                           shape=(len(cells), len(cells)))  # fmt: skip
        self.sources = [int(self.node[c]) for c in sources]
        if any(n < 0 for n in self.sources):
            raise ValueError("a source cell is not free")
        _, self.previous = dijkstra(graph, directed=False, indices=self.sources, return_predecessors=True)

    def path(self, source: int, goal: Cell) -> list[Cell] | None:
        """Cells from sources[source] to goal, both included; None when goal is not reachable."""
        at = int(self.node[goal])
        if at < 0 or (at != self.sources[source] and self.previous[source, at] < 0):
            return None
        out = [at]
        while out[-1] != self.sources[source]:
            out.append(int(self.previous[source, out[-1]]))
        return [tuple(int(v) for v in self.cells[n]) for n in reversed(out)]


def line_free(free: np.ndarray, a: Cell, b: Cell) -> bool:
    """Whether the straight segment between two cell centres crosses only free cells (sampled every
    quarter cell)."""
    n = 4 * max(abs(b[0] - a[0]), abs(b[1] - a[1])) + 1
    t = np.arange(n + 1) / n
    i = np.floor(a[0] + 0.5 + t * (b[0] - a[0])).astype(np.int64)
    j = np.floor(a[1] + 0.5 + t * (b[1] - a[1])).astype(np.int64)
    return bool(free[i, j].all())


def straightened(free: np.ndarray, path: list[Cell]) -> list[Cell]:
    """The path's turning points: from each, as far along the path as stays in straight sight."""
    out = [path[0]]
    k = 0
    while k < len(path) - 1:
        far = k + 1
        while far + 1 < len(path) and line_free(free, path[k], path[far + 1]):
            far += 1
        out.append(path[far])
        k = far
    return out


def ccw_degrees(start: np.ndarray, end: np.ndarray) -> float:
    """Counter-clockwise angle from floor vector `start` to `end`, degrees in [0, 360)."""
    cross = start[0] * end[1] - start[1] * end[0]
    return float(math.degrees(math.atan2(cross, float(np.dot(start, end)))) % 360.0)


def turn_of(angle: float, margin: float) -> str | None:
    """"forward", "left", "back" or "right" for a counter-clockwise angle in degrees; None when it
    is within `margin` of a bin edge (the turn would be ambiguous)."""
    if min(abs((angle - e + 180.0) % 360.0 - 180.0) for e in TURN_EDGES) < margin:
        return None
    if angle < 45 or angle >= 315:
        return "forward"
    return "left" if angle < 135 else "back" if angle < 225 else "right"
