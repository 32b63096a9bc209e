"""The camera walk shows the categories questions ask about one after another: every default demo
scene supports an appearance-order question (VSI-Bench's rule: four categories whose first-seen
times, frame / fps in whole seconds, are pairwise more than 1 s apart)."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from data_gen.qa.config import QAConfig
from data_gen.qa.metadata import scene_metadata
from data_gen.synthetic.layout import Box, SceneObject
from data_gen.synthetic.room import Room
from data_gen.synthetic.scenes import generate_scene, run_scene_type, scene_seed
from data_gen.synthetic.sightings import Occluders, SurfacePoints, chain, first_frames, order_margin

# The demo's clip (jobs/configs/tiny.yaml: 192 frames, 8 s at 24 fps) at a quarter of its 320x240
# pixels: the first-seen times are the same (measured on the 6 demo scenes of seed 0 and 12 of seed
# 11: all 213 whole-second category times agreed).
DEMO_CLIP = {"num_frames": 192, "width": 160, "height": 120}


def orders(seconds: dict[str, float]) -> list[tuple[str, ...]]:
    """4-category sets whose whole-second times (rounded half to even, and half up) are all more
    than 1 s apart."""
    out = []
    for combo in itertools.combinations(sorted(seconds), 4):
        ok = True
        for rounding in (round, lambda x: math.floor(x + 0.5)):
            times = sorted(rounding(seconds[c]) for c in combo)
            ok &= all(b - a > 1 for a, b in itertools.pairwise(times))
        if ok:
            out.append(combo)
    return out


@pytest.mark.parametrize("seed, index", [(0, i) for i in range(6)] + [(11, i) for i in range(6)])
def test_every_demo_scene_has_an_appearance_order(seed, index):
    name = f"scene{index:04d}_00"  # as synthesize_scans names it (visibility sampling is keyed on it)
    scan, _ = generate_scene(name, scene_seed(seed, index), scene_type=run_scene_type(seed, index), **DEMO_CLIP)
    meta = scene_metadata(scan, QAConfig())
    seconds = {c: a.frame / meta.fps for c, a in meta.first_appearance.items()}
    assert orders(seconds), {c: round(t, 2) for c, t in sorted(seconds.items(), key=lambda kv: kv[1])}


def test_orders_rule_by_hand():
    assert orders({"a": 0.0, "b": 2.0, "c": 4.4, "d": 6.6}) == [("a", "b", "c", "d")]
    assert orders({"a": 0.0, "b": 1.4, "c": 4.0, "d": 6.0}) == []  # 0 and 1 s: too close
    assert orders({"a": 0.0, "b": 2.5, "c": 4.0, "d": 6.0}) == []  # 2.5 s is 2 or 3 s, as one rounds


def test_chain_of_sighting_windows():
    # (first glimpse, clear view) windows; the best chain of 4 leaves 2 between clear and next glimpse.
    windows = [(0, 0), (2, 3), (5, 5), (6, 8), (9, 9)]
    assert chain(windows, 4) == (2, [(0, 0), (2, 3), (5, 5), (9, 9)])
    assert chain(windows[:3], 4) == (-np.inf, [])
    assert order_margin({"a": (0, 0), "b": (48, 60), "c": (108, 120), "d": (168, 168)}, fps=24.0) == 2.0


def _object(object_id: int, center: tuple[float, float], size: float) -> tuple[SceneObject, Box]:
    half = np.full(3, size / 2)
    obj = SceneObject(object_id, "plant", np.array([*center, size / 2]), 2 * half, 0.0, (0, 0, 0))
    return obj, Box(obj.center, half, 0.0, object_id, obj.color, rests=True)


def test_first_sightings_of_boxes_in_view_hidden_and_behind():
    room = Room((-5.0, -5.0, 5.0, 5.0), None, 3.0)
    parts = [_object(0, (2.0, 0.0), 1.0), _object(1, (3.5, 0.0), 0.6), _object(2, (-3.0, 0.0), 0.5)]
    boxes = [b for _, b in parts]
    poses = np.tile(np.eye(4), (12, 1, 1))
    for i, sign in enumerate([1.0] * 6 + [-1.0] * 6):  # 6 frames looking along +x, then 6 along -x
        poses[i, :3, 0], poses[i, :3, 1], poses[i, :3, 2] = [0, -sign, 0], [0, 0, -1], [sign, 0, 0]
        poses[i, :3, 3] = [0.0, 0.0, 0.5]
    glimpse, clear = first_frames(poses, (0.6, 0.45), SurfacePoints(boxes, 3), Occluders(boxes, room), 3, step=6)
    assert glimpse.tolist() == [0, -1, 6] and clear.tolist() == [0, -1, 6]  # object 1 hides behind 0
