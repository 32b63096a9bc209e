"""Evaluation items: questions plus where their frames come from.

Two sources, one item shape:
- our dataset split, `run_dir/dataset/<split>/*.parquet`, read by `pipelines.train.data.read_split`
  (the record schema; training's `DataError` when missing or empty): the QA records themselves, frames
  read from the scan folder `scans_root / record["video"]` at the record's `frame_indices`
  (space-aware) or `uniform_indices`, exactly as SFT and GRPO read them (`pipelines.prompting`);
- the VSI-Bench file (Parquet, JSON or JSON Lines with `id, dataset, scene_name, question_type,
  question, options, ground_truth`), frames decoded uniformly from
  `videos_dir/{dataset}/{scene_name}.mp4`.

An item is a flat dict of plain values (so Ray Data moves it cheaply): the record's `id, dataset,
scene_name, question_type, problem_type, question, options, ground_truth, video` (scan folder or
video file, relative to `root`), `frame_indices, uniform_indices` (empty for a video), plus `root`
(absolute), `sampling` and `num_frames`. `load_frames(item)` returns its HxWx3 uint8 RGB frames.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq

from data_gen.errors import InputError
from data_gen.schema import NUMERICAL_TYPES
from pipelines.train.data import read_split

VSI_BENCH_COLUMNS = ("id", "dataset", "scene_name", "question_type", "question", "options", "ground_truth")
# The record columns an item carries (not the rationale or meta).
ITEM_RECORD_COLUMNS = (*VSI_BENCH_COLUMNS, "problem_type", "video", "frame_indices", "uniform_indices")


class EvalInputError(InputError):
    """Evaluation inputs that cannot be used; the message names the file and the problem."""


def load_items(cfg) -> list[dict]:
    """The items cfg.eval asks for (a RunConfig), the first eval.limit of them when limit > 0."""
    ev = cfg.eval
    if ev.source == "vsibench":
        file = Path(ev.vsibench_file).expanduser().resolve()
        videos = Path(ev.videos_dir).expanduser().resolve() if ev.videos_dir else file.parent
        items = vsibench_items(file, videos, ev.num_frames, limit=ev.limit)
    else:
        items = dataset_items(
            cfg.run_path / "dataset",
            ev.split,
            cfg.scans_path(),
            ev.num_frames,
            ev.frame_sampling,
            limit=ev.limit,
        )
    if not items:
        raise EvalInputError("no questions to evaluate (empty split or file)")
    return items


# --- our dataset ---


def dataset_items(
    dataset_dir: Path, split: str, scans_root: Path, num_frames: int, sampling: str, limit: int = 0
) -> list[dict]:
    """Items of `dataset_dir/<split>/*.parquet` (shards in name order, rows in file order), read by
    `pipelines.train.data.read_split` as training reads them: the record schema applied, its
    DataError (an InputError) when the split is missing, empty or unreadable."""
    table = read_split(dataset_dir, split, limit=limit).select(ITEM_RECORD_COLUMNS)
    return [
        {
            **_question_fields(rec, rec["problem_type"]),
            "video": str(rec["video"]),
            "frame_indices": [int(i) for i in rec["frame_indices"]],
            "uniform_indices": [int(i) for i in rec["uniform_indices"]],
            **_frame_fields(scans_root, sampling, num_frames),
        }
        for rec in table.to_pylist()
    ]


def _frame_fields(root: Path, sampling: str, num_frames: int) -> dict:
    return {"root": str(root), "sampling": sampling, "num_frames": num_frames}


def _question_fields(rec: dict, problem_type: str) -> dict:
    return {
        "id": str(rec["id"]),
        "dataset": str(rec["dataset"]),
        "scene_name": str(rec["scene_name"]),
        "question_type": str(rec["question_type"]),
        "problem_type": problem_type,
        "question": str(rec["question"]),
        "options": [str(o) for o in (rec.get("options") or [])],
        "ground_truth": str(rec["ground_truth"]),
    }


# --- VSI-Bench ---


def read_vsibench_file(file: Path) -> list[dict]:
    """Rows of the VSI-Bench file: Parquet, a JSON list of objects, or JSON Lines."""
    if not file.is_file():
        raise EvalInputError(f"{file}: no such VSI-Bench file")
    if file.suffix == ".parquet":
        rows = pq.read_table(file).to_pylist()
    else:
        text = file.read_text()
        try:
            doc = json.loads(text)
            rows = doc if isinstance(doc, list) else None
        except json.JSONDecodeError:
            try:
                rows = [json.loads(line) for line in text.splitlines() if line.strip()]
            except json.JSONDecodeError as e:
                raise EvalInputError(f"{file}: neither JSON nor JSON Lines ({e})") from None
        if rows is None or not all(isinstance(r, dict) for r in rows):
            raise EvalInputError(f"{file}: expected a list of question objects")
    for i, row in enumerate(rows):
        missing = [c for c in VSI_BENCH_COLUMNS if c not in row]
        if missing:
            raise EvalInputError(f"{file}: row {i} lacks column(s) {missing}")
    return rows


def vsibench_items(file: Path, videos_dir: Path, num_frames: int, limit: int = 0) -> list[dict]:
    """Items of the VSI-Bench file; every video they need must exist (checked before any work)."""
    rows = read_vsibench_file(file)
    if limit:
        rows = rows[:limit]
    items = []
    for row in rows:
        numerical = row["question_type"] in NUMERICAL_TYPES or not row["options"]
        items.append(
            {
                **_question_fields(row, "numerical" if numerical else "multiple_choice"),
                "video": f"{row['dataset']}/{row['scene_name']}.mp4",
                "frame_indices": [],
                "uniform_indices": [],
                **_frame_fields(videos_dir, "uniform", num_frames),  # no geometry in an mp4: uniform
            }
        )
    missing = sorted(
        {str(videos_dir / it["video"]) for it in items if not (videos_dir / it["video"]).is_file()}
    )
    if missing:
        more = f" and {len(missing) - 3} more" if len(missing) > 3 else ""
        raise EvalInputError(f"{len(missing)} video(s) missing under {videos_dir}: {missing[:3]}{more}")
    return items


# --- frames ---


def load_frames(item: dict) -> list[np.ndarray]:
    """The item's frames as HxWx3 uint8 RGB arrays, in video order: `num_frames` uniformly spaced
    frames of a video file, else the scan frames `pipelines.prompting` picks for the record."""
    path = Path(item["root"]) / item["video"]
    if path.is_file():
        from pipelines.evaluate.video import read_frames

        return read_frames(path, int(item["num_frames"]))
    from pipelines import prompting

    return prompting.load_frames(
        item, Path(item["root"]), sampling=item["sampling"], num_frames=int(item["num_frames"])
    )
