"""VSI-Bench aggregation: per-task, micro and macro scores, in percent (0-100) like the paper.

`aggregate(rows)` takes dicts with `question_type` and `score` (0..1: 1/0 for an option letter,
MRA for a number) and returns

    {"per_task": {task: percent}, "micro": percent, "macro": percent,
     "levels": {question_type: percent}, "counts": {question_type: rows}, "num_rows": n}

- `per_task` is keyed by the eight VSI-Bench tasks (`TASKS`, the paper's column order) that have
  rows; the three relative-direction levels become one `object_rel_direction` task whose score is
  the unweighted mean of the levels' means, as VSI-Bench's own scorer does.
- `micro` is the per-question mean over all rows (how the Spatial-MLLM paper's 48.4 is computed).
- `macro` is the mean of `per_task` (VSI-Bench's "overall"; GPT-4o's 34.0, Gemini's 45.4).
- `levels` and `counts` keep every question_type unmerged, for the report.

A question_type outside VSI-Bench's list is kept as a task of its own (after the known ones),
except the camera-motion types, which are scored apart (`camera_motion`).
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Mapping

from data_gen.schema import CAMERA_MOTION_TYPES

REL_DIRECTION = "object_rel_direction"
REL_DIRECTION_LEVELS = (
    "object_rel_direction_easy",
    "object_rel_direction_medium",
    "object_rel_direction_hard",
)

# The paper's Table 1 column order.
TASKS: tuple[str, ...] = (
    "object_counting",
    "object_abs_distance",
    "object_size_estimation",
    "room_size_estimation",
    "object_rel_distance",
    REL_DIRECTION,
    "route_planning",
    "obj_appearance_order",
)
TASK_LABELS: dict[str, str] = {
    "object_counting": "count",
    "object_abs_distance": "abs dist",
    "object_size_estimation": "obj size",
    "room_size_estimation": "room size",
    "object_rel_distance": "rel dist",
    REL_DIRECTION: "rel dir",
    "route_planning": "route",
    "obj_appearance_order": "appearance",
}

# Questions per question_type in VSI-Bench (5,130 in all).
VSI_BENCH_COUNTS: dict[str, int] = {
    "object_counting": 565,
    "object_abs_distance": 834,
    "object_size_estimation": 953,
    "room_size_estimation": 288,
    "object_rel_distance": 710,
    "object_rel_direction_easy": 217,
    "object_rel_direction_medium": 378,
    "object_rel_direction_hard": 373,
    "route_planning": 194,
    "obj_appearance_order": 618,
}


def _row(scores: tuple[float, ...], average: float, kind: str) -> dict:
    return {"per_task": dict(zip(TASKS, scores, strict=True)), "average": average, "average_kind": kind}


# Spatial-MLLM paper, Table 1 (VSI-Bench, 16 frames), percent. `average_kind` says which mean the
# printed average is: the one of micro (VSI_BENCH_COUNTS-weighted) or macro that the per-task
# numbers reproduce to 0.1 (the Qwen2.5-VL rows and Spatial-MLLM are micro, the others macro).
PAPER_TABLE: dict[str, dict] = {
    "GPT-4o": _row((46.2, 5.3, 43.8, 38.2, 37.0, 41.3, 31.5, 28.5), 34.0, "macro"),
    "Gemini-1.5 Pro": _row((56.2, 30.9, 64.1, 43.6, 51.3, 46.3, 36.0, 34.6), 45.4, "macro"),
    "LLaVA-Video-72B": _row((48.9, 22.8, 57.4, 35.3, 42.4, 36.7, 35.0, 48.6), 40.9, "macro"),
    "Qwen2.5-VL-3B": _row((24.3, 24.7, 31.7, 22.6, 38.3, 41.6, 26.3, 21.2), 30.6, "micro"),
    "Qwen2.5-VL-7B": _row((40.9, 14.8, 43.4, 10.7, 38.6, 38.5, 33.0, 29.8), 33.0, "micro"),
    "Qwen2.5-VL-72B": _row((25.1, 29.3, 57.9, 29.4, 41.7, 37.0, 23.2, 29.0), 37.0, "micro"),
    "Spatial-MLLM-4B": _row((65.3, 34.8, 63.1, 45.1, 41.3, 46.2, 33.5, 46.3), 48.4, "micro"),
}


def task_of(question_type: str) -> str:
    """The VSI-Bench task a question_type counts towards (the three direction levels -> one)."""
    return REL_DIRECTION if question_type in REL_DIRECTION_LEVELS else question_type


def _mean(values: list[float]) -> float:
    return math.fsum(values) / len(values)


def aggregate(rows: Iterable[Mapping]) -> dict:
    """Per-task, micro and macro scores in percent; see the module docstring.

    Rows of the camera-motion types (`data_gen.schema.CAMERA_MOTION_TYPES`, beyond VSI-Bench) are
    kept apart: they are in none of per_task, micro, macro, levels and counts, but in
    `camera_motion` = {"per_task": {question_type: percent}, "mean": their mean, "counts": ...,
    "num_rows": n} (absent without such rows). With only such rows, per_task is empty and micro
    and macro are None.

    Raises ValueError on no rows, a row without `question_type`/`score`, or a score outside
    [0, 1] (a percent passed by mistake must not pass silently)."""
    by_type: dict[str, list[float]] = defaultdict(list)
    for i, row in enumerate(rows):
        try:
            qtype, score = str(row["question_type"]), float(row["score"])
        except (KeyError, TypeError, ValueError) as e:
            raise ValueError(f"row {i}: needs question_type and a numeric score ({e!r})") from None
        if not 0.0 <= score <= 1.0:
            raise ValueError(f"row {i} ({qtype}): score {score} is outside [0, 1]")
        by_type[qtype].append(score)
    if not by_type:
        raise ValueError("no rows to aggregate")
    camera = {q: by_type.pop(q) for q in CAMERA_MOTION_TYPES if q in by_type}

    levels = {qtype: 100.0 * _mean(scores) for qtype, scores in by_type.items()}
    by_task: dict[str, list[float]] = defaultdict(list)  # task -> its question_types' means
    for qtype, value in levels.items():
        by_task[task_of(qtype)].append(value)
    order = [t for t in TASKS if t in by_task] + sorted(t for t in by_task if t not in TASKS)
    per_task = {task: _mean(by_task[task]) for task in order}
    every = [s for scores in by_type.values() for s in scores]
    out = {
        "per_task": per_task,
        "micro": 100.0 * _mean(every) if every else None,
        "macro": _mean(list(per_task.values())) if per_task else None,
        "levels": {q: levels[q] for q in sorted(levels, key=_type_order)},
        "counts": {q: len(by_type[q]) for q in sorted(by_type, key=_type_order)},
        "num_rows": len(every),
    }
    if camera:
        scores = {q: 100.0 * _mean(v) for q, v in camera.items()}
        out["camera_motion"] = {"per_task": scores, "mean": _mean(list(scores.values())),
                                "counts": {q: len(v) for q, v in camera.items()},
                                "num_rows": sum(len(v) for v in camera.values())}  # fmt: skip
    return out


def _type_order(qtype: str) -> tuple[int, str]:
    task = task_of(qtype)
    return (TASKS.index(task) if task in TASKS else len(TASKS), qtype)
