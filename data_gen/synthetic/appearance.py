"""Surface colour: base colour x procedural texture x Lambert shading.

The mesh's vertex colours and the renderer's pixels call the same function at the same 3D points,
so a pixel and the mesh vertices next to its back-projection agree (as in ScanNet, where vertex
colours are fused from the images).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

FLOOR, CEILING, WALL, OBJECT = 0, 1, 2, 3  # surface kinds

Components = tuple[np.ndarray, np.ndarray, np.ndarray]  # x, y, z arrays of one shape (or scalars)

AMBIENT = 0.42  # share of light that reaches surfaces facing away from the lamp
TILE = 0.5  # floor tile side, metres


@dataclass(frozen=True)
class Palette:
    floor: tuple[int, int, int]
    ceiling: tuple[int, int, int]
    walls: tuple[tuple[int, int, int], ...]  # one per wall segment (small variation around one paint)
    light: np.ndarray  # [3] position of the point light in the aligned frame


_FLOORS = ((150, 112, 76), (120, 90, 62), (170, 165, 155), (110, 110, 115), (185, 150, 110))
_PAINTS = ((230, 226, 214), (214, 222, 230), (232, 218, 200), (206, 214, 196), (236, 236, 236))


def random_palette(rng: np.random.Generator, num_walls: int, light: np.ndarray) -> Palette:
    def pick(options: tuple[tuple[int, int, int], ...], spread: float) -> np.ndarray:
        base = np.array(options[int(rng.integers(len(options)))], dtype=np.float64)
        return base * rng.uniform(1 - spread, 1 + spread)

    paint = pick(_PAINTS, 0.04)
    walls = tuple(_rgb(paint * rng.uniform(0.96, 1.04, 3)) for _ in range(num_walls))
    return Palette(floor=_rgb(pick(_FLOORS, 0.08)), ceiling=_rgb(pick(_PAINTS[-1:], 0.02)), walls=walls,
                   light=np.asarray(light, dtype=np.float64))


def texture(x: np.ndarray, y: np.ndarray, z: np.ndarray, kinds: np.ndarray) -> np.ndarray:
    """Brightness factor near 1 at points (x, y, z) on surfaces of kind `kinds` (all the same shape).

    Floors get a tile checker; everything gets a faint smooth ripple so that no surface is flat
    (images with some texture are closer to real ones for the spatial encoder).
    """
    f = np.float32  # float32 constants keep float32 inputs (the renderer's) in float32
    two_pi = f(2 * np.pi)
    ripple = 1.0 + f(0.04) * np.sin(x * (two_pi / f(0.83))) * np.sin(y * (two_pi / f(0.71)))
    ripple += f(0.03) * np.sin(two_pi * (z / f(0.57) + f(0.3) * x + f(0.2) * y))
    checker = (np.floor(x / f(TILE)) + np.floor(y / f(TILE))) % 2
    return ripple * np.where(kinds == FLOOR, 1.0 - f(0.08) * checker, f(1.0))


def shade(points: Components, normals: Components, light: np.ndarray) -> np.ndarray:
    """Lambert factor at points (x, y, z) with unit normals (nx, ny, nz), lit by a point light [3]."""
    to_light = [np.float32(light[k]) - points[k] for k in range(3)]
    dist = np.sqrt(to_light[0] ** 2 + to_light[1] ** 2 + to_light[2] ** 2)
    dot = normals[0] * to_light[0] + normals[1] * to_light[1] + normals[2] * to_light[2]
    cos = dot / np.maximum(dist, 1e-6)
    falloff = 1.0 / (1.0 + np.float32(0.02) * dist**2)
    return AMBIENT + np.float32(1.0 - AMBIENT) * np.clip(cos, 0.0, 1.0) * falloff


def surface_rgb(base: np.ndarray, points: Components, normals: Components, kinds: np.ndarray,
                light: np.ndarray) -> np.ndarray:
    """[..., 3] uint8 colours: base colours [..., 3] (0-255) at points and normals given per axis,
    each component an array of shape [...] (like `kinds`)."""
    factor = texture(*points, kinds) * shade(points, normals, light)  # [...]
    return np.clip(np.rint(base * factor[..., None]), 0, 255).astype(np.uint8)


def _rgb(c: np.ndarray) -> tuple[int, int, int]:
    r, g, b = np.clip(np.rint(c), 0, 255).astype(int)
    return int(r), int(g), int(b)
