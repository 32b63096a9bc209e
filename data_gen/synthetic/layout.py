"""Furniture placement: objects on the floor, inside the room, apart from each other, leaving
a connected walkable region for the camera."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import numpy as np

from data_gen.synthetic.freespace import FreeSpace
from data_gen.synthetic.furniture import CATALOGUE
from data_gen.synthetic.room import Room, rects_separated, rotation2

WALL_GAP = 0.03  # metres between a wall and the back of an object standing against it
OBJECT_GAP = 0.08  # minimum footprint clearance between two objects
CAMERA_WALL_MARGIN = 0.5  # free cells (where the camera path runs) are this far from walls...
CAMERA_OBJECT_MARGIN = 0.45  # ...and this far from every footprint


@dataclass(frozen=True, eq=False)
class SceneObject:
    """One piece of furniture. Its mesh instance carries the same `object_id`."""

    object_id: int
    label: str
    center: np.ndarray  # [3] centre of the bounding box, aligned frame (z = height / 2)
    size: np.ndarray  # [3] (length, width, height): extents along its own x, y (yaw-rotated) and z
    yaw: float  # rotation about +z, radians: the object's x axis is (cos yaw, sin yaw, 0)
    color: tuple[int, int, int]  # base RGB

    @property
    def half(self) -> np.ndarray:
        return self.size / 2


@dataclass(frozen=True, eq=False)
class Box:
    """One axis-aligned-in-its-own-frame box of an object (a table top, a leg), in world space."""

    center: np.ndarray  # [3]
    half: np.ndarray  # [3] half extents along the rotated x, y and z
    yaw: float
    object_id: int
    color: tuple[int, int, int]


def object_boxes(obj: SceneObject) -> list[Box]:
    """The boxes the object is made of, moved from its own frame into the aligned frame."""
    rot = rotation2(obj.yaw)
    out = []
    for lo, hi in CATALOGUE[obj.label].shape(obj.size):
        local = (lo + hi) / 2
        xy = rot @ local[:2] + obj.center[:2]
        out.append(Box(np.array([xy[0], xy[1], local[2]]), (hi - lo) / 2, obj.yaw, obj.object_id, obj.color))
    return out


def place_objects(room: Room, labels: list[str], rng: np.random.Generator) -> list[SceneObject]:
    """Place as many of `labels` as fit, in order; object ids are 0.. in placement order."""
    free = FreeSpace.of_room(room, CAMERA_WALL_MARGIN)
    # Keep a walkable region big enough for the camera to move and look around.
    min_free = max(1.0, 0.15 * room.area)
    placed: list[SceneObject] = []
    for label in labels:
        cat = CATALOGUE[label]
        for _ in range(30):
            size = cat.sample_size(rng)
            pose = _propose(room, label, size, placed, rng)
            if pose is None:
                continue
            center, yaw = pose
            half = size / 2
            if not room.footprint_inside(center, half, yaw, WALL_GAP / 2):
                continue
            if not all(rects_separated(center, half, yaw, o.center, o.half, o.yaw, OBJECT_GAP)
                       for o in placed):
                continue
            after = free.without(center, half, yaw, CAMERA_OBJECT_MARGIN)
            if after.largest_area() < min_free:
                continue
            color = cat.colors[int(rng.integers(len(cat.colors)))]
            color = tuple(int(c) for c in np.clip(np.array(color) * rng.uniform(0.9, 1.1), 0, 255))
            placed.append(SceneObject(len(placed), label, np.array([center[0], center[1], size[2] / 2]),
                                      size, float(yaw), color))
            free = after
            break
    return placed


def layout_ok(objects: list[SceneObject]) -> bool:
    """Questions need both: categories seen more than once (counting) and exactly once (size)."""
    counts = Counter(o.label for o in objects)
    multi = sum(c > 1 for c in counts.values())
    single = sum(c == 1 for c in counts.values())
    return len(objects) >= 6 and multi >= 1 and single >= 2


def _propose(
    room: Room, label: str, size: np.ndarray, placed: list[SceneObject], rng: np.random.Generator
) -> tuple[np.ndarray, float] | None:
    """A candidate (centre [2], yaw): at a table, against a wall, or free-standing."""
    if label in ("chair", "stool"):
        tables = [o for o in placed if o.label in ("table", "desk", "counter")]
        if tables and rng.random() < 0.7:
            return _at_table(tables[int(rng.integers(len(tables)))], size, rng)
    if rng.random() < CATALOGUE[label].wall_prob:
        return _against_wall(room, size, rng)
    x0, y0, x1, y1 = room.bounds
    center = rng.uniform([x0, y0], [x1, y1])
    if rng.random() < 0.6:
        yaw = rng.uniform(0, 2 * np.pi)  # arbitrarily rotated
    else:
        yaw = np.pi / 2 * int(rng.integers(4))
    return center, float(yaw)


def _against_wall(room: Room, size: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, float] | None:
    walls = [(a, b, n) for a, b, n in room.walls() if np.linalg.norm(b - a) > size[0] + 0.1]
    if not walls:
        return None
    lengths = np.array([np.linalg.norm(b - a) for a, b, _ in walls])
    a, b, n = walls[int(rng.choice(len(walls), p=lengths / lengths.sum()))]
    along = (b - a) / np.linalg.norm(b - a)
    s = rng.uniform(size[0] / 2 + 0.05, np.linalg.norm(b - a) - size[0] / 2 - 0.05)
    center = a + along * s + n * (size[1] / 2 + WALL_GAP)
    # Back (+y of the object) towards the wall: R(yaw) @ (0, 1) = -n.
    return center, float(np.arctan2(n[0], -n[1]))


def _at_table(table: SceneObject, size: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, float]:
    """A seat facing a table from one of its sides (a desk or counter only from its front, -y)."""
    rot = rotation2(table.yaw)
    side = 3 if table.label != "table" else int(rng.integers(4))
    axis = side % 2  # 0: the table's x sides, 1: its y sides
    sign = 1.0 if side < 2 else -1.0
    out_dir = rot[:, axis] * sign  # unit vector from the table centre out through that side
    across = rot[:, 1 - axis]
    slide = rng.uniform(-0.6, 0.6) * max(table.half[1 - axis] - size[0] / 2, 0.0)
    reach = table.half[axis] + size[1] / 2 + OBJECT_GAP + 0.04  # seat footprint just clear of the table
    center = table.center[:2] + out_dir * reach + across * slide
    # Back (+y of the seat) away from the table: R(yaw) @ (0, 1) = out_dir.
    return center, float(np.arctan2(-out_dir[0], out_dir[1]))
