"""object_size_estimation: longest side of a single-instance object's box, in centimetres."""

from __future__ import annotations

from typing import Any

import numpy as np

from data_gen.qa.config import QAConfig
from data_gen.qa.metadata import ObjectMeta, SceneMetadata
from data_gen.qa.questions._common import numeric, r4, record, take_valid

QUESTION_TYPE = "object_size_estimation"
TEMPLATE = (
    "What is the length of the longest dimension (length, width, or height) of the {category}, "
    "measured in centimeters?"
)


def generate(meta: SceneMetadata, rng: np.random.Generator, config: QAConfig) -> list[dict[str, Any]]:
    objects = meta.unique_objects()

    def build(obj: ObjectMeta) -> dict[str, Any] | None:
        sides = sorted((s * 100 for s in obj.box.extents), reverse=True)  # cm
        if sides[0] <= 0:
            return None
        answer = numeric(sides[0], 0)
        rationale = (
            f"The {obj.category}'s bounding box measures {sides[0]:.0f} x {sides[1]:.0f} x {sides[2]:.0f} cm; "
            f"its longest dimension is {answer} cm."
        )
        return record(
            QUESTION_TYPE,
            TEMPLATE.format(category=obj.category),
            answer,
            rationale,
            params={"object_id": obj.object_id},
            details={"category": obj.category, "size_m": [r4(s) for s in obj.box.extents]},
        )

    order = (objects[i] for i in rng.permutation(len(objects)))
    return take_valid(order, build, config.cap(QUESTION_TYPE))
