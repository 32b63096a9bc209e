"""Building blocks of the synthetic generator on hand-made inputs: room outline, renderer, mesh grid."""

from __future__ import annotations

import numpy as np
import pytest

from data_gen.synthetic.appearance import Palette
from data_gen.synthetic.layout import Box
from data_gen.synthetic.meshing import grid_quad
from data_gen.synthetic.render import RenderScene, render_frame
from data_gen.synthetic.room import Room, rects_separated
from data_gen.synthetic.trajectory import intrinsics

BOUNDS = (-3.0, -2.0, 3.0, 2.0)
NOTCHES = [(-3.0, -2.0, -1.0, -0.5), (1.0, -2.0, 3.0, -0.5), (1.0, 0.5, 3.0, 2.0), (-3.0, 0.5, -1.0, 2.0)]


@pytest.mark.parametrize("notch", [None, *NOTCHES])
def test_room_outline(notch):
    room = Room(BOUNDS, notch, 2.7)
    poly = room.polygon()
    assert len(poly) == (4 if notch is None else 6)
    x, y = poly[:, 0], poly[:, 1]
    signed_area = 0.5 * np.sum(x * np.roll(y, -1) - np.roll(x, -1) * y)
    assert signed_area == pytest.approx(room.area)  # counter-clockwise, and the right area
    assert room.area == pytest.approx(24.0 - (0 if notch is None else 3.0))
    assert sum((r[2] - r[0]) * (r[3] - r[1]) for r in room.floor_rects()) == pytest.approx(room.area)
    for a, b, n in room.walls():
        mid = (a + b) / 2
        assert room.contains((mid + 0.05 * n)[None])[0] and not room.contains((mid - 0.05 * n)[None])[0]
    if notch is not None:
        center = np.array([(notch[0] + notch[2]) / 2, (notch[1] + notch[3]) / 2])
        assert not room.contains(center[None])[0]
        assert not room.footprint_inside(center, np.array([0.2, 0.2]), 0.3, 0.0)


def test_rects_separated():
    half = np.array([0.5, 0.25])
    a = np.zeros(2)
    assert rects_separated(a, half, 0.0, np.array([1.2, 0.0]), half, 0.0, 0.1)
    assert not rects_separated(a, half, 0.0, np.array([1.05, 0.0]), half, 0.0, 0.1)
    assert not rects_separated(a, half, 0.0, np.array([0.9, 0.0]), half, np.pi / 4, 0.0)


def _palette() -> Palette:
    return Palette(floor=(100, 100, 100), ceiling=(200, 200, 200), walls=((150, 150, 150),) * 4,
                   light=np.array([0.0, 0.0, 2.5]))


def _looking_along_x(position: tuple[float, float, float]) -> np.ndarray:
    pose = np.eye(4)
    pose[:3, 0], pose[:3, 1], pose[:3, 2] = [0, -1, 0], [0, 0, -1], [1, 0, 0]  # right, down, forward
    pose[:3, 3] = position
    return pose


def test_render_depth_of_known_surfaces():
    room = Room(BOUNDS, None, 2.7)
    box = Box(center=np.array([1.5, 0.0, 0.5]), half=np.array([0.25, 0.4, 0.5]), yaw=0.0, object_id=0,
              color=(200, 0, 0))
    scene = RenderScene.build(room, [box], _palette())
    k = intrinsics(64, 48, 65.0)
    frame = render_frame(scene, _looking_along_x((0.0, 0.0, 1.0)), k, 64, 48)
    centre_row = 23  # rows 23 and 24 straddle the horizon (cy = 23.5)
    # The box's near face is at x = 1.25; pixels right at the image centre see it head on.
    assert frame.depth[centre_row + 1, 31] == pytest.approx(1.25, abs=1e-6)
    assert scene.surface_object[frame.surface[centre_row + 1, 31]] == 0
    assert tuple(frame.color[centre_row + 1, 31]) != (0, 0, 0) and frame.color[centre_row + 1, 31, 1] == 0
    # The top rows see the wall at x = 3 (depth along the optical axis = 3 m).
    assert frame.depth[0, 0] == pytest.approx(3.0, abs=1e-6)
    assert frame.surface[0, 0] >= 2 and scene.surface_object[frame.surface[0, 0]] == -1
    # Looking away from the box: the whole view is the far wall, floor and ceiling.
    back = _looking_along_x((0.0, 0.0, 1.0))
    back[:3, 0], back[:3, 2] = -back[:3, 0], -back[:3, 2]
    frame = render_frame(scene, back, k, 64, 48)
    assert (scene.surface_object[frame.surface] == -1).all()
    assert np.isclose(frame.depth[centre_row], 3.0, atol=1e-6).all()


def test_render_rotated_box_face():
    room = Room(BOUNDS, None, 2.7)
    box = Box(center=np.array([2.0, 0.0, 0.6]), half=np.array([0.3, 0.3, 0.6]), yaw=np.pi / 4, object_id=3,
              color=(0, 200, 0))
    scene = RenderScene.build(room, [box], _palette())
    k = intrinsics(64, 48, 65.0)
    frame = render_frame(scene, _looking_along_x((0.0, 0.0, 1.0)), k, 64, 48)
    # A 45-degree box points a corner at the camera: its nearest point is 0.3 * sqrt(2) in front.
    assert frame.depth[24].min() == pytest.approx(2.0 - 0.3 * np.sqrt(2), abs=0.02)


def test_grid_quad_density_and_winding():
    verts, tris = grid_quad(np.zeros(3), np.array([1.0, 0, 0]), np.array([0, 0.35, 0]), 0.1)
    assert verts.shape == (11 * 5, 3) and tris.shape == (2 * 10 * 4, 3)
    n = np.cross(verts[tris[:, 1]] - verts[tris[:, 0]], verts[tris[:, 2]] - verts[tris[:, 0]])
    assert (n[:, 2] > 0).all()  # every triangle faces along u x v = +z
    area = 0.5 * np.linalg.norm(n, axis=1).sum()
    assert area == pytest.approx(0.35)
