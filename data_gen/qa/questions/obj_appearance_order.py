"""obj_appearance_order: order in which four categories first appear in the video.

First-appearance times come from per-frame visibility (metadata), counted as VSI-Bench counts
them: whole seconds, round(frame / fps). The four must be more than appearance_min_gap_s (1 s)
apart, so the order is unambiguous to a viewer.
"""

from __future__ import annotations

import itertools
from collections import Counter
from typing import Any

import numpy as np

from data_gen.qa.config import QAConfig
from data_gen.qa.metadata import SceneMetadata
from data_gen.qa.questions._common import LetterRotation, random_tuples, record, take_valid

QUESTION_TYPE = "obj_appearance_order"
TEMPLATE = "What will be the first-time appearance order of the following categories in the video: {a}, {b}, {c}, {d}?"
NUM_CATEGORIES = 4
NUM_OPTIONS = 4


def generate(
    meta: SceneMetadata, rng: np.random.Generator, config: QAConfig, tally: Counter | None = None
) -> list[dict[str, Any]]:
    """`tally`, when given, counts candidates, asked questions and each rule's rejections."""
    tally = Counter() if tally is None else tally
    seen = meta.first_appearance  # category -> Appearance, unseen categories absent
    categories = sorted(seen)
    second = {c: round(seen[c].frame / meta.fps) for c in categories}  # whole seconds, as VSI-Bench
    letters = LetterRotation(rng, NUM_OPTIONS)

    def build(combo: tuple[int, ...]) -> dict[str, Any] | None:
        names = [categories[i] for i in combo]
        correct = sorted(names, key=lambda c: second[c])
        times = [second[c] for c in correct]
        tally["candidates"] += 1
        if any(b - a <= config.appearance_min_gap_s for a, b in itertools.pairwise(times)):
            tally["appearance_min_gap_s"] += 1
            return None
        tally["asked"] += 1
        asked = [names[i] for i in rng.permutation(NUM_CATEGORIES)]
        wrong = [p for p in itertools.permutations(correct) if list(p) != correct]
        picks = [", ".join(wrong[i]) for i in rng.choice(len(wrong), NUM_OPTIONS - 1, replace=False)]
        answer = ", ".join(correct)
        options, letter = letters.options(rng, [answer, *picks], answer)
        timeline = ", ".join(f"{c} at {second[c]} s (frame {seen[c].frame})" for c in correct)
        return record(
            QUESTION_TYPE,
            TEMPLATE.format(a=asked[0], b=asked[1], c=asked[2], d=asked[3]),
            letter,
            f"First seen: {timeline}. So the order is {answer}.",
            params={"categories": sorted(names)},
            details={
                "first_time_s": {c: second[c] for c in correct},
                "first_frame": {c: seen[c].frame for c in correct},
                "object_ids": {c: seen[c].object_id for c in correct},
            },
            options=options,
        )

    combos = random_tuples(
        rng, len(categories), NUM_CATEGORIES, ordered=False, max_enumerated=config.max_enumerated
    )
    return take_valid(combos, build, config.cap(QUESTION_TYPE))
