"""object_rel_distance: which of four categories is closest to a single-instance anchor.

A candidate category's distance is that of its nearest instance. Rejected (VSI-Bench): the
nearest candidate nearer the anchor than rel_distance_margin, or two candidates whose distances
differ by the margin or less (the large-room margin above large_room_area), so the answer is never
decided by annotation noise.
"""

from __future__ import annotations

import itertools
from collections import Counter
from typing import Any

import numpy as np

from data_gen.qa.config import QAConfig
from data_gen.qa.metadata import SceneMetadata
from data_gen.qa.questions._common import (
    LetterRotation,
    lettered,
    pooled_combinations,
    r4,
    record,
    take_valid,
)

QUESTION_TYPE = "object_rel_distance"
TEMPLATE = (
    "Measuring from the closest point of each object, which of these objects ({a}, {b}, {c}, {d}) "
    "is the closest to the {anchor}?"
)
NUM_CHOICES = 4


def rejection(distances: list[float], margin: float, gap: float) -> tuple[str, str] | None:
    """(rule, why) when candidate distances (metres) make an ambiguous question, else None. rule:
    "nearest" (the nearest candidate nearer the anchor than `margin`) or "gap" (two candidates
    whose distances differ by `gap` or less)."""
    ds = sorted(distances)
    if ds[0] < margin:
        return "nearest", f"nearest candidate {ds[0]:.2f} m from the anchor (< {margin} m)"
    close = [b - a for a, b in itertools.pairwise(ds) if b - a <= gap]
    if close:
        return "gap", f"two candidates {min(close):.2f} m apart in distance (<= {gap} m)"
    return None


def generate(
    meta: SceneMetadata, rng: np.random.Generator, config: QAConfig, tally: Counter | None = None
) -> list[dict[str, Any]]:
    """`tally`, when given, counts candidates, asked questions and each rule's rejections."""
    tally = Counter() if tally is None else tally
    anchors = meta.unique_objects()
    counts = meta.counts  # VSI-Bench draws the choices from object_counts; distances need boxes
    categories = sorted(c for c in meta.by_category() if c in counts)
    large = meta.room_area > config.large_room_area
    gap = config.rel_distance_margin_large_room if large else config.rel_distance_margin
    rule_key = {"nearest": "rel_distance_margin (nearest candidate)",
                "gap": f"{'rel_distance_margin_large_room' if large else 'rel_distance_margin'} (two candidates)"}  # fmt: skip
    # Candidate space: (anchor index, sorted 4 other category indices).
    others = [[j for j, c in enumerate(categories) if c != a.category] for a in anchors]

    letters = LetterRotation(rng, NUM_CHOICES)

    def build(candidate: tuple) -> dict[str, Any] | None:
        i, combo = candidate
        if len(combo) < NUM_CHOICES:
            return None
        anchor = anchors[i]
        names = [categories[j] for j in combo]
        nearest = {c: meta.category_distance(anchor, c) for c in names}
        distances = [nearest[c][0] for c in names]
        tally["candidates"] += 1
        rejected = rejection(distances, config.rel_distance_margin, gap)
        if rejected is not None:
            tally[rule_key[rejected[0]]] += 1
            return None
        tally["asked"] += 1
        closest = min(names, key=lambda c: nearest[c][0])
        order = letters.order(rng, names, closest)  # the question lists them as the options do
        listing = ", ".join(f"{c} {nearest[c][0]:.2f} m" for c in order)
        rationale = (
            f"Closest-point distances from the {anchor.category}: {listing}. The {closest} is the closest."
        )
        return record(
            QUESTION_TYPE,
            TEMPLATE.format(a=order[0], b=order[1], c=order[2], d=order[3], anchor=anchor.category),
            "ABCD"[order.index(closest)],
            rationale,
            params={"anchor": anchor.object_id, "categories": sorted(names)},
            details={
                "anchor_category": anchor.category,
                "distances_m": {c: r4(nearest[c][0]) for c in order},
                "nearest_object_ids": {c: nearest[c][1].object_id for c in order},
            },
            options=lettered(order),
        )

    candidates = pooled_combinations(rng, others, NUM_CHOICES, config.max_enumerated)
    return take_valid(candidates, build, config.cap(QUESTION_TYPE))
