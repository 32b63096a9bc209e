"""object_counting: how many instances of a category (VSI-Bench: only categories with more than one)."""

from __future__ import annotations

from typing import Any

import numpy as np

from data_gen.qa.config import QAConfig
from data_gen.qa.metadata import SceneMetadata
from data_gen.qa.questions._common import record, take_valid

QUESTION_TYPE = "object_counting"
TEMPLATE = "How many {category}(s) are in this room?"


def generate(meta: SceneMetadata, rng: np.random.Generator, config: QAConfig) -> list[dict[str, Any]]:
    counts = meta.counts  # the annotation's own counts where it states them (SceneMetadata.annotated_counts)
    groups = meta.by_category()
    categories = sorted(c for c, n in counts.items() if n > 1)

    def build(category: str) -> dict[str, Any]:
        ids = [o.object_id for o in groups.get(category, [])]
        n = counts[category]
        where = f" (object ids {', '.join(map(str, ids))})" if len(ids) == n else ""
        rationale = f"The scene has {n} instances labelled {category}{where}, so the count is {n}."
        return record(
            QUESTION_TYPE,
            TEMPLATE.format(category=category),
            str(n),
            rationale,
            params={"category": category},
            details={"object_ids": ids, "count": n},
        )

    order = (categories[i] for i in rng.permutation(len(categories)))
    return take_valid(order, build, config.cap(QUESTION_TYPE))
