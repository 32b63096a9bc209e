"""The camera-motion question types on hand-built scenes: camera poses and boxes placed so that
every answer (and every rejection) is worked out by hand below, not by the code under test."""

from __future__ import annotations

import numpy as np
import pytest

from data_gen.qa.config import QAConfig
from data_gen.qa.metadata import Appearance, ObjectMeta, SceneMetadata
from data_gen.qa.obb import Box3D
from data_gen.qa.questions import (
    camera_displacement,
    camera_movement_direction,
    camera_obj_abs_distance,
    camera_obj_rel_distance,
    obj_obj_rel_position,
)
from data_gen.qa.questions._camera import FRAMES_NOTE
from data_gen.schema import CAMERA_MOTION_TYPES

CAMERA = (500.0, 500.0, 320.0, 240.0, 640.0, 480.0)  # fx, fy, cx, cy, width, height


def pose(x: float, y: float, z: float, heading: tuple[float, float]) -> tuple[float, ...]:
    """Camera-to-world [3, 4], row-major: at (x, y, z), level, looking along the floor vector
    `heading` (OpenCV axes: z forward, y down = world -z, x = y cross z)."""
    forward = np.array([*heading, 0.0]) / np.hypot(*heading)
    down = np.array([0.0, 0.0, -1.0])
    right = np.cross(down, forward)
    rotation = np.stack([right, down, forward], axis=1)  # columns: the camera's axes in the world
    return tuple(np.concatenate([rotation, [[x], [y], [z]]], axis=1).reshape(-1))


def scene(positions, headings=None, objects=(), seen=None) -> SceneMetadata:
    """`positions`: the camera at each shown frame (frames 0, 10, 20, ...); `objects`: (category,
    centre, extents) axis-aligned boxes; `seen`: category -> the stream frame it is first seen at
    (default 0)."""
    headings = headings or [(1.0, 0.0)] * len(positions)
    objs = [ObjectMeta(k + 1, c, Box3D(centre, np.eye(3), extents), 100) for k, (c, centre, extents) in enumerate(objects)]
    seen = {o.category: (seen or {}).get(o.category, 0) for o in objs}
    return SceneMetadata(
        "scene0000_00", "scannet", 24.0, 0.0, 20.0, (0.0, 0.0, 0.0), objs,
        {c: Appearance(f / 24.0, f, next(o.object_id for o in objs if o.category == c)) for c, f in seen.items()},
        shown_frames=tuple(10 * k for k in range(len(positions))),
        shown_poses=tuple(pose(*p, h) for p, h in zip(positions, headings, strict=True)), shown_camera=CAMERA,
    )  # fmt: skip


def everything(types: list[str]) -> QAConfig:
    return QAConfig(max_per_type={t: -1 for t in types})


def generate(module, meta: SceneMetadata) -> list[dict]:
    return module.generate(meta, np.random.default_rng(0), everything([module.QUESTION_TYPE]))


def answer_text(q: dict) -> str:
    """The option a multiple-choice record's letter points at."""
    return next(o[3:] for o in q["options"] if o.startswith(q["ground_truth"] + "."))


def test_displacement_is_the_straight_line_between_camera_positions():
    # 1 -> 2: (3, 4) = 5.0 m; 1 -> 3: sqrt(3^2 + 4.1^2) = 5.080 -> 5.1; 2 -> 3: 0.1 m, under 0.2: skipped.
    meta = scene([(0, 0, 1.5), (3, 4, 1.5), (3, 4.1, 1.5)])
    got = {tuple(q["meta"]["numbers"]): q["ground_truth"] for q in generate(camera_displacement, meta)}
    assert got == {(1, 2): "5.0", (1, 3): "5.1"}
    q = next(q for q in generate(camera_displacement, meta) if q["meta"]["numbers"] == [1, 2])
    assert q["question"] == ("How far did the camera move between frame 1 and frame 2, in a straight line "
                             f"(in meters)?\n{FRAMES_NOTE}") and q["problem_type"] == "numerical"  # fmt: skip
    assert q["meta"]["params"] == {"frames": [0, 10]}


def test_movement_direction_is_relative_to_the_heading_at_the_first_frame():
    # All face +x but frame 4, which faces +y. Angles counter-clockwise from the heading:
    # 1->2 (2, 0): 0 forward; 1->3 (2, 2): 45, on an edge: skipped; 1->4 (0, 2): 90 left;
    # 1->5 (2, -1): 333.4 forward; 2->3 (0, 2): 90 left; 2->4 (-2, 2): 135, on an edge: skipped;
    # 2->5 (0, -1): 270 right; 3->4 (-2, 0): 180 backward; 3->5 (0, -3): 270 right;
    # 4->5 (2, -3) is 303.7 from +x, so 213.7 from frame 4's heading +y: backward.
    positions = [(0, 0, 1.5), (2, 0, 1.5), (2, 2, 1.5), (0, 2, 1.5), (2, -1, 1.5)]
    headings = [(1, 0), (1, 0), (1, 0), (0, 1), (1, 0)]
    questions = generate(camera_movement_direction, scene(positions, headings))
    got = {tuple(q["meta"]["numbers"]): answer_text(q) for q in questions}
    assert got == {(1, 2): "forward", (1, 4): "left", (1, 5): "forward", (2, 3): "left", (2, 5): "right",
                   (3, 4): "backward", (3, 5): "right", (4, 5): "backward"}  # fmt: skip
    assert all(sorted(o[3:] for o in q["options"]) == ["backward", "forward", "left", "right"] for q in questions)
    # A move shorter than heading_min_distance (0.3 m) has no direction worth asking.
    assert generate(camera_movement_direction, scene([(0, 0, 1.5), (0.2, 0, 1.5)])) == []


