"""Furniture catalogue: categories, real-world sizes, shapes built from boxes, how each is mounted,
and scene recipes.

An object's own frame: x along its length, y along its width with the back at +y (the side that
goes against a wall), z up from its base. Every shape's boxes fill exactly the object's bounding
box [-L/2, L/2] x [-W/2, W/2] x [0, H], so the mesh extents equal the nominal size.

Mounts: FLOOR objects stand on the floor; OPENING (doors, windows) sit flush in a wall, a door from
the floor, a window at sill height; WALL objects hang on a wall (clock, mirror, towel); ON objects
stand on the top of another (a monitor on a desk, a pillow on a bed).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

Part = tuple[np.ndarray, np.ndarray]  # (lo [3], hi [3]) of an axis-aligned box in the object frame


def _box(lo: tuple[float, float, float], hi: tuple[float, float, float]) -> Part:
    return np.array(lo, dtype=np.float64), np.array(hi, dtype=np.float64)


def block(size: np.ndarray) -> list[Part]:
    length, width, height = size
    return [_box((-length / 2, -width / 2, 0.0), (length / 2, width / 2, height))]


def legged(size: np.ndarray, top: float = 0.04, leg: float = 0.05) -> list[Part]:
    """A top slab on four corner legs (tables, desks, stools)."""
    length, width, height = size
    parts = [_box((-length / 2, -width / 2, height - top), (length / 2, width / 2, height))]
    inset = 0.02
    for sx in (-1, 1):
        for sy in (-1, 1):
            x = sx * (length / 2 - inset - leg / 2)
            y = sy * (width / 2 - inset - leg / 2)
            parts.append(_box((x - leg / 2, y - leg / 2, 0.0), (x + leg / 2, y + leg / 2, height - top)))
    return parts


def chair(size: np.ndarray) -> list[Part]:
    """Seat on four legs plus a backrest at +y."""
    length, width, height = size
    seat = 0.5 * height
    parts = legged(np.array([length, width, seat]), top=0.05, leg=0.04)
    parts.append(_box((-length / 2, width / 2 - 0.06, seat), (length / 2, width / 2, height)))
    return parts


def sofa(size: np.ndarray) -> list[Part]:
    """Seat base, backrest at +y and two armrests."""
    length, width, height = size
    arm = min(0.18, 0.12 * length)
    return [
        _box((-length / 2, -width / 2, 0.0), (length / 2, width / 2, 0.45 * height)),
        _box((-length / 2, width / 2 - 0.22 * width, 0.0), (length / 2, width / 2, height)),
        _box((-length / 2, -width / 2, 0.0), (-length / 2 + arm, width / 2, 0.7 * height)),
        _box((length / 2 - arm, -width / 2, 0.0), (length / 2, width / 2, 0.7 * height)),
    ]


def bed(size: np.ndarray) -> list[Part]:
    """Mattress base with a headboard at +y (the bed's length runs along y)."""
    length, width, height = size
    return [
        _box((-length / 2, -width / 2, 0.0), (length / 2, width / 2, 0.6 * height)),
        _box((-length / 2, width / 2 - 0.06, 0.0), (length / 2, width / 2, height)),
    ]


def lamp(size: np.ndarray) -> list[Part]:
    """Floor lamp: base plate, pole, shade."""
    length, width, height = size
    pole = 0.03
    return [
        _box((-0.4 * length, -0.4 * width, 0.0), (0.4 * length, 0.4 * width, 0.03)),
        _box((-pole / 2, -pole / 2, 0.03), (pole / 2, pole / 2, 0.72 * height)),
        _box((-length / 2, -width / 2, 0.72 * height), (length / 2, width / 2, height)),
    ]


def tv(size: np.ndarray) -> list[Part]:
    """Screen on a stand: foot plate, neck, panel."""
    length, width, height = size
    return [
        _box((-0.2 * length, -width / 2, 0.0), (0.2 * length, width / 2, 0.03)),
        _box((-0.04, -0.03, 0.03), (0.04, 0.03, 0.4 * height)),
        _box((-length / 2, -0.04, 0.4 * height), (length / 2, 0.04, height)),
    ]


def monitor(size: np.ndarray) -> list[Part]:
    """A screen on a stand: foot plate, neck, panel (a TV or a computer monitor)."""
    return tv(size)


def guitar(size: np.ndarray) -> list[Part]:
    """Standing upright on its stand: body below, neck above."""
    length, width, height = size
    return [
        _box((-length / 2, -width / 2, 0.0), (length / 2, width / 2, 0.45 * height)),
        _box((-0.1 * length, -0.2 * width, 0.45 * height), (0.1 * length, 0.2 * width, height)),
    ]


def plant(size: np.ndarray) -> list[Part]:
    """A pot with foliage above it."""
    length, width, height = size
    return [
        _box((-0.3 * length, -0.3 * width, 0.0), (0.3 * length, 0.3 * width, 0.35 * height)),
        _box((-length / 2, -width / 2, 0.35 * height), (length / 2, width / 2, height)),
    ]


def piano(size: np.ndarray) -> list[Part]:
    """Upright piano: the case at the back, the keyboard shelf sticking out in front of it."""
    length, width, height = size
    case_front = width / 2 - 0.6 * width
    return [
        _box((-length / 2, case_front, 0.0), (length / 2, width / 2, height)),
        _box((-length / 2, -width / 2, 0.6 * height), (length / 2, case_front, 0.66 * height)),
    ]


def toilet(size: np.ndarray) -> list[Part]:
    """Bowl in front, cistern at the back (+y)."""
    length, width, height = size
    return [
        _box((-0.4 * length, -width / 2, 0.0), (0.4 * length, 0.25 * width, 0.55 * height)),
        _box((-length / 2, 0.25 * width, 0.0), (length / 2, width / 2, height)),
    ]


# ----- what may stand on an object: (height of the top, lo [2], hi [2] of the usable area) -----

Surface = tuple[float, np.ndarray, np.ndarray]


def top_surface(size: np.ndarray) -> Surface:
    """The whole top (tables, desks, counters, cabinets), a few centimetres in from the edges."""
    length, width, height = size
    inset = 0.03
    return float(height), np.array([-length / 2 + inset, -width / 2 + inset]), \
        np.array([length / 2 - inset, width / 2 - inset])


def bed_surface(size: np.ndarray) -> Surface:
    """The mattress, in front of the headboard."""
    length, width, height = size
    return 0.6 * float(height), np.array([-length / 2, -width / 2]), np.array([length / 2, width / 2 - 0.06])


def sofa_surface(size: np.ndarray) -> Surface:
    """The seat, between the armrests and in front of the backrest."""
    length, width, height = size
    arm = min(0.18, 0.12 * length)
    return 0.45 * float(height), np.array([-length / 2 + arm, -width / 2]), \
        np.array([length / 2 - arm, width / 2 - 0.22 * width])


FLOOR, OPENING, WALL, ON = "floor", "opening", "wall", "on"
MOUNT_ORDER = (OPENING, FLOOR, WALL, ON)  # placement order: what others depend on goes first


@dataclass(frozen=True)
class Category:
    label: str  # the catalogue name; the raw labels written to the scan are in `labels.py`
    size: tuple[float, float, float]  # nominal (length, width, height), metres
    shape: Callable[[np.ndarray], list[Part]]
    colors: tuple[tuple[int, int, int], ...]  # RGB palette; one is picked per instance
    wall_prob: float  # FLOOR: chance the object stands with its back against a wall
    jitter: float = 0.1  # relative per-instance size variation (uniform +-)
    mount: str = FLOOR  # FLOOR, OPENING, WALL or ON (module docstring)
    base: tuple[float, float] = (0.0, 0.0)  # OPENING / WALL: range of the bottom's height, metres
    supports: tuple[str, ...] = ()  # ON: the categories it may stand on
    zone: str = "any"  # ON: "back" (e.g. a monitor), "front" (a keyboard) or "any" part of the top
    fit: bool = False  # ON: covers the whole top of its support (its length and width are the top's)
    surface: Callable[[np.ndarray], Surface] | None = None  # what others may stand on (None: nothing)
    clearance: float = 0.0  # floor in front kept free of FLOOR objects (a door's swing), metres
    below: tuple[str, ...] = ()  # FLOOR: prefers to stand centred under one of these (a radiator)

    def sample_size(self, rng: np.random.Generator) -> np.ndarray:
        return np.round(np.array(self.size) * rng.uniform(1 - self.jitter, 1 + self.jitter, 3), 3)


_WOOD = ((120, 84, 52), (150, 110, 70), (92, 64, 44), (176, 138, 96))
_FABRIC = ((90, 110, 150), (150, 60, 60), (110, 130, 90), (170, 160, 140), (80, 80, 90))
_WHITE = ((225, 225, 220), (205, 210, 215), (235, 232, 225))
_DARK = ((40, 40, 45), (25, 25, 30), (60, 60, 65))
_METAL = ((170, 175, 180), (140, 145, 150), (200, 200, 205))
_GLASS = ((165, 195, 220), (185, 210, 228), (150, 180, 200))
_GREEN = ((60, 120, 50), (80, 140, 60), (50, 100, 60))

_DESKS = ("desk", "table")
CATALOGUE: dict[str, Category] = {
    c.label: c
    for c in [
        # On the floor.
        Category("chair", (0.50, 0.52, 0.90), chair, _WOOD + _FABRIC, 0.15),
        Category("table", (1.20, 0.80, 0.75), legged, _WOOD + _WHITE, 0.15, surface=top_surface),
        Category("sofa", (2.00, 0.90, 0.85), sofa, _FABRIC, 0.9, surface=sofa_surface),
        Category("bed", (1.60, 2.05, 0.95), bed, _FABRIC + _WHITE, 1.0, 0.08, surface=bed_surface),
        Category("cabinet", (0.80, 0.50, 0.90), block, _WOOD + _WHITE, 0.9, surface=top_surface),
        Category("closet", (1.00, 0.60, 2.00), block, _WOOD + _WHITE, 1.0, 0.08),
        Category("desk", (1.40, 0.70, 0.75), legged, _WOOD + _WHITE, 0.85, surface=top_surface),
        Category("bookshelf", (0.90, 0.35, 1.80), block, _WOOD + _WHITE, 1.0),
        Category("tv", (1.10, 0.30, 1.10), tv, _DARK, 0.8),
        Category("lamp", (0.40, 0.40, 1.60), lamp, _WHITE + ((220, 200, 150),), 0.3),
        Category("fan", (0.40, 0.35, 1.20), lamp, _WHITE + _DARK, 0.3),
        Category("plant", (0.45, 0.45, 0.90), plant, _GREEN, 0.4, 0.2),
        Category("backpack", (0.32, 0.20, 0.45), block, _FABRIC + _DARK, 0.6),
        Category("guitar", (0.38, 0.12, 1.00), guitar, _WOOD + _DARK, 1.0, 0.05),
        Category("piano", (1.50, 0.60, 1.25), piano, _DARK + _WOOD, 1.0, 0.05),
        Category("radiator", (0.90, 0.12, 0.60), block, _WHITE, 1.0, below=("window",)),
        Category("toilet", (0.40, 0.68, 0.78), toilet, _WHITE, 1.0, 0.06),
        Category("sink", (0.60, 0.50, 0.85), block, _WHITE + _WOOD, 1.0),
        Category("refrigerator", (0.75, 0.70, 1.80), block, _METAL + _WHITE, 1.0, 0.06),
        Category("nightstand", (0.45, 0.40, 0.55), block, _WOOD + _WHITE, 1.0, surface=top_surface),
        Category("dresser", (1.20, 0.50, 0.80), block, _WOOD, 1.0, surface=top_surface),
        Category("ottoman", (0.60, 0.60, 0.42), block, _FABRIC, 0.0),
        Category("trash bin", (0.35, 0.30, 0.60), block, _DARK + _METAL, 0.5),
        Category("bathtub", (0.75, 1.65, 0.55), block, _WHITE, 1.0, 0.06),
        Category("counter", (1.80, 0.62, 0.90), block, _WHITE + _WOOD, 1.0, surface=top_surface),
        Category("oven", (0.76, 0.66, 0.92), block, _METAL + _DARK + _WHITE, 1.0, 0.04),
        Category("stool", (0.40, 0.40, 0.65), legged, _WOOD + _METAL, 0.0),
        Category("washing machine", (0.60, 0.60, 0.85), block, _WHITE, 1.0, 0.05),
        # In a wall.
        Category("door", (0.90, 0.05, 2.03), block, _WOOD + _WHITE, 1.0, 0.04, mount=OPENING, clearance=0.9),
        Category("window", (1.20, 0.06, 1.20), block, _GLASS, 1.0, 0.25, mount=OPENING, base=(0.8, 1.0)),
        # On a wall.
        Category("clock", (0.30, 0.05, 0.30), block, _WHITE + _DARK, 1.0, mount=WALL, base=(1.6, 1.8)),
        Category("mirror", (0.60, 0.03, 0.80), block, _METAL, 1.0, 0.2, mount=WALL, base=(1.0, 1.2)),
        Category("towel", (0.50, 0.06, 0.70), block, _WHITE + _FABRIC, 1.0, 0.15, mount=WALL, base=(0.8, 1.1)),
        # On another object.
        Category("monitor", (0.55, 0.20, 0.45), monitor, _DARK, 0.0, mount=ON, supports=_DESKS, zone="back"),
        Category("keyboard", (0.44, 0.14, 0.03), block, _DARK + _WHITE, 0.0, 0.05, mount=ON, supports=_DESKS,
                 zone="front"),
        Category("computer mouse", (0.065, 0.11, 0.035), block, _DARK + _WHITE, 0.0, 0.05, mount=ON,
                 supports=_DESKS, zone="front"),
        Category("telephone", (0.20, 0.18, 0.09), block, _DARK + _WHITE, 0.0, mount=ON,
                 supports=(*_DESKS, "nightstand", "counter")),
        Category("printer", (0.45, 0.40, 0.25), block, _WHITE + _DARK, 0.0, mount=ON,
                 supports=(*_DESKS, "cabinet")),
        Category("microwave", (0.50, 0.38, 0.29), block, _WHITE + _DARK + _METAL, 0.0, 0.05, mount=ON,
                 supports=("counter",), zone="back"),
        Category("mattress", (1.60, 2.00, 0.20), block, _WHITE + _FABRIC, 0.0, 0.1, mount=ON, supports=("bed",),
                 fit=True, surface=top_surface),
        Category("pillow", (0.60, 0.40, 0.15), block, _WHITE + _FABRIC, 0.0, mount=ON,
                 supports=("mattress", "bed", "sofa"), zone="back"),
    ]
}

# ScanNet scene types -> (label, counts): the count is drawn uniformly from `counts`. Placement runs
# in MOUNT_ORDER, each mount in this order: big anchors first, then the small things questions ask
# about, then chairs and clutter (a small room's floor fills up before the end of the list).
RECIPES: dict[str, list[tuple[str, tuple[int, ...]]]] = {
    "Living room / Lounge": [
        ("door", (1, 2)), ("window", (1, 2, 3)),
        ("sofa", (1,)), ("piano", (1,)), ("table", (1, 2)), ("tv", (1,)), ("bookshelf", (0, 1, 2)),
        ("plant", (1, 2)), ("guitar", (0, 1, 1)), ("fan", (0, 1)), ("radiator", (0, 1)), ("lamp", (1, 2)),
        ("chair", (2, 3, 4)), ("cabinet", (0, 1)), ("trash bin", (0, 1)),
        ("clock", (0, 1, 1)), ("mirror", (0, 1)),
        ("pillow", (1, 2, 3)),
    ],
    "Bedroom / Hotel": [
        ("door", (1, 2)), ("window", (1, 2)),
        ("bed", (1,)), ("closet", (1,)), ("dresser", (0, 1)), ("desk", (0, 1)), ("nightstand", (1, 2)),
        ("tv", (0, 1)), ("backpack", (1, 2)), ("guitar", (0, 1, 1)), ("fan", (0, 1, 1)), ("plant", (0, 1)),
        ("radiator", (0, 1)), ("lamp", (0, 1, 2)), ("chair", (1, 2)), ("trash bin", (0, 1)),
        ("mirror", (0, 1)), ("clock", (0, 1)),
        ("mattress", (1,)), ("pillow", (1, 2, 3)), ("monitor", (0, 1)), ("keyboard", (0, 1)),
        ("computer mouse", (0, 1)), ("telephone", (0, 1)),
    ],
    "Office": [
        ("door", (1, 2)), ("window", (1, 2, 3)),
        ("desk", (1, 2, 3)), ("bookshelf", (1, 2)), ("sofa", (0, 1)), ("table", (0, 1)), ("cabinet", (1, 2)),
        ("trash bin", (1, 2)), ("plant", (0, 1, 2)), ("backpack", (0, 1, 2)), ("fan", (0, 1, 1)),
        ("radiator", (0, 1)), ("lamp", (0, 1)), ("chair", (2, 3, 4, 5)),
        ("clock", (0, 1, 1)),
        ("printer", (1,)), ("monitor", (1, 2, 3)), ("keyboard", (1, 2, 3)), ("computer mouse", (1, 2, 3)),
        ("telephone", (0, 1, 2)),
    ],
    "Kitchen": [
        ("door", (1, 2)), ("window", (1, 2)),
        ("refrigerator", (1,)), ("counter", (1, 2)), ("oven", (1,)), ("table", (1,)), ("cabinet", (1, 2, 3)),
        ("washing machine", (0, 1, 1)), ("sink", (0, 1)), ("trash bin", (1,)), ("plant", (0, 1)),
        ("radiator", (0, 1)), ("chair", (2, 3, 4)), ("stool", (0, 1, 2)),
        ("clock", (0, 1)), ("towel", (0, 1)),
        ("microwave", (1,)), ("telephone", (0, 1)),
    ],
    "Bathroom": [
        ("door", (1,)), ("window", (0, 1, 1)),
        ("bathtub", (0, 1)), ("toilet", (1,)), ("sink", (1, 2)), ("trash bin", (1, 2)),
        ("washing machine", (0, 1, 1, 1)), ("counter", (0, 1)), ("radiator", (0, 1, 1)), ("cabinet", (1, 2)),
        ("stool", (0, 1)),
        ("mirror", (1,)), ("towel", (1, 2, 3)), ("clock", (0, 1)),
    ],
}

# Small things that fit almost anywhere: used to reach the minimum number of floor objects.
FILLERS = ("chair", "trash bin", "stool", "ottoman", "cabinet", "lamp", "plant")


def plan(scene_type: str, rng: np.random.Generator, max_floor: int) -> list[str]:
    """Labels to place, in placement order (MOUNT_ORDER, then recipe order): the scene type's
    recipe, its floor objects padded with fillers to a random target between 6 and `max_floor`
    (plus two spares, as some placements fail)."""
    max_floor = max(max_floor, 6)
    labels: list[str] = []
    for label, counts in RECIPES[scene_type]:
        labels += [label] * counts[int(rng.integers(len(counts)))]
    target = int(rng.integers(6, max_floor + 1)) + 2
    floor = sum(CATALOGUE[label].mount == FLOOR for label in labels)
    labels += [FILLERS[int(rng.integers(len(FILLERS)))] for _ in range(max(0, target - floor))]
    return sorted(labels, key=lambda label: MOUNT_ORDER.index(CATALOGUE[label].mount))  # stable
