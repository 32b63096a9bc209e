"""Evaluation items: questions, checked before any model work, plus where their frames come from.

Sources, one item shape:
- our dataset split, `run_dir/dataset/<split>/*.parquet`, read by `pipelines.train.data.read_split`
  (the record schema; training's `DataError` when missing or empty): the QA records themselves,
  frames read from the scan folder `scans_root / record["video"]` at the record's `frame_indices`
  (space-aware) or `uniform_indices`, exactly as SFT and GRPO read them (`pipelines.prompting`);
- a question file (Parquet, a JSON list or JSON Lines) in one of `FILE_FORMATS`: VSI-Bench's HF
  release (videos `videos_dir/{dataset}/{scene_name}.mp4`) or the Spatial-MLLM authors' v1.0 eval
  file (videos at its `path`, e.g. `./arkitscenes/41069025.mp4`, answers `<answer>4</answer>`).
  A new format is one more `FileFormat` entry: its columns and a row -> question function.

An item is a flat dict: `id, dataset, scene_name, question_type, problem_type, question, options,
ground_truth, video` (a label: the video, frame folder or scan relative to its root) and `frames`,
what to read: `{"kind": "video" | "folder" | "scan", "path": absolute, "num_frames": k, "ids":
[frame indices] or None}`. Items with the same `frames` share one decode (`frame_groups`).
`load_frames(frames)` returns the HxWx3 uint8 RGB frames.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from data_gen.errors import InputError
from data_gen.qa.frame_selection import uniform_indices
from data_gen.schema import NUMERICAL_TYPES
from pipelines import prompting
from pipelines.train.data import read_split

VSI_BENCH_COLUMNS = ("id", "dataset", "scene_name", "question_type", "question", "options", "ground_truth")
# The record columns an item carries (not the rationale or meta).
ITEM_RECORD_COLUMNS = (*VSI_BENCH_COLUMNS, "problem_type", "video", "frame_indices", "uniform_indices")
QUESTION_FIELDS = ("id", "dataset", "scene_name", "question_type", "problem_type", "question", "options",
                   "ground_truth")  # fmt: skip
_OPTION = re.compile(r"([A-Z])\.\s")  # "A. left": VSI-Bench's option layout


class EvalInputError(InputError):
    """Evaluation inputs that cannot be used; the message names the file and the problem."""


def load_items(cfg) -> list[dict]:
    """The items cfg.eval asks for (a RunConfig), the first eval.limit of them when limit > 0,
    checked (`check_questions`) before anything is decoded or generated."""
    ev = cfg.eval
    sampling = frame_sampling(ev)
    if ev.source == "vsibench":
        file = question_file(ev.vsibench_file)
        videos = Path(ev.videos_dir).expanduser().resolve() if ev.videos_dir else file.parent
        indices = read_frame_indices(Path(ev.frame_indices_file)) if sampling == "space_aware" else None
        frames_dir = Path(ev.frames_dir).expanduser().resolve() if sampling == "presampled" else None
        items = file_items(file, videos, ev.num_frames, file_format=ev.file_format, limit=ev.limit,
                           frames_dir=frames_dir, frame_indices=indices)  # fmt: skip
        label = str(file)
    else:
        dataset = cfg.run_path / "dataset"
        items = dataset_items(dataset, ev.split, cfg.scans_path(), ev.num_frames, sampling, limit=ev.limit)
        label = str(dataset / ev.split)
    if not items:
        raise EvalInputError(f"{label}: no questions to evaluate (empty split or file)")
    check_questions(items, label)
    return items


def frame_sampling(ev) -> str:
    """eval.frame_sampling resolved (null -> the source's default), checked against the source."""
    sampling = ev.frame_sampling
    if ev.source != "vsibench":
        if sampling == "presampled":
            raise EvalInputError("eval.frame_sampling=presampled reads a question file's frame folders "
                                 "(eval.source=vsibench); our dataset has space_aware or uniform frames")  # fmt: skip
        return sampling or "space_aware"
    if sampling is None:
        sampling = "presampled" if ev.frames_dir else "uniform"
    if sampling == "presampled" and not ev.frames_dir:
        raise EvalInputError("eval.frame_sampling=presampled needs eval.frames_dir (<dataset>/<scene_name>/*.png)")
    if sampling == "space_aware" and not ev.frame_indices_file:
        raise EvalInputError(
            "eval.frame_sampling=space_aware on videos needs per-video frame indices "
            "(eval.frame_indices_file); the job that computes them is not available yet. Use "
            "eval.frames_dir=<the authors' pre-sampled frames> or eval.frame_sampling=uniform"
        )
    return sampling


def frames_label(ev) -> str:
    """Which frames the evaluation shows, in words (for the report)."""
    sampling, k = frame_sampling(ev), ev.num_frames
    if ev.source != "vsibench":
        column = "frame_indices" if sampling == "space_aware" else "uniform_indices"
        return f"{sampling} ({column} of each record, at most {k})"
    if sampling == "presampled":
        return f"presampled (image folders under {ev.frames_dir}, at most {k})"
    if sampling == "space_aware":
        return f"space_aware (indices from {ev.frame_indices_file}, at most {k})"
    return f"uniform ({k} evenly spaced frames of each video)"


# --- our dataset ---


def dataset_items(
    dataset_dir: Path, split: str, scans_root: Path, num_frames: int, sampling: str, limit: int = 0
) -> list[dict]:
    """Items of `dataset_dir/<split>/*.parquet` (shards in name order, rows in file order), read by
    `pipelines.train.data.read_split` as training reads them: the record schema applied, its
    DataError (an InputError) when the split is missing, empty or unreadable."""
    table = read_split(dataset_dir, split, limit=limit).select(ITEM_RECORD_COLUMNS)
    items = []
    for rec in table.to_pylist():
        ids = prompting.frame_ids(rec, sampling=sampling, num_frames=num_frames)
        frames = {"kind": "scan", "path": str(scans_root / rec["video"]), "num_frames": num_frames, "ids": ids}
        items.append({**_question(rec, rec["problem_type"]), "video": str(rec["video"]), "frames": frames})
    return items


def _question(rec: dict, problem_type: str) -> dict:
    return {
        "id": str(rec["id"]),
        "dataset": str(rec["dataset"]),
        "scene_name": str(rec["scene_name"]),
        "question_type": str(rec["question_type"]),
        "problem_type": problem_type,
        "question": str(rec["question"]),
        "options": [str(o) for o in (rec.get("options") or [])],
        "ground_truth": str(rec["ground_truth"]).strip(),
    }


# --- question files ---


@dataclass(frozen=True)
class FileFormat:
    """A question-file format: the columns a row must have, and row -> (question fields, video path
    relative to the videos folder)."""

    name: str
    description: str
    columns: tuple[str, ...]
    question: Callable[[dict, int], tuple[dict, str]]


def _vsi_bench_question(row: dict, i: int) -> tuple[dict, str]:
    numerical = row["question_type"] in NUMERICAL_TYPES or not row["options"]
    return _question(row, "numerical" if numerical else "multiple_choice"), f"{row['dataset']}/{row['scene_name']}.mp4"


# The v1.0 file's problem_type -> ours ("regression" is its name for numbers).
V1_PROBLEM_TYPES = {"multiple choice": "multiple_choice", "regression": "numerical", "numerical": "numerical"}
_ANSWER_TAG = re.compile(r"<answer>(.*?)</answer>", re.DOTALL)


def _spatial_mllm_v1_question(row: dict, i: int) -> tuple[dict, str]:
    kind = str(row["problem_type"]).strip().lower()
    if kind not in V1_PROBLEM_TYPES:
        raise EvalInputError(f"row {i}: problem_type {row['problem_type']!r} is none of {sorted(V1_PROBLEM_TYPES)}")
    solution = str(row["solution"])
    tag = _ANSWER_TAG.search(solution)
    rel = PurePosixPath(str(row["path"]))
    rel = PurePosixPath(*rel.parts[1:]) if rel.parts and rel.parts[0] == "." else rel  # "./arkitscenes/x.mp4"
    fields = {
        "id": row.get("problem_id", i),
        "dataset": rel.parent.name,
        "scene_name": rel.stem,
        "question_type": row["original_question_type"],
        "question": row["problem"],
        "options": row.get("options"),
        "ground_truth": tag.group(1) if tag else solution,
    }
    return _question(fields, V1_PROBLEM_TYPES[kind]), str(rel)


FILE_FORMATS: dict[str, FileFormat] = {
    "vsi_bench": FileFormat("vsi_bench", "VSI-Bench's HF release", VSI_BENCH_COLUMNS, _vsi_bench_question),
    "spatial_mllm_v1": FileFormat(
        "spatial_mllm_v1",
        "the Spatial-MLLM v1.0 eval file",
        ("problem", "problem_type", "solution", "path", "original_question_type"),
        _spatial_mllm_v1_question,
    ),
}


def question_file(name: str) -> Path:
    """eval.vsibench_file as an absolute path; a folder or a missing file is a clear error."""
    file = Path(name).expanduser().resolve()
    if file.is_dir():
        found = sorted(p.name for p in file.iterdir() if p.suffix in (".parquet", ".json", ".jsonl"))
        hint = f" (it holds {', '.join(found[:5])})" if found else ""
        raise EvalInputError(
            f"eval.vsibench_file={name} is a folder: give the question file inside it{hint}; the videos "
            f"folder is eval.videos_dir"
        )
    if not file.is_file():
        raise EvalInputError(f"{file}: no such question file (eval.vsibench_file)")
    return file


def read_rows(file: Path) -> list[dict]:
    """Rows of a question file: Parquet, a JSON list of objects, or JSON Lines."""
    if file.suffix == ".parquet":
        try:
            return pq.read_table(file).to_pylist()
        except (OSError, ValueError, pa.ArrowException) as e:
            raise EvalInputError(f"{file}: cannot read as Parquet ({e})") from None
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
    return rows


def detect_format(file: Path, rows: list[dict], file_format: str = "auto") -> FileFormat:
    """The format `file_format` names, or the one whose columns the first row has (`auto`)."""
    if file_format != "auto":
        return FILE_FORMATS[file_format]
    first = rows[0] if rows else {}
    for fmt in FILE_FORMATS.values():
        if all(c in first for c in fmt.columns):
            return fmt
    wants = "; ".join(
        f"{fmt.description} ({fmt.name}) needs {list(fmt.columns)}, lacks {[c for c in fmt.columns if c not in first]}"
        for fmt in FILE_FORMATS.values()
    )
    raise EvalInputError(f"{file}: row 0 is in no known format: {wants}")


def file_items(
    file: Path,
    videos_dir: Path,
    num_frames: int,
    *,
    file_format: str = "auto",
    limit: int = 0,
    frames_dir: Path | None = None,
    frame_indices: dict[str, list[int]] | None = None,
) -> list[dict]:
    """Items of a question file. Frames: `num_frames` uniform frames of each video; with
    `frames_dir`, that folder's `<dataset>/<scene_name>/` images; with `frame_indices`, the frames
    at the indices listed for `<dataset>/<scene_name>`. Every video or folder they need must exist,
    checked before any work."""
    rows = read_rows(file)
    fmt = detect_format(file, rows, file_format)
    if limit:
        rows = rows[:limit]
    items = []
    for i, row in enumerate(rows):
        missing = [c for c in fmt.columns if c not in row]
        if missing:
            raise EvalInputError(f"{file}: row {i} lacks column(s) {missing} ({fmt.description})")
        try:
            question, video = fmt.question(row, i)
        except EvalInputError as e:
            raise EvalInputError(f"{file}: {e}") from None
        key = f"{question['dataset']}/{question['scene_name']}"
        if frames_dir is not None:
            frames = {"kind": "folder", "path": str(frames_dir / key), "num_frames": num_frames, "ids": None}
            video = key
        else:
            ids = None
            if frame_indices is not None:
                if key not in frame_indices:
                    raise EvalInputError(f"eval.frame_indices_file lists no frame indices for {key}")
                ids = uniform_indices(frame_indices[key], num_frames)  # all of them when <= num_frames
            frames = {"kind": "video", "path": str(videos_dir / video), "num_frames": num_frames, "ids": ids}
        items.append({**question, "video": video, "frames": frames})
    _check_sources_exist(items, frames_dir or videos_dir)
    return items


def _check_sources_exist(items: list[dict], root: Path) -> None:
    missing = sorted({it["frames"]["path"] for it in items if not Path(it["frames"]["path"]).exists()})
    if missing:
        what = "frame folder(s)" if items[0]["frames"]["kind"] == "folder" else "video(s)"
        more = f" and {len(missing) - 3} more" if len(missing) > 3 else ""
        raise EvalInputError(f"{len(missing)} {what} missing under {root}: {missing[:3]}{more}")


def read_frame_indices(file: Path) -> dict[str, list[int]]:
    """A space-aware frame-indices file: {"<dataset>/<scene_name>": [frame index, ...], ...}."""
    file = file.expanduser().resolve()
    try:
        doc = json.loads(file.read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise EvalInputError(f"eval.frame_indices_file={file}: cannot read it as JSON ({e})") from None
    ok = isinstance(doc, dict) and all(
        isinstance(v, list) and v and all(isinstance(i, int) and i >= 0 for i in v) for v in doc.values()
    )
    if not ok:
        raise EvalInputError(
            f"eval.frame_indices_file={file}: expected {{\"<dataset>/<scene_name>\": [frame index >= 0, ...]}}"
        )
    return {k: sorted(v) for k, v in doc.items()}


# --- checks before any generation ---


def option_letters(options: list[str]) -> list[str] | None:
    """The letters of options written "A. ...", "B. ..." (None when one is not)."""
    letters = []
    for option in options:
        match = _OPTION.match(option)
        if match is None:
            return None
        letters.append(match.group(1))
    return letters


def question_problem(item: dict) -> str | None:
    """What is wrong with a question's type, options or ground truth (None when nothing is)."""
    kind, truth, options = item["problem_type"], item["ground_truth"], item["options"]
    if kind == "numerical":
        try:
            value = float(truth)
        except ValueError:
            return f"numerical ground truth {truth!r} is not a number"
        return None if math.isfinite(value) else f"numerical ground truth {truth!r} is not finite"
    if kind != "multiple_choice":
        return f"problem_type {kind!r} is neither numerical nor multiple_choice"
    if len(options) < 2:
        return f"a multiple-choice question needs at least 2 options, has {options}"
    letters = option_letters(options)
    if letters is None or len(set(letters)) != len(letters):
        return f"options {options} are not written 'A. ...', 'B. ...' with distinct letters"
    if truth not in letters:
        return f"ground truth {truth!r} is not one of the option letters {letters}"
    return None


def check_questions(items: list[dict], label: str) -> None:
    """Every question's ground truth and options usable, every id once; raises EvalInputError
    listing the first problems (before any frame is decoded or answer generated)."""
    problems = []
    seen: set[str] = set()
    for item in items:
        if item["id"] in seen:
            problems.append(f"question {item['id']}: id repeated")
        seen.add(item["id"])
        problem = question_problem(item)
        if problem:
            problems.append(f"question {item['id']} ({item['question_type']}): {problem}")
    if problems:
        more = f"\n  ... and {len(problems) - 5} more" if len(problems) > 5 else ""
        raise EvalInputError(f"{label}: {len(problems)} bad question(s):\n  " + "\n  ".join(problems[:5]) + more)


# --- frames ---


def frame_groups(items: list[dict]) -> list[dict]:
    """The items grouped by what they show: one group per video (or scan, or folder) and frame-id
    set, in first-appearance order: `{"video": label, "frames": spec, "items": [item positions]}`."""
    groups: dict[str, dict] = {}
    for position, item in enumerate(items):
        key = json.dumps(item["frames"], sort_keys=True)
        group = groups.setdefault(key, {"video": item["video"], "frames": item["frames"], "items": []})
        group["items"].append(position)
    return list(groups.values())


def load_frames(frames: dict) -> list[np.ndarray]:
    """The frames a `frames` spec names, as HxWx3 uint8 RGB arrays in video order. Raises an
    InputError (VideoError, RecordError) naming the file when they cannot be read."""
    from pipelines.evaluate.video import VideoError, read_frame_folder, read_frames

    path, ids = Path(frames["path"]), frames["ids"]
    if frames["kind"] == "video":
        return read_frames(path, indices=ids) if ids else read_frames(path, int(frames["num_frames"]))
    if frames["kind"] == "folder":
        return read_frame_folder(path, int(frames["num_frames"]))
    if not ids:
        raise prompting.RecordError(f"{path}: no frame indices")
    try:
        return prompting.scan_frames(path, ids)
    except (OSError, ValueError, KeyError, IndexError) as e:
        raise VideoError(path, f"cannot read frames {ids} ({e})") from None
