"""route_planning: the turns of a route from one object to another, in VSI-Bench's template (whose
own routes are human-written; ours are planned).

Free space is the floor grid minus standing objects, both kept `route_robot_radius` away
(`floor_grid.free_space`). A robot stands at the free cell nearest the start object (within
`route_reach`), faces a third object, and takes the shortest path to the free cell nearest the
destination (`route.PathTree`), pulled straight into legs (`route.straightened`). Before each
leg it turns (left, back or right, the `[please fill in]`s) unless the leg is straight ahead; a bend
of less than 45 degrees between legs joins them into one. Each leg is "Go forward until the
{landmark}": the object nearest the leg's end (within `route_landmark_distance`, a category with one
instance, the next-nearest object `route_landmark_margin` farther, never the start or facing
object), the destination for the last. Rejected: a turn within `route_turn_margin` degrees of a bin
edge, a leg end without such a landmark, no turn to fill in, or more than `route_max_turns`.
Options are the turn sequence and three others of the same length that change turns (the two
others when there is one turn).
"""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np

from data_gen.qa.config import QAConfig
from data_gen.qa.floor_grid import footprint, free_space, polygon_distance
from data_gen.qa.metadata import ObjectMeta, SceneMetadata
from data_gen.qa.questions._common import LetterRotation, r4, random_tuples, record, take_valid
from data_gen.qa.route import PathTree, ccw_degrees, straightened, turn_of

QUESTION_TYPE = "route_planning"
TEMPLATE = (
    "You are a robot beginning at the {start} and facing the {facing}. You want to navigate to the {dest}. "
    "You will perform the following actions (Note: for each [please fill in], choose either 'turn back,' "
    "'turn left,' or 'turn right.'): {actions}. You have reached the final destination."
)
FILL_IN = "[please fill in]"
TURN_WORDS = {"left": "Turn Left", "back": "Turn Back", "right": "Turn Right"}
NUM_OPTIONS = 4


class Planner:
    """One scene's free space, where each object is stood at, and the shortest paths from each,
    computed once for all its routes."""

    def __init__(self, meta: SceneMetadata, objects: list[ObjectMeta], config: QAConfig):
        grid = meta.floor_grid
        standing = [o.box for o in meta.objects if o.box.bounds()[0][2] <= meta.floor_z + config.footprint_max_height]
        self.grid, self.free = grid, free_space(grid, standing, config.route_robot_radius)
        self.footprints = {o.object_id: footprint(o.box) for o in meta.objects}
        self.config, self.routes = config, {}
        centres = grid.centres().reshape(-1, 2)
        self.stand: dict[int, tuple[int, int]] = {}  # object id -> the free cell nearest it, if within reach
        for o in objects:
            d = np.where(self.free.reshape(-1), polygon_distance(centres, self.footprints[o.object_id]), np.inf)
            k = int(np.argmin(d))
            if d[k] <= config.route_reach:
                self.stand[o.object_id] = tuple(int(v) for v in np.unravel_index(k, self.free.shape))
        self.order = list(self.stand)
        self.tree = PathTree(self.free, [self.stand[i] for i in self.order]) if self.stand else None

    def route(self, start: ObjectMeta, dest: ObjectMeta) -> list[np.ndarray] | None:
        """World (x, y) of the route's turning points, start and end included (once per pair)."""
        key = (start.object_id, dest.object_id)
        if key not in self.routes:
            path = None
            if start.object_id in self.stand and dest.object_id in self.stand:
                path = self.tree.path(self.order.index(start.object_id), self.stand[dest.object_id])
            self.routes[key] = None if path is None else [self.grid.world(c) for c in straightened(self.free, path)]
        return self.routes[key]

    def landmark(self, meta: SceneMetadata, point: np.ndarray, unique: set[int], excluded: set[int]) -> ObjectMeta | None:
        """The object a leg ending at `point` goes forward until, or None when none is clear."""
        ranked = sorted((float(polygon_distance(point[None], self.footprints[o.object_id])[0]), o.object_id)
                        for o in meta.objects)  # fmt: skip
        (d, oid), rest = ranked[0], ranked[1:]
        if d > self.config.route_landmark_distance or oid not in unique or oid in excluded:
            return None
        if rest and rest[0][0] - d < self.config.route_landmark_margin:
            return None
        return meta.object(oid)


