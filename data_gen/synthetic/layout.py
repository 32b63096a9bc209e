"""Furniture placement: doors and windows in the walls, objects on the floor (inside the room, apart
from each other, clear of door swings, leaving a connected walkable region for the camera), then
things hung on walls and things standing on others."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import numpy as np

from data_gen.synthetic.freespace import FreeSpace
from data_gen.synthetic.furniture import CATALOGUE, FLOOR, ON, OPENING, WALL, Category
from data_gen.synthetic.labels import question_category
from data_gen.synthetic.room import Room, rects_separated, rotation2

WALL_GAP = 0.03  # metres between a wall and the back of an object standing against it
HUNG_GAP = 0.005  # ...and of an object hung on it or set in it (a door, a window, a mirror)
OBJECT_GAP = 0.08  # minimum footprint clearance between two floor objects
SMALL_GAP = 0.02  # ...and between other objects whose height ranges overlap
CEILING_GAP = 0.1  # nothing reaches closer to the ceiling than this, metres
CAMERA_WALL_MARGIN = 0.5  # free cells (where the camera path runs) are this far from walls...
CAMERA_OBJECT_MARGIN = 0.45  # ...and this far from every floor footprint
# An ON object goes preferably on a support that holds this one and none of its own kind yet.
_BESIDE = {"keyboard": "monitor", "computer mouse": "keyboard"}


@dataclass(frozen=True, eq=False)
class SceneObject:
    """One object. Its mesh instance carries the same `object_id`."""

    object_id: int
    label: str  # catalogue label (furniture.CATALOGUE)
    center: np.ndarray  # [3] centre of the bounding box, aligned frame (z = base + height / 2)
    size: np.ndarray  # [3] (length, width, height): extents along its own x, y (yaw-rotated) and z
    yaw: float  # rotation about +z, radians: the object's x axis is (cos yaw, sin yaw, 0)
    color: tuple[int, int, int]  # base RGB
    support: int = -1  # object id of what it stands on (ON objects), -1 otherwise
    raw_label: str = ""  # the label the scan's annotation carries ('couch' for a sofa); "" = `label`

    @property
    def half(self) -> np.ndarray:
        return self.size / 2

    @property
    def base(self) -> float:
        """Height of its bottom above the floor, metres."""
        return float(self.center[2] - self.size[2] / 2)

    @property
    def top(self) -> float:
        return float(self.center[2] + self.size[2] / 2)

    @property
    def mount(self) -> str:
        return CATALOGUE[self.label].mount


@dataclass(frozen=True, eq=False)
class Box:
    """One axis-aligned-in-its-own-frame box of an object (a table top, a leg), in world space."""

    center: np.ndarray  # [3]
    half: np.ndarray  # [3] half extents along the rotated x, y and z
    yaw: float
    object_id: int
    color: tuple[int, int, int]
    rests: bool = False  # its bottom lies on what the object stands on (never seen: not meshed)


def object_boxes(obj: SceneObject) -> list[Box]:
    """The boxes the object is made of, moved from its own frame into the aligned frame."""
    rot = rotation2(obj.yaw)
    supported = obj.mount == ON or obj.base < 1e-6
    out = []
    for lo, hi in CATALOGUE[obj.label].shape(obj.size):
        local = (lo + hi) / 2
        xy = rot @ local[:2] + obj.center[:2]
        out.append(Box(np.array([xy[0], xy[1], obj.base + local[2]]), (hi - lo) / 2, obj.yaw, obj.object_id,
                       obj.color, rests=supported and lo[2] < 1e-9))
    return out


def place_objects(room: Room, labels: list[str], rng: np.random.Generator, max_floor: int) -> list[SceneObject]:
    """Place as many of `labels` as fit, in order, at most `max_floor` of them on the floor; object
    ids are 0.. in placement order."""
    free = FreeSpace.of_room(room, CAMERA_WALL_MARGIN)
    # Keep a walkable region big enough for the camera to move and look around.
    min_free = max(1.0, 0.15 * room.area)
    placed: list[SceneObject] = []
    swings: list[tuple[np.ndarray, np.ndarray, float]] = []  # floor kept clear in front of doors
    for label in labels:
        cat = CATALOGUE[label]
        if cat.mount == FLOOR and sum(o.mount == FLOOR for o in placed) >= max_floor:
            continue
        for _ in range(30):
            size = cat.sample_size(rng)
            pose = _propose(room, cat, size, placed, rng)
            if pose is None:
                continue
            spot, size, yaw, support = pose  # spot: x, y of its centre, height of its base
            half = size / 2
            margin = WALL_GAP / 2 if cat.mount in (FLOOR, ON) else 0.0
            if spot[2] + size[2] > room.height - CEILING_GAP or not room.footprint_inside(spot, half, yaw, margin):
                continue
            below = _stack(support, placed)  # what it stands on, and what that stands on...
            if any(_collide(cat, spot, size, yaw, o) for o in placed if o.object_id not in below):
                continue
            if cat.mount == FLOOR:
                if not all(rects_separated(spot, half, yaw, c, h, y, 0.0) for c, h, y in swings):
                    continue
                after = free.without(spot, half, yaw, CAMERA_OBJECT_MARGIN)
                if after.largest_area() < min_free:
                    continue
                free = after
            color = cat.colors[int(rng.integers(len(cat.colors)))]
            color = tuple(int(c) for c in np.clip(np.array(color) * rng.uniform(0.9, 1.1), 0, 255))
            obj = SceneObject(len(placed), label, np.array([spot[0], spot[1], spot[2] + size[2] / 2]), size,
                              float(yaw), color, support)
            placed.append(obj)
            if cat.clearance > 0:
                swings.append(_swing(obj, cat.clearance))
            break
    return placed


def layout_ok(objects: list[SceneObject]) -> bool:
    """Enough furniture, and questions need both: categories seen more than once (counting) and
    exactly once (size)."""
    counts = Counter(c for o in objects if (c := question_category(o.label)))
    multi = sum(c > 1 for c in counts.values())
    single = sum(c == 1 for c in counts.values())
    return sum(o.mount == FLOOR for o in objects) >= 6 and multi >= 1 and single >= 2


def _stack(support: int, placed: list[SceneObject]) -> set[int]:
    """Object ids of `support` and everything under it (a pillow's mattress and the bed below)."""
    out = set()
    while support >= 0:
        out.add(support)
        support = placed[support].support
    return out


def _collide(cat: Category, spot: np.ndarray, size: np.ndarray, yaw: float, other: SceneObject) -> bool:
    """Whether a candidate (at `spot`: x, y of its centre, height of its base) overlaps `other`:
    their height ranges overlap and their footprints come closer than the gap."""
    if spot[2] >= other.top - 1e-6 or other.base >= spot[2] + size[2] - 1e-6:
        return False
    gap = OBJECT_GAP if cat.mount == FLOOR and other.mount == FLOOR else SMALL_GAP
    return not rects_separated(spot, size / 2, yaw, other.center, other.half, other.yaw, gap)


def _propose(
    room: Room, cat: Category, size: np.ndarray, placed: list[SceneObject], rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, float, int] | None:
    """A candidate (spot [3]: x, y of its centre and height of its base; size [3]; yaw; support id or -1)."""
    if cat.mount in (OPENING, WALL):
        pose = _against_wall(room, size, HUNG_GAP, rng)
        return None if pose is None else (np.array([*pose[0], rng.uniform(*cat.base)]), size, pose[1], -1)
    if cat.mount == ON:
        return _on_support(cat, size, placed, rng)
    if cat.label in ("chair", "stool"):
        tables = [o for o in placed if o.label in ("table", "desk", "counter")]
        if tables and rng.random() < 0.7:
            center, yaw = _at_table(tables[int(rng.integers(len(tables)))], size, rng)
            return np.array([*center, 0.0]), size, yaw, -1
    above = [o for o in placed if o.label in cat.below]
    if above and rng.random() < 0.8:
        center, yaw = _under(above[int(rng.integers(len(above)))], size)
        return center, size, yaw, -1
    if rng.random() < cat.wall_prob:
        pose = _against_wall(room, size, WALL_GAP, rng)
        return None if pose is None else (np.array([*pose[0], 0.0]), size, pose[1], -1)
    x0, y0, x1, y1 = room.bounds
    center = rng.uniform([x0, y0], [x1, y1])
    if rng.random() < 0.6:
        yaw = rng.uniform(0, 2 * np.pi)  # arbitrarily rotated
    else:
        yaw = np.pi / 2 * int(rng.integers(4))
    return np.array([*center, 0.0]), size, float(yaw), -1


def _against_wall(room: Room, size: np.ndarray, gap: float, rng: np.random.Generator
                  ) -> tuple[np.ndarray, float] | None:
    """A centre [2] `gap` in front of a wall (chosen by length) and the yaw that turns the back to it."""
    walls = [(a, b, n) for a, b, n in room.walls() if np.linalg.norm(b - a) > size[0] + 0.1]
    if not walls:
        return None
    lengths = np.array([np.linalg.norm(b - a) for a, b, _ in walls])
    a, b, n = walls[int(rng.choice(len(walls), p=lengths / lengths.sum()))]
    along = (b - a) / np.linalg.norm(b - a)
    s = rng.uniform(size[0] / 2 + 0.05, np.linalg.norm(b - a) - size[0] / 2 - 0.05)
    center = a + along * s + n * (size[1] / 2 + gap)
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


def _under(hung: SceneObject, size: np.ndarray) -> tuple[np.ndarray, float]:
    """Spot (x, y of the centre, base 0) of a floor object against the wall, centred under a hung
    one (a radiator under a window); the yaw is the hung object's."""
    back = rotation2(hung.yaw)[:, 1]  # towards the wall
    wall_point = hung.center[:2] + back * (hung.half[1] + HUNG_GAP)
    center = wall_point - back * (size[1] / 2 + WALL_GAP)
    return np.array([*center, 0.0]), hung.yaw


def _on_support(cat: Category, size: np.ndarray, placed: list[SceneObject], rng: np.random.Generator
                ) -> tuple[np.ndarray, np.ndarray, float, int] | None:
    """A spot on the top of one of the placed objects `cat` may stand on, in its zone, same yaw
    (covering the whole top when `cat.fit`)."""
    supports = [o for o in placed if o.label in cat.supports]
    if not supports:
        return None
    partner = _BESIDE.get(cat.label)
    if partner is not None:
        holding = {o.support for o in placed if o.label == partner} - {o.support for o in placed if o.label == cat.label}
        supports = [o for o in supports if o.object_id in holding] or supports
    support = supports[int(rng.integers(len(supports)))]
    z, lo, hi = CATALOGUE[support.label].surface(support.size)
    if cat.fit:
        size = np.array([*(np.floor((hi - lo) * 1000) / 1000), size[2]])
    x_span = (lo[0] + size[0] / 2, hi[0] - size[0] / 2)
    y_span = (lo[1] + size[1] / 2, hi[1] - size[1] / 2)
    if x_span[0] > x_span[1] or y_span[0] > y_span[1]:
        return None
    y = {"back": y_span[1], "front": y_span[0]}.get(cat.zone)
    if y is None:
        y = rng.uniform(*y_span)
    elif cat.zone == "front":
        y += rng.uniform(0.0, 0.3) * (y_span[1] - y_span[0])
    local = np.array([rng.uniform(*x_span), y])
    center = support.center[:2] + rotation2(support.yaw) @ local
    return np.array([*center, support.base + z]), size, support.yaw, support.object_id


def _swing(door: SceneObject, depth: float) -> tuple[np.ndarray, np.ndarray, float]:
    """The floor rectangle (centre, half extents, yaw) in front of a door that it swings through."""
    front = -rotation2(door.yaw)[:, 1]
    center = door.center[:2] + front * (door.half[1] + depth / 2)
    return center, np.array([door.half[0] + 0.05, depth / 2]), door.yaw
