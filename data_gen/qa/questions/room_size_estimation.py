"""room_size_estimation: floor area (alpha shape of floor points), square metres to 0.1."""

from __future__ import annotations

from typing import Any

import numpy as np

from data_gen.qa.config import QAConfig
from data_gen.qa.metadata import SceneMetadata
from data_gen.qa.questions._common import numeric, r4, record

QUESTION_TYPE = "room_size_estimation"
# VSI-Bench's string: a space before the line break.
TEMPLATE = (
    "What is the size of this room (in square meters)? \n"
    "If multiple rooms are shown, estimate the size of the combined space."
)


def generate(meta: SceneMetadata, rng: np.random.Generator, config: QAConfig) -> list[dict[str, Any]]:
    if config.cap(QUESTION_TYPE) == 0 or meta.room_area <= 0:  # -1 (all) is the one question
        return []
    answer = numeric(meta.room_area, 1)
    cx, cy, _ = meta.room_center
    rationale = (
        f"The floor seen in the scan covers {meta.room_area:.2f} square meters (alpha shape of the floor "
        f"points), centred near ({cx:.2f}, {cy:.2f}); rounded, {answer} square meters."
    )
    return [
        record(
            QUESTION_TYPE,
            TEMPLATE,
            answer,
            rationale,
            params={},
            details={
                "area_m2": r4(meta.room_area),
                "center": [r4(v) for v in meta.room_center],
                "alpha": config.alpha,
            },
        )
    ]
