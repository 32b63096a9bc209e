"""Relative-direction geometry and generation shared by the easy, medium and hard question types.

Angle = counter-clockwise angle in the floor plane from (pos -> ori) to (pos -> query), degrees in
[0, 360). Bins (VSI-Bench): hard [0,90) front-left, [90,180) back-left, [180,270) back-right,
[270,360) front-right; medium [0,135) left, [135,225) back, [225,360) right; easy = medium with
the back bin discarded. Rejected: an angle near a bin edge (hard, as VSI-Bench: only within
`margin` *below* an edge, `90 - (a mod 90) < margin`; medium and easy: within `margin` on either
side), or a query with more than `max_off_corners` of its 8 box corners in another bin than its
centre (a big object straddling two bins has no single answer).
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import numpy as np

from data_gen.qa.config import QAConfig
from data_gen.qa.metadata import SceneMetadata
from data_gen.qa.obb import Box3D
from data_gen.qa.questions._common import (
    LETTERS,
    LetterRotation,
    lettered,
    r4,
    random_tuples,
    record,
    take_balanced,
    take_valid,
)

Bin = tuple[float, float, str | None]  # [start, end) degrees, answer (None = discarded)
BINS: dict[str, tuple[Bin, ...]] = {
    "hard": (
        (0, 90, "front-left"),
        (90, 180, "back-left"),
        (180, 270, "back-right"),
        (270, 360, "front-right"),
    ),
    "medium": ((0, 135, "left"), (135, 225, "back"), (225, 360, "right")),
    "easy": ((0, 135, "left"), (135, 225, None), (225, 360, "right")),
}
ANSWERS = {
    "hard": ("front-left", "front-right", "back-left", "back-right"),
    "medium": ("left", "right", "back"),
    "easy": ("left", "right"),
}
_PREFIX = "If I am standing by the {pos} and facing the {ori}, "
TEMPLATES = {
    "hard": _PREFIX + "is the {query} to my front-left, front-right, back-left, or back-right?\n"
    "The directions refer to the quadrants of a Cartesian plane (if I am standing at the origin and facing "
    "along the positive y-axis).",
    "medium": _PREFIX + "is the {query} to my left, right, or back?\n"
    "An object is to my back if I would have to turn at least 135 degrees in order to face it.",
    "easy": _PREFIX + "is the {query} to the left or the right of the {ori}?",
}


def ccw_angles(pos: np.ndarray, ori: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """Counter-clockwise angles (degrees, [0, 360)) from pos->ori to pos->target, targets [N, 2]."""
    f = np.asarray(ori, dtype=np.float64)[:2] - np.asarray(pos, dtype=np.float64)[:2]
    t = np.asarray(targets, dtype=np.float64).reshape(-1, 2) - np.asarray(pos, dtype=np.float64)[:2]
    cross = f[0] * t[:, 1] - f[1] * t[:, 0]
    dot = f[0] * t[:, 0] + f[1] * t[:, 1]
    return np.mod(np.degrees(np.arctan2(cross, dot)), 360.0)


def bin_of(level: str, angle: float) -> tuple[int, str | None]:
    """(bin index, answer) for an angle in [0, 360)."""
    for k, (lo, hi, label) in enumerate(BINS[level]):
        if lo <= angle < hi:
            return k, label
    return 0, BINS[level][0][2]  # 360 after rounding wraps to the first bin


def edge_distance(level: str, angle: float) -> float:
    """Degrees from the angle to the nearest bin edge (edges wrap at 360)."""
    edges = np.array([lo for lo, _, _ in BINS[level]], dtype=np.float64)
    diff = np.abs(np.mod(angle - edges + 180.0, 360.0) - 180.0)
    return float(diff.min())


def classify(
    level: str,
    pos_xy: np.ndarray,
    ori_xy: np.ndarray,
    query: Box3D,
    margin: float,
    max_off_corners: int,
) -> tuple[str | None, float, str]:
    """(answer or None, centre angle, why) for a query box seen from pos facing ori. A rejection's
    why starts with the rule that rejects it: `<config key or bin>: <reason>`."""
    angle = float(ccw_angles(pos_xy, ori_xy, np.asarray(query.center[:2])[None])[0])
    k, label = bin_of(level, angle)
    lo, hi, _ = BINS[level][k]
    if label is None:
        return None, angle, f"back bin (easy asks left or right): {angle:.1f} deg is in [{lo}, {hi})"
    gap = hi - angle if level == "hard" else edge_distance(level, angle)
    if gap < margin:
        where = "below the next bin edge" if level == "hard" else "from a bin edge"
        return None, angle, f"direction_angle_margin: {angle:.1f} deg is {gap:.1f} deg {where} (< {margin})"
    corner_angles = ccw_angles(pos_xy, ori_xy, query.corners()[:, :2])  # [8]
    off = sum(bin_of(level, float(a))[0] != k for a in corner_angles)
    if off > max_off_corners:
        return None, angle, f"direction_max_off_corners: {off} of 8 box corners lie in another bin (> {max_off_corners})"
    return label, angle, f"{angle:.1f} deg is in [{lo}, {hi}): {label}"


def generate_direction(
    meta: SceneMetadata, rng: np.random.Generator, config: QAConfig, level: str, tally: Counter | None = None
) -> list[dict[str, Any]]:
    """`tally`, when given, counts candidates, asked questions and each rule's rejections."""
    tally = Counter() if tally is None else tally
    question_type = f"object_rel_direction_{level}"
    objects = meta.unique_objects()
    lo, hi = config.direction_min_distance, config.direction_max_distance
    letters = LetterRotation(rng, len(ANSWERS[level]))

    def build(triple: tuple[int, int, int]) -> dict[str, Any] | None:
        pos, ori, query = (objects[i] for i in triple)
        tally["candidates"] += 1
        distances = [meta.distance(a, b) for a, b in ((pos, ori), (pos, query), (ori, query))]
        if min(distances) < lo or max(distances) > hi:
            tally["direction_min_distance" if min(distances) < lo else "direction_max_distance"] += 1
            return None
        pos_xy, ori_xy = np.asarray(pos.box.center[:2]), np.asarray(ori.box.center[:2])
        answer, angle, why = classify(
            level, pos_xy, ori_xy, query.box, config.direction_angle_margin, config.direction_max_off_corners
        )
        if answer is None:
            tally[why.split(":", 1)[0]] += 1
            return None
        tally["asked"] += 1
        bin_lo, bin_hi, _ = BINS[level][bin_of(level, angle)[0]]
        if level == "easy":  # VSI-Bench keeps "A. left", "B. right" in this order
            options, letter = lettered(ANSWERS["easy"]), LETTERS[ANSWERS["easy"].index(answer)]
        else:
            options, letter = letters.options(rng, ANSWERS[level], answer)
        rationale = (
            f"Standing by the {pos.category} at ({pos_xy[0]:.2f}, {pos_xy[1]:.2f}) and facing the {ori.category} "
            f"at ({ori_xy[0]:.2f}, {ori_xy[1]:.2f}), the {query.category} at ({query.box.center[0]:.2f}, "
            f"{query.box.center[1]:.2f}) is {angle:.1f} degrees counter-clockwise from straight ahead, "
            f"which falls in [{bin_lo}, {bin_hi}) degrees: {answer}."
        )
        return record(
            question_type,
            TEMPLATES[level].format(pos=pos.category, ori=ori.category, query=query.category),
            letter,
            rationale,
            params={"pos": pos.object_id, "ori": ori.object_id, "query": query.object_id},
            details={
                "categories": [pos.category, ori.category, query.category],
                "angle_deg": r4(angle),
                "answer": answer,
            },
            options=options,
        )

    triples = random_tuples(rng, len(objects), 3, ordered=True, max_enumerated=config.max_enumerated)
    take = take_balanced if level == "easy" else take_valid  # easy's options have a fixed order
    return take(triples, build, config.cap(question_type))
