"""obj_obj_rel_position: from the camera's point of view at one of the frames shown, is one
single-instance object to the left or the right of another. Each object's direction is the
horizontal angle of its box centre off the camera's optical axis (atan(x / z) in camera
coordinates, as the image's columns order them); the answer is left when the first's angle is
smaller. Both must have been seen by then and their centres must project inside the colour image
at that frame (in front of the camera, beyond near_plane; occlusion is not checked); rejected when
the two angles are within direction_angle_margin of each other. Options are
`A. left`, `B. right`, as the easy relative-direction questions write them."""

from __future__ import annotations

from typing import Any

import numpy as np

from data_gen.qa.config import QAConfig
from data_gen.qa.metadata import SceneMetadata
from data_gen.qa.questions._camera import FRAMES_NOTE, in_view, seen_by, shown_frames
from data_gen.qa.questions._common import LETTERS, lettered, r4, record, shuffled_space, take_balanced

QUESTION_TYPE = "obj_obj_rel_position"
TEMPLATE = (
    "At frame {i}, from the camera's point of view, is the {a} to the left or the right of the {b}?\n" + FRAMES_NOTE
)
ANSWERS = ("left", "right")


def generate(meta: SceneMetadata, rng: np.random.Generator, config: QAConfig) -> list[dict[str, Any]]:
    if not meta.shown_camera:  # no camera model: nothing can be said to be in view
        return []
    frames, objects = shown_frames(meta), meta.unique_objects()
    n = len(objects)
    space = [(f, a, b) for f in range(len(frames)) for a in range(n) for b in range(n) if a != b]

    def build(candidate: tuple[int, int, int]) -> dict[str, Any] | None:
        frame, a, b = frames[candidate[0]], objects[candidate[1]], objects[candidate[2]]
        if not (seen_by(meta, a, frame) and seen_by(meta, b, frame)):
            return None
        cam = frame.to_camera(np.array([a.box.center, b.box.center]))  # [2, 3]
        if not in_view(meta, cam, config.near_plane).all():
            return None
        angles = np.degrees(np.arctan2(cam[:, 0], cam[:, 2]))
        if abs(angles[0] - angles[1]) < config.direction_angle_margin:
            return None
        answer = "left" if angles[0] < angles[1] else "right"
        rationale = (
            f"At frame {frame.number} the {a.category} is {angles[0]:.1f} degrees and the {b.category} "
            f"{angles[1]:.1f} degrees to the right of the camera's axis (negative: to its left), so the "
            f"{a.category} is to the {answer} of the {b.category}."
        )
        return record(QUESTION_TYPE, TEMPLATE.format(i=frame.number, a=a.category, b=b.category),
                      LETTERS[ANSWERS.index(answer)], rationale,
                      params={"frame": frame.frame, "object_ids": [a.object_id, b.object_id]},
                      details={"number": frame.number, "angles_deg": [r4(x) for x in angles]},
                      options=lettered(ANSWERS))  # fmt: skip

    candidates = shuffled_space(rng, len(space), lambda: space, lambda g: space[int(g.integers(len(space)))],
                                config.max_enumerated)  # fmt: skip
    return take_balanced(candidates, build, config.cap(QUESTION_TYPE))
