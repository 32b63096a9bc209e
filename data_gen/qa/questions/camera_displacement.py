"""camera_displacement: how far the camera moved between two of the frames shown, in a straight
line between its positions, metres to 0.1 (answers under abs_distance_min are skipped, as for
object distances)."""

from __future__ import annotations

from typing import Any

import numpy as np

from data_gen.qa.config import QAConfig
from data_gen.qa.metadata import SceneMetadata
from data_gen.qa.questions._camera import FRAMES_NOTE, shown_frames
from data_gen.qa.questions._common import numeric, r4, random_tuples, record, take_valid

QUESTION_TYPE = "camera_displacement"
TEMPLATE = "How far did the camera move between frame {i} and frame {j}, in a straight line (in meters)?\n" + FRAMES_NOTE


def generate(meta: SceneMetadata, rng: np.random.Generator, config: QAConfig) -> list[dict[str, Any]]:
    frames = shown_frames(meta)

    def build(pair: tuple[int, int]) -> dict[str, Any] | None:
        a, b = frames[pair[0]], frames[pair[1]]  # a is shown first
        d = float(np.linalg.norm(b.position - a.position))
        answer = numeric(d, 1)
        if float(answer) < config.abs_distance_min:
            return None
        pa, pb = a.position, b.position
        rationale = (
            f"The camera was at ({pa[0]:.2f}, {pa[1]:.2f}, {pa[2]:.2f}) at frame {a.number} and at "
            f"({pb[0]:.2f}, {pb[1]:.2f}, {pb[2]:.2f}) at frame {b.number}: {d:.2f} m apart, which rounds to {answer} m."
        )
        return record(QUESTION_TYPE, TEMPLATE.format(i=a.number, j=b.number), answer, rationale,
                      params={"frames": [a.frame, b.frame]},
                      details={"numbers": [a.number, b.number], "displacement_m": r4(d)})  # fmt: skip

    pairs = random_tuples(rng, len(frames), 2, ordered=False, max_enumerated=config.max_enumerated)
    return take_valid(pairs, build, config.cap(QUESTION_TYPE))
