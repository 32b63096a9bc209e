"""object_abs_distance: closest-point distance between two single-instance objects, metres to 0.1."""

from __future__ import annotations

from collections import Counter
from typing import Any

import numpy as np

from data_gen.qa.config import QAConfig
from data_gen.qa.metadata import SceneMetadata
from data_gen.qa.questions._common import numeric, r4, random_tuples, record, take_valid

QUESTION_TYPE = "object_abs_distance"
TEMPLATE = (
    "Measuring from the closest point of each object, what is the distance between the {o1} and the {o2} "
    "(in meters)?"
)


def generate(
    meta: SceneMetadata, rng: np.random.Generator, config: QAConfig, tally: Counter | None = None
) -> list[dict[str, Any]]:
    """`tally`, when given, counts candidates, asked questions and each rule's rejections."""
    tally = Counter() if tally is None else tally
    objects = meta.unique_objects()

    def build(pair: tuple[int, int]) -> dict[str, Any] | None:
        a, b = objects[pair[0]], objects[pair[1]]
        d = meta.distance(a, b)
        answer = numeric(d, 1)
        tally["candidates"] += 1
        if float(answer) < config.abs_distance_min:  # VSI-Bench filters the rounded answer
            tally["abs_distance_min"] += 1
            return None
        tally["asked"] += 1
        if rng.random() < 0.5:  # which object is named first carries no information
            a, b = b, a
        rationale = (
            f"The closest points of the {a.category} and the {b.category} are {d:.2f} m apart "
            f"(bounding boxes), which rounds to {answer} m."
        )
        return record(
            QUESTION_TYPE,
            TEMPLATE.format(o1=a.category, o2=b.category),
            answer,
            rationale,
            params={"object_ids": sorted([a.object_id, b.object_id])},
            details={"objects": [a.category, b.category], "distance_m": r4(d)},
        )

    pairs = random_tuples(rng, len(objects), 2, ordered=False, max_enumerated=config.max_enumerated)
    return take_valid(pairs, build, config.cap(QUESTION_TYPE))
