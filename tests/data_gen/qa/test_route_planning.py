"""Route planning on hand-built floors whose routes are known: an L-shaped corridor walked from its
west end to its north end, turning at the inner corner (`data_gen/qa/questions/route_planning.py`)."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from data_gen.qa.config import QAConfig
from data_gen.qa.floor_grid import FloorGrid, floor_grid, free_space, polygon_distance
from data_gen.qa.metadata import ObjectMeta, SceneMetadata
from data_gen.qa.obb import Box3D
from data_gen.qa.questions import route_planning
from data_gen.qa.route import PathTree, line_free, straightened, turn_of

CFG = QAConfig(max_per_type={"route_planning": -1})
CELL = 0.1


def l_corridor() -> FloorGrid:
    """Floor: a corridor x in [0, 6], y in [0, 1.2] and one x in [4.8, 6], y in [0, 5] (an L)."""
    xs, ys = np.meshgrid(np.arange(0, 6, CELL / 2) + CELL / 4, np.arange(0, 5, CELL / 2) + CELL / 4, indexing="ij")
    pts = np.stack([xs.ravel(), ys.ravel()], axis=1)
    keep = (pts[:, 1] < 1.2) | (pts[:, 0] > 4.8)
    return floor_grid(pts[keep], CELL)


def box(x0, x1, y0, y1, z0=0.0, z1=1.0) -> Box3D:
    return Box3D(((x0 + x1) / 2, (y0 + y1) / 2, (z0 + z1) / 2), np.eye(3), (x1 - x0, y1 - y0, z1 - z0))


# Outside the floor, around it: the bed at the west end, the sofa past the north end, a plant in the
# inner corner (the landmark of the turn), the tv past the south wall near the bed.
OBJECTS = {
    "bed": box(-1.0, 0.0, 0.2, 1.0),
    "tv": box(0.2, 0.8, -0.6, -0.1, 0.5, 1.2),
    "plant": box(4.3, 4.7, 1.3, 1.7),
    "sofa": box(4.8, 6.0, 5.0, 6.0),
}


def scene(objects: dict[str, Box3D], grid: FloorGrid | None = None) -> SceneMetadata:
    objs = [ObjectMeta(k + 1, name.split("#")[0], b, 100) for k, (name, b) in enumerate(objects.items())]
    return SceneMetadata("scene0000_00", "scannet", 24.0, 0.0, 20.0, (0.0, 0.0, 0.0), objs, {},
                         floor_grid=grid if grid is not None else l_corridor())  # fmt: skip


def route_for(meta: SceneMetadata, start: str, facing: str, dest: str) -> dict | None:
    ids = {o.category: o.object_id for o in meta.objects}
    for q in route_planning.generate(meta, np.random.default_rng(0), CFG):
        if q["meta"]["params"]["object_ids"] == [ids[start], ids[facing], ids[dest]]:
            return q
    return None


def answer(q: dict) -> str:
    return next(o[3:] for o in q["options"] if o.startswith(q["ground_truth"] + "."))


def test_the_l_corridor_is_walked_with_two_left_turns():
    # Facing the tv (south), the corridor runs east: a left turn (90 degrees counter-clockwise). At the
    # inner corner, by the plant, the corridor turns north: left again (about 80 degrees). The sofa ends it.
    q = route_for(scene(OBJECTS), "bed", "tv", "sofa")
    assert q is not None
    assert q["question"] == (
        "You are a robot beginning at the bed and facing the tv. You want to navigate to the sofa. You will perform "
        "the following actions (Note: for each [please fill in], choose either 'turn back,' 'turn left,' or "
        "'turn right.'): 1. [please fill in] 2. Go forward until the plant 3. [please fill in] 4. Go forward until "
        "the sofa. You have reached the final destination."
    )
    assert answer(q) == "Turn Left, Turn Left" and len(q["options"]) == 4
    assert len({o[3:] for o in q["options"]}) == 4 and all(o[3:].count("Turn") == 2 for o in q["options"])
    # The route's corner is at the inner corner of the L (4.8, 1.2), a robot radius (0.25 m) off both walls.
    corner = np.array(q["meta"]["points"][1])
    assert np.abs(corner - [4.8 + 0.25, 1.2 - 0.25]).max() < 0.2


def test_walked_the_other_way_the_turn_is_a_right_turn():
    # From the sofa facing a window past the south wall, the corridor runs straight at it (no turn to
    # fill in); at the corner it turns west, about 80 degrees clockwise: right. One turn: three options.
    objects = {**OBJECTS, "window": box(5.2, 5.6, -0.6, -0.5, 0.9, 1.5)}
    q = route_for(scene(objects), "sofa", "window", "bed")
    assert q is not None
    assert "): 1. Go forward until the plant 2. [please fill in] 3. Go forward until the bed. You have" in q["question"]
    assert answer(q) == "Turn Right"
    assert sorted(o[3:] for o in q["options"]) == ["Turn Back", "Turn Left", "Turn Right"]


def test_a_turn_near_45_degrees_is_not_asked():
    # Facing a lamp 50 degrees north of east from the start: the corridor (about 4 degrees north of east)
    # is 46 degrees clockwise of it, 1 degree from the forward/right edge: ambiguous.
    start = np.array([0.3, 0.6])
    lamp_at = start + 3 * np.array([np.cos(np.radians(50)), np.sin(np.radians(50))])
    objects = {**OBJECTS, "lamp": box(lamp_at[0] - 0.1, lamp_at[0] + 0.1, lamp_at[1] - 0.1, lamp_at[1] + 0.1, 1.5, 2.0)}
    assert route_for(scene(objects), "bed", "tv", "sofa") is not None
    assert route_for(scene(objects), "bed", "lamp", "sofa") is None


def test_a_landmark_must_be_one_of_a_kind_and_clearly_nearest():
    # A second plant elsewhere: "the plant" names nothing in particular; the corner has no landmark.
    assert route_for(scene({**OBJECTS, "plant#2": box(-1.0, -0.5, 3.0, 3.5)}), "bed", "tv", "sofa") is None
    # A chair as near the corner as the plant (within 0.3 m): which one the leg ends at is unclear.
    chair = box(4.3, 4.7, 1.3, 1.7, 0.0, 0.9)
    near = {**OBJECTS, "chair": Box3D((chair.center[0] + 0.1, chair.center[1] + 0.05, 0.45), np.eye(3), chair.extents)}
    assert route_for(scene(near), "bed", "tv", "sofa") is None


def test_a_gap_narrower_than_the_robot_blocks_the_route():
    # A standing cabinet across the corridor at x = 3 leaves 0.3 m, under two robot radii (0.5 m).
    blocked = {**OBJECTS, "cabinet": box(2.8, 3.2, 0.0, 0.9)}
    assert route_for(scene(blocked), "bed", "tv", "sofa") is None
    # Hung on the wall above head height it blocks nothing.
    hung = {**OBJECTS, "cabinet": box(2.8, 3.2, 0.0, 0.9, 1.5, 2.2)}
    assert route_for(scene(hung), "bed", "tv", "sofa") is not None


def test_free_space_keeps_a_robot_radius_from_walls_and_objects():
    grid = l_corridor()
    free = free_space(grid, [box(2.0, 2.4, 0.0, 0.4)], 0.25)
    centres = grid.centres()[free]  # [F, 2]
    # Inside the corridor, at least 0.25 m from its walls (cell centres: within half a cell).
    assert centres[:, 1].min() >= 0.25 - CELL / 2 and centres[:, 0].min() >= 0.25 - CELL / 2
    assert polygon_distance(centres, np.array([[2.0, 0.0], [2.4, 0.0], [2.4, 0.4], [2.0, 0.4]])).min() > 0.25


def test_paths_and_turns_by_hand():
    free = np.ones((10, 10), dtype=bool)
    free[5, :8] = False  # a wall with a gap at the top (j = 8, 9)
    tree = PathTree(free, [(2, 2)])
    path = tree.path(0, (8, 2))
    assert path[0] == (2, 2) and path[-1] == (8, 2) and all(free[c] for c in path)
    assert any(c[0] == 5 and c[1] >= 8 for c in path)  # through the gap
    corners = straightened(free, path)
    assert corners[0] == (2, 2) and corners[-1] == (8, 2) and set(corners) <= set(path)
    assert len(corners) < len(path) and all(line_free(free, a, b) for a, b in itertools.pairwise(corners))
    assert not line_free(free, (2, 2), (8, 2))
    assert tree.path(0, (5, 0)) is None  # a wall cell
    assert [turn_of(a, 15.0) for a in (0, 30, 90, 180, 270, 330, 40, 50, 140)] == [
        "forward", "forward", "left", "back", "right", "forward", None, None, None]  # fmt: skip


def test_no_floor_no_routes():
    meta = scene(OBJECTS)
    meta.floor_grid = None
    assert route_planning.generate(meta, np.random.default_rng(0), CFG) == []
    with pytest.raises(ValueError, match="not free"):
        PathTree(np.zeros((3, 3), dtype=bool), [(1, 1)])
