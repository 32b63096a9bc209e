"""camera_obj_rel_distance: which of four categories was closest to the camera at one of the
frames shown. A category's distance is that of its nearest instance (camera position to the
instance's solid box); all four must have been seen by then. Rejected as object_rel_distance
rejects, with camera_rel_distance_margin: the nearest nearer the camera than the margin, or two
distances that differ by the margin or less."""

from __future__ import annotations

from typing import Any

import numpy as np

from data_gen.qa.config import QAConfig
from data_gen.qa.metadata import SceneMetadata
from data_gen.qa.questions._camera import FRAMES_NOTE, point_box_distance, seen_by, shown_frames
from data_gen.qa.questions._common import (
    LetterRotation,
    lettered,
    pooled_combinations,
    r4,
    record,
    take_valid,
)
from data_gen.qa.questions.object_rel_distance import NUM_CHOICES, rejection

QUESTION_TYPE = "camera_obj_rel_distance"
TEMPLATE = "At frame {i}, which of these objects ({a}, {b}, {c}, {d}) was the closest to the camera?\n" + FRAMES_NOTE


def generate(meta: SceneMetadata, rng: np.random.Generator, config: QAConfig) -> list[dict[str, Any]]:
    frames = shown_frames(meta)
    by_category = meta.by_category()
    categories = sorted(by_category)
    # Per frame, the categories seen by then; the candidates are (frame, 4 of them).
    seen = [[j for j, c in enumerate(categories) if seen_by(meta, by_category[c][0], f)] for f in frames]

    letters = LetterRotation(rng, NUM_CHOICES)

    def build(candidate: tuple) -> dict[str, Any] | None:
        k, combo = candidate
        if len(combo) < NUM_CHOICES:
            return None
        frame, names = frames[k], [categories[j] for j in combo]
        distance = {c: min(point_box_distance(frame.position, o.box) for o in by_category[c]) for c in names}
        if rejection(list(distance.values()), config.camera_rel_distance_margin, config.camera_rel_distance_margin) is not None:
            return None
        closest = min(names, key=distance.__getitem__)
        order = letters.order(rng, names, closest)
        listing = ", ".join(f"{c} {distance[c]:.2f} m" for c in order)
        rationale = f"Distances from the camera at frame {frame.number}: {listing}. The {closest} is the closest."
        question = TEMPLATE.format(i=frame.number, **dict(zip("abcd", order, strict=True)))
        return record(QUESTION_TYPE, question, lettered(order)[order.index(closest)][0], rationale,
                      params={"frame": frame.frame, "categories": sorted(names)},
                      details={"number": frame.number, "distances_m": {c: r4(distance[c]) for c in order}},
                      options=lettered(order))  # fmt: skip

    candidates = pooled_combinations(rng, seen, NUM_CHOICES, config.max_enumerated)
    return take_valid(candidates, build, config.cap(QUESTION_TYPE))
