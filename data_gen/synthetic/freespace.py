"""Where the camera may stand: a 2D grid over the floor, free of walls and object footprints."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from data_gen.synthetic.room import Room, rect_distance

CELL = 0.1  # metres per grid cell


@dataclass
class FreeSpace:
    centers: np.ndarray  # [ny, nx, 2] cell centres (x, y)
    mask: np.ndarray  # [ny, nx] bool: a camera may stand here
    cell: float = CELL

    @classmethod
    def of_room(cls, room: Room, wall_margin: float, cell: float = CELL) -> FreeSpace:
        x0, y0, x1, y1 = room.bounds
        xs = np.arange(x0 + cell / 2, x1, cell)
        ys = np.arange(y0 + cell / 2, y1, cell)
        centers = np.stack(np.meshgrid(xs, ys), axis=-1)  # [ny, nx, 2]
        mask = room.contains(centers.reshape(-1, 2), wall_margin).reshape(centers.shape[:2])
        return cls(centers=centers, mask=mask, cell=cell)

    def without(self, center: np.ndarray, half: np.ndarray, yaw: float, margin: float) -> FreeSpace:
        """This free space minus the cells within `margin` of an oriented footprint."""
        d = rect_distance(self.centers.reshape(-1, 2), center, half, yaw).reshape(self.mask.shape)
        return FreeSpace(centers=self.centers, mask=self.mask & (d >= margin), cell=self.cell)

    def largest_component(self) -> np.ndarray:
        """[ny, nx] bool mask of the biggest 8-connected free region (all False if none)."""
        labels, n = ndimage.label(self.mask, structure=np.ones((3, 3), dtype=bool))
        if n == 0:
            return np.zeros_like(self.mask)
        sizes = np.bincount(labels.ravel())[1:]
        return labels == 1 + int(np.argmax(sizes))

    def largest_area(self) -> float:
        return float(self.largest_component().sum()) * self.cell**2
