"""camera_obj_abs_distance: how far the camera was from a single-instance object at one of the
frames shown, to the object's closest point (its solid box), metres to 0.1. The object's category
must have been seen by then; answers under abs_distance_min are skipped."""

from __future__ import annotations

from typing import Any

import numpy as np

from data_gen.qa.config import QAConfig
from data_gen.qa.metadata import SceneMetadata
from data_gen.qa.questions._camera import FRAMES_NOTE, point_box_distance, seen_by, shown_frames
from data_gen.qa.questions._common import numeric, r4, record, shuffled_space, take_valid

QUESTION_TYPE = "camera_obj_abs_distance"
TEMPLATE = (
    "At frame {i}, how far was the camera from the {o}, measuring to the closest point of the {o} (in meters)?\n"
    + FRAMES_NOTE
)


def generate(meta: SceneMetadata, rng: np.random.Generator, config: QAConfig) -> list[dict[str, Any]]:
    frames, objects = shown_frames(meta), meta.unique_objects()
    space = [(f, o) for f in range(len(frames)) for o in range(len(objects))]

    def build(candidate: tuple[int, int]) -> dict[str, Any] | None:
        frame, obj = frames[candidate[0]], objects[candidate[1]]
        if not seen_by(meta, obj, frame):
            return None
        d = point_box_distance(frame.position, obj.box)
        answer = numeric(d, 1)
        if float(answer) < config.abs_distance_min:
            return None
        rationale = (
            f"At frame {frame.number} the camera was {d:.2f} m from the closest point of the {obj.category}'s "
            f"bounding box, which rounds to {answer} m."
        )
        return record(QUESTION_TYPE, TEMPLATE.format(i=frame.number, o=obj.category), answer, rationale,
                      params={"frame": frame.frame, "object_id": obj.object_id},
                      details={"number": frame.number, "object": obj.category, "distance_m": r4(d)})  # fmt: skip

    candidates = shuffled_space(rng, len(space), lambda: space, lambda g: space[int(g.integers(len(space)))],
                                config.max_enumerated)  # fmt: skip
    return take_valid(candidates, build, config.cap(QUESTION_TYPE))
