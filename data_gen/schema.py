"""The QA record: its Arrow schema (DESIGN.md "QA record (Parquet)"), its id, and a validator.

A superset of VSI-Bench's columns, so the benchmark's own file reads through the same code.

Problem types: `numerical` (a number, scored by MRA), `multiple_choice` (an option letter) and
`open_ended` (free-form text: ScanQA's and SQA3D's answers; `meta` may list every accepted answer
under "answers"). Question types: VSI-Bench's, plus `scanqa` and `sqa3d` (open-ended) and `other`
(a question from an annotation file that names no type; any problem type).
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from typing import Any

import pyarrow as pa

VSI_BENCH_TYPES: tuple[str, ...] = (
    "object_counting",
    "object_size_estimation",
    "room_size_estimation",
    "object_abs_distance",
    "object_rel_distance",
    "object_rel_direction_easy",
    "object_rel_direction_medium",
    "object_rel_direction_hard",
    "obj_appearance_order",
    "route_planning",
)
# Beyond VSI-Bench: how the camera moves (after VLM-3R's VSTI-Bench; our templates, docs/dataset.md).
CAMERA_MOTION_TYPES: tuple[str, ...] = (
    "camera_displacement",
    "camera_movement_direction",
    "camera_obj_abs_distance",
    "camera_obj_rel_distance",
    "obj_obj_rel_position",
)
QUESTION_TYPES: tuple[str, ...] = (*VSI_BENCH_TYPES, *CAMERA_MOTION_TYPES, "scanqa", "sqa3d", "other")
NUMERICAL_TYPES = frozenset(
    {"object_counting", "object_size_estimation", "room_size_estimation", "object_abs_distance",
     "camera_displacement", "camera_obj_abs_distance"}
)  # fmt: skip
OPEN_ENDED_TYPES = frozenset({"scanqa", "sqa3d"})
ANY_PROBLEM_TYPES = frozenset({"other"})  # the type of a question whose file names none
PROBLEM_TYPES = ("numerical", "multiple_choice", "open_ended")


def problem_type_of(question_type: str) -> str | None:
    """The problem type a question type implies (None for `other`, which may be any)."""
    if question_type in ANY_PROBLEM_TYPES:
        return None
    if question_type in NUMERICAL_TYPES:
        return "numerical"
    return "open_ended" if question_type in OPEN_ENDED_TYPES else "multiple_choice"

# Column order exactly as in DESIGN.md's table.
RECORD_SCHEMA = pa.schema(
    [
        pa.field("id", pa.string()),
        pa.field("dataset", pa.string()),
        pa.field("scene_name", pa.string()),
        pa.field("question_type", pa.string()),
        pa.field("problem_type", pa.string()),
        pa.field("question", pa.string()),
        pa.field("options", pa.list_(pa.string())),
        pa.field("ground_truth", pa.string()),
        pa.field("rationale", pa.string()),
        pa.field("video", pa.string()),
        pa.field("frame_indices", pa.list_(pa.int32())),
        pa.field("uniform_indices", pa.list_(pa.int32())),
        pa.field("meta", pa.string()),
    ]
)
COLUMNS: tuple[str, ...] = tuple(RECORD_SCHEMA.names)

_OPTION = re.compile(r"^([A-Z])\. (.+)$", re.S)


def canonical_json(value: Any) -> str:
    """Key-sorted, compact JSON: the same value always gives the same bytes."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def record_id(scene_name: str, question_type: str, params: dict[str, Any]) -> str:
    """Stable id: first 16 hex digits of sha256 over canonical JSON of (scene, type, params).

    `params` are what define the question (categories, object ids), not how it was worded or
    shuffled, so the same question gets the same id in every build.
    """
    payload = canonical_json({"scene": scene_name, "type": question_type, "params": params})
    return hashlib.sha256(payload.encode()).hexdigest()[:16]


def records_to_table(records: list[dict[str, Any]]) -> pa.Table:
    """Records (dicts with exactly the schema's columns) -> an Arrow table in schema order."""
    return pa.Table.from_pylist(records, schema=RECORD_SCHEMA)


def _fail(record: dict[str, Any], problem: str) -> None:
    raise ValueError(f"record {record.get('id', '?')} ({record.get('question_type', '?')}): {problem}")


def validate_record(d: dict[str, Any]) -> None:
    """Raise ValueError naming the record and the problem unless `d` is a well-formed QA record."""
    if not isinstance(d, dict):
        raise ValueError(f"record must be a dict, got {type(d).__name__}")
    keys = set(d)
    if keys != set(COLUMNS):
        _fail(
            d, f"columns differ: missing {sorted(set(COLUMNS) - keys)}, extra {sorted(keys - set(COLUMNS))}"
        )
    for col in ("id", "dataset", "scene_name", "question_type", "problem_type", "question", "ground_truth",
                "rationale", "video", "meta"):  # fmt: skip
        if not isinstance(d[col], str):
            _fail(d, f"{col} must be a string, got {type(d[col]).__name__}")
    for col in ("id", "scene_name", "question", "ground_truth", "video"):
        if not d[col]:
            _fail(d, f"{col} is empty")
    if d["question_type"] not in QUESTION_TYPES:
        _fail(d, f"unknown question_type {d['question_type']!r}")
    if d["problem_type"] not in PROBLEM_TYPES:
        _fail(d, f"problem_type must be one of {PROBLEM_TYPES}")
    want = problem_type_of(d["question_type"]) or d["problem_type"]
    if d["problem_type"] != want:
        _fail(d, f"problem_type {d['problem_type']!r} but {d['question_type']} is {want}")
    options = d["options"]
    if not isinstance(options, list) or not all(isinstance(o, str) for o in options):
        _fail(d, "options must be a list of strings")
    if want == "open_ended":
        if options:
            _fail(d, "an open-ended question has no options")
    elif want == "numerical":
        if options:
            _fail(d, "a numerical question has no options")
        try:
            value = float(d["ground_truth"])
        except ValueError:
            _fail(d, f"ground_truth {d['ground_truth']!r} is not a number")
        if not math.isfinite(value):
            _fail(d, f"ground_truth {d['ground_truth']!r} is not finite")
    else:
        if len(options) < 2:
            _fail(d, "a multiple-choice question needs at least 2 options")
        letters = []
        for i, opt in enumerate(options):
            m = _OPTION.match(opt)
            if not m or m.group(1) != chr(ord("A") + i):
                _fail(d, f"option {i} {opt!r} is not written '{chr(ord('A') + i)}. ...'")
            letters.append(m.group(1))
        if d["ground_truth"] not in letters:
            _fail(d, f"ground_truth {d['ground_truth']!r} is not one of the option letters {letters}")
    for col in ("frame_indices", "uniform_indices"):
        idx = d[col]
        if not isinstance(idx, list) or not all(isinstance(i, int) and 0 <= i < 2**31 for i in idx):
            _fail(d, f"{col} must be a list of non-negative int32")
    if len(d["frame_indices"]) != len(d["uniform_indices"]):
        _fail(d, "frame_indices and uniform_indices differ in length")
    try:
        meta = json.loads(d["meta"])
    except json.JSONDecodeError as e:
        _fail(d, f"meta is not JSON: {e}")
    if not isinstance(meta, dict):
        _fail(d, "meta must be a JSON object")