def legs_and_turns(points: list[np.ndarray], margin: float) -> list[tuple[np.ndarray, str | None]] | None:
    """[(leg end, turn before the leg)], the first leg's turn None (it depends on where the robot
    faces): a bend of less than 45 degrees joins two legs; None when a turn is ambiguous."""
    legs: list[tuple[np.ndarray, str | None]] = []
    heading, at = None, points[0]
    for end in points[1:]:
        move = end - at
        if np.hypot(*move) < 1e-9:
            continue
        turn = None if heading is None else turn_of(ccw_degrees(heading, move), margin)
        if heading is not None and turn is None:
            return None
        if turn == "forward":
            legs[-1] = (end, legs[-1][1])  # straight on: the same leg, ending further
        else:
            legs.append((end, turn))
        heading, at = move, end
    return legs


def generate(meta: SceneMetadata, rng: np.random.Generator, config: QAConfig) -> list[dict[str, Any]]:
    if meta.floor_grid is None or not meta.floor_grid.cells.any():
        return []
    objects = meta.unique_objects()
    unique = {o.object_id for o in objects}
    planner = Planner(meta, objects, config)
    letters = {n: LetterRotation(rng, n) for n in (3, NUM_OPTIONS)}  # one turn has three sequences
    planned: dict[tuple[int, int], tuple | None] = {}

    def plan(start: ObjectMeta, dest: ObjectMeta) -> tuple | None:
        """(route points, legs, landmarks) from start to dest, whatever the robot faces (cached)."""
        key = (start.object_id, dest.object_id)
        if key not in planned:
            planned[key] = None
            points = planner.route(start, dest)
            legs = legs_and_turns(points, config.route_turn_margin) if points and len(points) > 1 else None
            if legs:
                marks = [planner.landmark(meta, end, unique, {start.object_id, dest.object_id}) for end, _ in legs[:-1]]
                if all(marks):
                    planned[key] = (points, legs, [*marks, dest])
        return planned[key]

    def build(triple: tuple[int, int, int]) -> dict[str, Any] | None:
        start, facing, dest = (objects[i] for i in triple)
        planned_route = plan(start, dest)
        if planned_route is None:
            return None
        points, legs, marks = planned_route
        if facing in marks:  # "facing the X ... go forward until the X" reads as a hint
            return None
        look = np.asarray(facing.box.center[:2]) - points[0]
        if np.hypot(*look) < config.heading_min_distance:
            return None
        first = turn_of(ccw_degrees(look, legs[0][0] - points[0]), config.route_turn_margin)
        if first is None:
            return None
        legs = [(legs[0][0], first), *legs[1:]]
        steps, turns = [], []
        for (_, turn), mark in zip(legs, marks, strict=True):
            if turn != "forward":
                steps.append(FILL_IN)
                turns.append(TURN_WORDS[turn])
            steps.append(f"Go forward until the {mark.category}")
        if not 1 <= len(turns) <= config.route_max_turns:
            return None
        correct = ", ".join(turns)
        others = [", ".join(seq) for seq in itertools.product(TURN_WORDS.values(), repeat=len(turns))]
        others = [s for s in others if s != correct]  # one turn: the other two; else three of them
        picked = [others[i] for i in sorted(rng.choice(len(others), min(len(others), NUM_OPTIONS - 1), replace=False))]
        options, letter = letters[len(picked) + 1].options(rng, [correct, *picked], correct)
        actions = " ".join(f"{i}. {s}" for i, s in enumerate(steps, 1))
        ends = [points[0], *(e for e, _ in legs)]
        length = sum(float(np.hypot(*(b - a))) for a, b in itertools.pairwise(ends))
        route = ", then ".join(f"{'straight on' if t == 'forward' else 'turn ' + t} to the {m.category}"
                               for (_, t), m in zip(legs, marks, strict=True))  # fmt: skip
        rationale = (f"From the {start.category}, facing the {facing.category}, the shortest way to the "
                     f"{dest.category} through free floor ({length:.1f} m): {route}. Turns: {correct}.")  # fmt: skip
        question = TEMPLATE.format(start=start.category, facing=facing.category, dest=dest.category, actions=actions)
        return record(QUESTION_TYPE, question, letter, rationale,
                      params={"object_ids": [start.object_id, facing.object_id, dest.object_id]},
                      details={"turns": turns, "landmarks": [m.category for m in marks], "route_m": r4(length),
                               "points": [[r4(v) for v in p] for p in ends]},
                      options=options)  # fmt: skip

    triples = random_tuples(rng, len(objects), 3, ordered=True, max_enumerated=config.max_enumerated)
    return take_valid(triples, build, config.cap(QUESTION_TYPE))