def test_camera_object_distance_is_to_the_box_and_only_after_it_was_seen():
    # The camera at (0, 0, 0.5); the table's box spans x in [2.5, 3.5], y and z around it: 2.5 m.
    # From (1, 0, 0.5): 1.5 m. The lamp is first seen at stream frame 10 (the second frame shown).
    objects = [("table", (3, 0, 0.5), (1, 1, 1)), ("lamp", (0, -4, 0.5), (0.2, 0.2, 1))]
    meta = scene([(0, 0, 0.5), (1, 0, 0.5)], objects=objects, seen={"lamp": 10})
    got = {(q["meta"]["number"], q["meta"]["object"]): q["ground_truth"] for q in generate(camera_obj_abs_distance, meta)}
    # lamp from (1, 0, 0.5): closest point (0.1, -3.9) -> sqrt(0.81 + 15.21) = 4.002 -> 4.0
    assert got == {(1, "table"): "2.5", (2, "table"): "1.5", (2, "lamp"): "4.0"}


def test_the_object_closest_to_the_camera():
    # Camera at the origin; boxes of 0.2 m whose near faces are 0.9, 1.9, 2.9, 3.9 m away.
    objects = [(c, (d + 0.1, 0, 0), (0.2, 0.2, 0.2)) for c, d in (("bed", 1.9), ("tv", 0.9), ("sofa", 2.9), ("fan", 3.9))]
    questions = generate(camera_obj_rel_distance, scene([(0, 0, 0)], objects=objects))
    assert len(questions) == 1 and answer_text(questions[0]) == "tv"
    q = questions[0]
    named = q["question"].split("(")[1].split(")")[0].split(", ")
    assert named == [o[3:] for o in q["options"]]  # the question lists them as the options do
    # Two candidates within 0.15 m of each other: ambiguous, skipped.
    objects[0] = ("bed", (1.05, 0.5, 0), (0.2, 0.2, 0.2))  # closest point (0.95, 0.4): 1.03 m, tv 0.9 m
    assert generate(camera_obj_rel_distance, scene([(0, 0, 0)], objects=objects)) == []


def test_left_or_right_from_the_camera_and_only_objects_in_view():
    # Facing +x from (0, 0, 0.5), left is +y: the plant at y = +1 is left of the chair at y = -1
    # (camera x = -1 and +1 at depth 3: columns 153 and 487 of 640). The door at y = +3 projects to
    # column -180, outside the image: no question names it.
    objects = [("plant", (3, 1, 0.5), (0.2, 0.2, 0.2)), ("chair", (3, -1, 0.5), (0.2, 0.2, 0.2)),
               ("door", (3, 3, 0.5), (0.2, 0.2, 0.2))]  # fmt: skip
    questions = generate(obj_obj_rel_position, scene([(0, 0, 0.5)], objects=objects))
    got = {tuple(q["question"].split("is the ")[1].split("?")[0].split(" to the left or the right of the ")):
           answer_text(q) for q in questions}  # fmt: skip
    assert got == {("plant", "chair"): "left", ("chair", "plant"): "right"}
    assert all(q["options"] == ["A. left", "B. right"] for q in questions)


def test_types_are_known_to_the_schema_and_need_the_frames():
    from data_gen.qa.questions import GENERATORS
    from data_gen.schema import problem_type_of

    assert set(CAMERA_MOTION_TYPES) <= set(GENERATORS)
    assert [problem_type_of(t) for t in CAMERA_MOTION_TYPES] == [
        "numerical", "multiple_choice", "numerical", "multiple_choice", "multiple_choice"]  # fmt: skip
    # A scene built from a meta_info file has no frames: no camera-motion question.
    bare = scene([(0, 0, 0)], objects=[("table", (3, 0, 0.5), (1, 1, 1))])
    bare = SceneMetadata(**{**bare.__dict__, "shown_frames": (), "shown_poses": (), "shown_camera": ()})
    for t in CAMERA_MOTION_TYPES:
        assert GENERATORS[t](bare, np.random.default_rng(0), everything([t])) == [], t


@pytest.mark.parametrize("heading", [(1.0, 0.0), (0.6, 0.8), (-1.0, 0.0)])
def test_pose_helper_looks_where_it_says(heading):
    """The test's own pose builder: the camera's +z is the heading, +x is to its right (clockwise)."""
    rotation = np.asarray(pose(0, 0, 0, heading)).reshape(3, 4)[:, :3]
    h = np.array([*heading, 0.0]) / np.hypot(*heading)
    assert np.allclose(rotation[:, 2], h)
    assert np.allclose(rotation[:, 0], [h[1], -h[0], 0.0])
    assert np.allclose(rotation @ rotation.T, np.eye(3))
