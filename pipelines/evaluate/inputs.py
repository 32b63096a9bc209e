"""Evaluation items: questions, checked before any model work, plus where their frames come from.

Sources, one item shape:
- our dataset split, `run_dir/dataset/<split>/*.parquet`, read by `pipelines.train.data.read_split`
  (the record schema; training's `DataError` when missing or empty): the QA records themselves,
  frames read from the scan folder `scans_root / record["video"]` at the record's `frame_indices`
  (space-aware) or `uniform_indices`, exactly as SFT and GRPO read them (`pipelines.prompting`);
- a question file (Parquet, a JSON list or JSON Lines) in one of `FILE_FORMATS`
  (`pipelines/formats/question_files.py`), made into items by `file_items`: VSI-Bench's HF release
  (videos `videos_dir/{dataset}/{scene_name}.mp4`) or the Spatial-MLLM authors' v1.0 eval file
  (videos at its `path`, e.g. `./arkitscenes/41069025.mp4`, answers `<answer>4</answer>`);
- annotation files read as training reads them (`eval.sources`, `pipelines.train.sources`): ScanQA,
  SQA3D (open-ended: every accepted answer in `answers`), Qwen-VL records (their first question
  asked in their own words, `turns`).

An item is a flat dict: `id, dataset, scene_name, question_type, problem_type, question, options,
ground_truth, video` (a label: the video, frame folder or scan relative to its root), optionally
`answers` (an open-ended question's accepted answers) and `turns` (a file record's own wording),
and `frames`, what to read: `{"kind": "video" | "folder" | "scan" | "images", "path": absolute,
"num_frames": k, "ids": [frame indices] or None}` (images: also `"paths"`). Items with the same `frames` share one decode (`frame_groups`).
`load_frames(frames)` returns the HxWx3 uint8 RGB frames; `frames_fps(frames, n)` the rate of `n`
frames sampled from a video (what `second_per_grid_ts` is made from, as in training).
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import numpy as np

from data_gen.qa.frame_selection import uniform_indices
from pipelines import media, prompting
from pipelines.formats.frame_indices import read_frame_indices
from pipelines.formats.question_files import (
    VSI_BENCH_COLUMNS,
    EvalInputError,
    detect_format,
    question_fields,
    question_file,
    read_rows,
)
from pipelines.train.data import read_split

# The record columns an item carries (not the rationale or meta).
ITEM_RECORD_COLUMNS = (*VSI_BENCH_COLUMNS, "problem_type", "video", "frame_indices", "uniform_indices")
QUESTION_FIELDS = ("id", "dataset", "scene_name", "question_type", "problem_type", "question", "options",
                   "ground_truth")  # fmt: skip
_OPTION = re.compile(r"([A-Z])\.\s")  # "A. left": VSI-Bench's option layout


def load_items(cfg) -> list[dict]:
    """The items cfg.eval asks for (a RunConfig), the first eval.limit of them when limit > 0,
    checked (`check_questions`) before anything is decoded or generated."""
    ev = cfg.eval
    sampling = frame_sampling(ev)
    if ev.source == "vsibench":
        file = question_file(ev.vsibench_file)
        videos = Path(ev.videos_dir).expanduser().resolve() if ev.videos_dir else file.parent
        indices = (
            read_frame_indices(ev.frame_indices_file, "eval.frame_indices_file")
            if sampling == "space_aware"
            else None
        )
        frames_dir = Path(ev.frames_dir).expanduser().resolve() if sampling == "presampled" else None
        items = file_items(file, videos, ev.num_frames, file_format=ev.file_format, limit=ev.limit,
                           frames_dir=frames_dir, frame_indices=indices)  # fmt: skip
        label = str(file)
    elif ev.source == "sources":
        items = source_items(cfg, ev.num_frames, sampling, limit=ev.limit)
        label = " + ".join(str(s.annotation) for s in ev.sources)
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
    if ev.source == "sources":
        if sampling == "presampled":
            raise EvalInputError("eval.frame_sampling=presampled is for a VSI-Bench file's frame folders; "
                                 "eval.sources read their records' own frames")  # fmt: skip
        return sampling or "space_aware"
    if ev.source != "vsibench":
        if sampling == "presampled":
            raise EvalInputError("eval.frame_sampling=presampled reads a question file's frame folders "
                                 "(eval.source=vsibench); our dataset has space_aware or uniform frames")  # fmt: skip
        return sampling or "space_aware"
    if sampling is None:
        sampling = "presampled" if ev.frames_dir else "uniform"
    if sampling == "presampled" and not ev.frames_dir:
        raise EvalInputError(
            "eval.frame_sampling=presampled needs eval.frames_dir (<dataset>/<scene_name>/*.png)"
        )
    if sampling == "space_aware" and not ev.frame_indices_file:
        raise EvalInputError(
            "eval.frame_sampling=space_aware on videos needs per-video frame indices: run "
            "`python -m jobs.sample_frames` and set eval.frame_indices_file=<its run_dir>/frames, or use "
            "eval.frames_dir=<the authors' pre-sampled frames> or eval.frame_sampling=uniform"
        )
    return sampling


def frames_label(ev) -> str:
    """Which frames the evaluation shows, in words (for the report)."""
    sampling, k = frame_sampling(ev), ev.num_frames
    if ev.source == "sources":
        return (f"{sampling} (the records' frames, else the sources' frame_indices_file when space_aware, "
                f"else {k} evenly spaced; at most {k})")  # fmt: skip
    if ev.source != "vsibench":
        column = "frame_indices" if sampling == "space_aware" else "uniform_indices"
        return f"{sampling} ({column} of each record, at most {k})"
    if sampling == "presampled":
        return f"presampled (image folders under {ev.frames_dir}, at most {k})"
    if sampling == "space_aware":
        return f"space_aware (indices from {ev.frame_indices_file}, at most {k})"
    return f"uniform ({k} evenly spaced frames of each video)"


# --- a question file ---


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
        frames = {
            "kind": "scan",
            "path": str(scans_root / rec["video"]),
            "num_frames": num_frames,
            "ids": ids,
        }
        items.append(
            {**question_fields(rec, rec["problem_type"]), "video": str(rec["video"]), "frames": frames}
        )
    return items


# --- annotation files read as training reads them ---


def source_items(cfg, num_frames: int, sampling: str, limit: int = 0) -> list[dict]:
    """Items of eval.sources: every record of each (in file order), read by
    `pipelines.train.sources`; a record that cannot be read stops the evaluation (listed). A
    multi-turn record is asked its first question, against its first answer (open-ended)."""
    from pipelines.train.source_formats import READERS

    items: list[dict] = []
    bad: list[str] = []
    one_video = cfg.model_copy(deep=True)  # a question is asked of one video: image lists become one
    one_video.data.mixture.image_lists = "video"
    for src in cfg.eval.sources:
        read = READERS[src.format](src, one_video)
        bad += [str(b) for b in read.bad]
        for part in read.parts():
            items += [_source_item(rec, num_frames, sampling) for rec in part]
    if bad:
        raise EvalInputError(
            f"{len(bad)} record(s) of eval.sources cannot be used:\n  " + "\n  ".join(bad[:5])
        )
    items = items[:limit] if limit else items
    missing = sorted(
        {p for it in items for p in it["frames"].get("paths", [it["frames"]["path"]]) if not Path(p).exists()}
    )
    if missing:
        more = f" and {len(missing) - 3} more" if len(missing) > 3 else ""
        raise EvalInputError(
            f"{len(missing)} video(s), scan(s) or image(s) of eval.sources missing: {missing[:3]}{more}"
        )
    return items


def _source_item(rec: dict, num_frames: int, sampling: str) -> dict:
    turns = json.loads(rec["turns"]) if rec["turns"] else []
    if len(turns) > 1:  # ask the first question only, in its own words
        rec = {**rec, "problem_type": "open_ended", "ground_truth": turns[0]["assistant"],
               "turns": json.dumps(turns[:1]), "meta": "{}"}  # fmt: skip
    question = question_fields(rec, rec["problem_type"])
    answers = json.loads(rec["meta"] or "{}").get("answers") if rec["problem_type"] == "open_ended" else None
    kind, paths = rec["media_kind"], list(rec["media_paths"])
    ids = prompting.frame_ids(rec, sampling=sampling, num_frames=num_frames) or None
    if kind == "scan" and ids is None:
        ids = uniform_indices(media.scan_frame_ids(Path(paths[0])), num_frames) or None
    frames = {"kind": kind, "path": paths[0], "num_frames": num_frames, "ids": ids}
    if kind == "images":
        frames["paths"] = paths
    if rec["problem_type"] == "open_ended":
        question["answers"] = answers or [question["ground_truth"]]
    return {**question, "turns": rec["turns"], "video": str(rec["video"]), "frames": frames}


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
    if kind == "open_ended":
        return None if str(truth).strip() else "open-ended question without an answer"
    if kind != "multiple_choice":
        return f"problem_type {kind!r} is none of numerical, multiple_choice, open_ended"
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
        raise EvalInputError(
            f"{label}: {len(problems)} bad question(s):\n  " + "\n  ".join(problems[:5]) + more
        )


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


def frames_fps(frames: dict, count: int) -> float | None:
    """The rate of `count` frames sampled from the spec's video: count / the video's duration (the
    authors' and qwen-vl-utils' sample fps, as training computes it in `media.load_clip`); None for
    scans, folders and images, whose timing is unknown."""
    if frames["kind"] != "video":
        return None
    total, avg_fps = media.video_info(Path(frames["path"]))
    return count / (total / avg_fps)


def load_frames(frames: dict) -> list[np.ndarray]:
    """The frames a `frames` spec names, as HxWx3 uint8 RGB arrays in video order. Raises an
    InputError (VideoError, RecordError) naming the file when they cannot be read."""
    path, ids = Path(frames["path"]), frames["ids"]
    if frames["kind"] == "video":
        return (
            media.read_frames(path, indices=ids)
            if ids
            else media.read_frames(path, int(frames["num_frames"]))
        )
    if frames["kind"] == "folder":
        return media.read_frame_folder(path, int(frames["num_frames"]))
    if frames["kind"] == "images":
        return media.load_clip(
            "images", frames["paths"], [], media.FrameRule(int(frames["num_frames"]))
        ).frames
    if not ids:
        raise prompting.RecordError(f"{path}: no frame indices")
    try:
        return media.scan_frames(path, ids)
    except (OSError, ValueError, KeyError, IndexError) as e:
        raise media.VideoError(path, f"cannot read frames {ids} ({e})") from None
