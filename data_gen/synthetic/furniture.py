"""Furniture catalogue: NYU40/ScanNet labels, real-world sizes, shapes built from boxes, scene recipes.

An object's own frame: x along its length, y along its width with the back at +y (the side that
goes against a wall), z up from the floor. Every shape's boxes fill exactly the object's bounding
box [-L/2, L/2] x [-W/2, W/2] x [0, H], so the mesh extents equal the nominal size.
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


def toilet(size: np.ndarray) -> list[Part]:
    """Bowl in front, cistern at the back (+y)."""
    length, width, height = size
    return [
        _box((-0.4 * length, -width / 2, 0.0), (0.4 * length, 0.25 * width, 0.55 * height)),
        _box((-length / 2, 0.25 * width, 0.0), (length / 2, width / 2, height)),
    ]


@dataclass(frozen=True)
class Category:
    label: str
    size: tuple[float, float, float]  # nominal (length, width, height), metres
    shape: Callable[[np.ndarray], list[Part]]
    colors: tuple[tuple[int, int, int], ...]  # RGB palette; one is picked per instance
    wall_prob: float  # chance the object stands with its back against a wall
    jitter: float = 0.1  # relative per-instance size variation (uniform +-)

    def sample_size(self, rng: np.random.Generator) -> np.ndarray:
        return np.round(np.array(self.size) * rng.uniform(1 - self.jitter, 1 + self.jitter, 3), 3)


_WOOD = ((120, 84, 52), (150, 110, 70), (92, 64, 44), (176, 138, 96))
_FABRIC = ((90, 110, 150), (150, 60, 60), (110, 130, 90), (170, 160, 140), (80, 80, 90))
_WHITE = ((225, 225, 220), (205, 210, 215), (235, 232, 225))
_DARK = ((40, 40, 45), (25, 25, 30), (60, 60, 65))
_METAL = ((170, 175, 180), (140, 145, 150), (200, 200, 205))

CATALOGUE: dict[str, Category] = {
    c.label: c
    for c in [
        Category("chair", (0.50, 0.52, 0.90), chair, _WOOD + _FABRIC, 0.15),
        Category("table", (1.20, 0.80, 0.75), legged, _WOOD + _WHITE, 0.15),
        Category("sofa", (2.00, 0.90, 0.85), sofa, _FABRIC, 0.9),
        Category("bed", (1.60, 2.05, 0.95), bed, _FABRIC + _WHITE, 1.0, 0.08),
        Category("cabinet", (0.80, 0.50, 0.90), block, _WOOD + _WHITE, 0.9),
        Category("desk", (1.40, 0.70, 0.75), legged, _WOOD + _WHITE, 0.85),
        Category("bookshelf", (0.90, 0.35, 1.80), block, _WOOD + _WHITE, 1.0),
        Category("tv", (1.10, 0.30, 1.10), tv, _DARK, 0.8),
        Category("lamp", (0.40, 0.40, 1.60), lamp, _WHITE + ((220, 200, 150),), 0.3),
        Category("toilet", (0.40, 0.68, 0.78), toilet, _WHITE, 1.0, 0.06),
        Category("sink", (0.60, 0.50, 0.85), block, _WHITE + _WOOD, 1.0),
        Category("refrigerator", (0.75, 0.70, 1.80), block, _METAL + _WHITE, 1.0, 0.06),
        Category("nightstand", (0.45, 0.40, 0.55), block, _WOOD + _WHITE, 1.0),
        Category("dresser", (1.20, 0.50, 0.80), block, _WOOD, 1.0),
        Category("ottoman", (0.60, 0.60, 0.42), block, _FABRIC, 0.0),
        Category("trash can", (0.35, 0.30, 0.60), block, _DARK + _METAL, 0.5),
        Category("bathtub", (0.75, 1.65, 0.55), block, _WHITE, 1.0, 0.06),
        Category("counter", (1.80, 0.62, 0.90), block, _WHITE + _WOOD, 1.0),
        Category("stove", (0.75, 0.65, 0.92), block, _METAL + _DARK, 1.0, 0.05),
        Category("stool", (0.40, 0.40, 0.65), legged, _WOOD + _METAL, 0.0),
        Category("washing machine", (0.60, 0.60, 0.85), block, _WHITE, 1.0, 0.05),
    ]
}

# ScanNet scene types -> (label, min count, max count). Big anchors first: they are placed first.
RECIPES: dict[str, list[tuple[str, int, int]]] = {
    "Living room / Lounge": [
        ("sofa", 1, 1), ("table", 1, 2), ("tv", 1, 1), ("bookshelf", 0, 2), ("cabinet", 0, 2),
        ("chair", 2, 4), ("ottoman", 0, 2), ("lamp", 1, 2), ("trash can", 0, 1),
    ],
    "Bedroom / Hotel": [
        ("bed", 1, 1), ("dresser", 0, 1), ("desk", 0, 1), ("cabinet", 0, 2), ("nightstand", 1, 2),
        ("tv", 0, 1), ("chair", 1, 2), ("lamp", 1, 2), ("trash can", 0, 1),
    ],
    "Office": [
        ("desk", 1, 3), ("bookshelf", 1, 2), ("sofa", 0, 1), ("table", 0, 1), ("cabinet", 1, 3),
        ("chair", 2, 5), ("lamp", 0, 1), ("trash can", 1, 2),
    ],
    "Kitchen": [
        ("refrigerator", 1, 1), ("counter", 1, 2), ("stove", 0, 1), ("table", 1, 1), ("cabinet", 1, 3),
        ("sink", 0, 1), ("chair", 2, 4), ("stool", 0, 2), ("trash can", 1, 1),
    ],
    "Bathroom": [
        ("bathtub", 0, 1), ("toilet", 1, 1), ("washing machine", 0, 1), ("sink", 1, 2),
        ("cabinet", 1, 3), ("trash can", 1, 2), ("stool", 0, 1), ("lamp", 0, 1),
    ],
}

# Small things that fit almost anywhere: used to reach the minimum object count.
FILLERS = ("chair", "trash can", "stool", "ottoman", "cabinet", "lamp")


def plan(scene_type: str, rng: np.random.Generator, max_objects: int) -> list[str]:
    """Labels to place, anchors first: the scene type's recipe padded with fillers to a random
    target between 6 and `max_objects` (plus two spares, as some placements fail)."""
    max_objects = max(max_objects, 6)
    labels: list[str] = []
    for label, lo, hi in RECIPES[scene_type]:
        labels += [label] * int(rng.integers(lo, hi + 1))
    target = int(rng.integers(6, max_objects + 1)) + 2
    while len(labels) < target:
        labels.append(FILLERS[int(rng.integers(len(FILLERS)))])
    return labels[: max_objects + 2]
