"""camera_movement_direction: which way the camera moved between two of the frames shown, relative
to its heading at the first: the angle in the floor plane from that heading to the displacement,
counter-clockwise, binned [315, 45) forward, [45, 135) left, [135, 225) backward, [225, 315)
right. Rejected: a floor displacement under heading_min_distance, an angle within
direction_angle_margin of a bin edge, or a camera with no clear heading (looking up or down)."""

from __future__ import annotations

from typing import Any

import numpy as np

from data_gen.qa.config import QAConfig
from data_gen.qa.metadata import SceneMetadata
from data_gen.qa.questions._camera import FRAMES_NOTE, ccw_angle, shown_frames
from data_gen.qa.questions._common import LetterRotation, r4, random_tuples, record, take_valid

QUESTION_TYPE = "camera_movement_direction"
TEMPLATE = (
    "Between frame {i} and frame {j}, did the camera move mainly forward, backward, left, or right, relative to "
    "the direction it was facing at frame {i}?\n" + FRAMES_NOTE
)
ANSWERS = ("forward", "backward", "left", "right")
EDGES = (45.0, 135.0, 225.0, 315.0)


def direction(angle: float) -> str:
    """The answer for a counter-clockwise angle from the heading, degrees in [0, 360)."""
    if angle < 45 or angle >= 315:
        return "forward"
    return "left" if angle < 135 else "backward" if angle < 225 else "right"


def generate(meta: SceneMetadata, rng: np.random.Generator, config: QAConfig) -> list[dict[str, Any]]:
    frames = shown_frames(meta)
    letters = LetterRotation(rng, len(ANSWERS))

    def build(pair: tuple[int, int]) -> dict[str, Any] | None:
        a, b = frames[pair[0]], frames[pair[1]]
        heading = a.heading()
        moved = (b.position - a.position)[:2]
        distance = float(np.hypot(*moved))
        if heading is None or distance < config.heading_min_distance:
            return None
        angle = ccw_angle(heading, moved)
        edge = min(abs((angle - e + 180.0) % 360.0 - 180.0) for e in EDGES)
        if edge < config.direction_angle_margin:
            return None
        answer = direction(angle)
        options, letter = letters.options(rng, ANSWERS, answer)
        rationale = (
            f"From frame {a.number} to frame {b.number} the camera moved {distance:.2f} m across the floor, "
            f"{angle:.1f} degrees counter-clockwise from where it faced at frame {a.number}: {answer}."
        )
        return record(QUESTION_TYPE, TEMPLATE.format(i=a.number, j=b.number), letter, rationale,
                      params={"frames": [a.frame, b.frame]},
                      details={"numbers": [a.number, b.number], "angle_deg": r4(angle), "floor_distance_m": r4(distance)},
                      options=options)  # fmt: skip

    pairs = random_tuples(rng, len(frames), 2, ordered=False, max_enumerated=config.max_enumerated)
    return take_valid(pairs, build, config.cap(QUESTION_TYPE))
