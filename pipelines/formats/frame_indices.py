"""The frame-indices file: space-aware frame indices per video, as the `sample_frames` stage writes
them under run_dir/frames/ and evaluation (`eval.frame_indices_file`) and training sources
(`frame_indices_file`) read them.

`space_aware.jsonl` (the record of truth, one line per finished video, flushed as each arrives):

    {"format": 1, "settings": "<hash of the settings the indices depend on>"}      first line
    {"video": "arkitscenes/41069025.mp4", "key": "arkitscenes/41069025", "num_frames": 1843,
     "candidates": [0, 14, ...], "frame_indices": [0, 131, ...]}                 one line per video

- `video`: the video's path relative to sample_frames.videos_dir (POSIX separators);
- `key`: `video` without its suffix: VSI-Bench's `<dataset>/<scene_name>`, the name evaluation
  looks indices up by and the frame folder's path under sample_frames.frames_dir;
- `num_frames`: frames in the video (the container's count); frame indices are 0-based positions
  in presentation order, as `pipelines.media.read_frames(path, indices=...)` reads them;
- `candidates`: the evenly spaced candidate frames that went through VGGT (ascending);
- `frame_indices`: the chosen frames, ascending, a subset of `candidates`, num_frames long unless
  the video has fewer candidates (`pad_frames` fills coverage that stops early).

A file made under other settings is replaced by an empty one when `IndexFile` opens it; a last line
cut short by a crash is ignored (the video is redone). `frame_indices.json` ({key: frame_indices}
for every video in the file, `IndexFile.write_json`) is rewritten, whole and atomically, at the end
of each run. `read_frame_indices(path)` reads either file (or the folder holding them);
`read_records(path)` gives `space_aware.jsonl`'s whole records.
"""

from __future__ import annotations

import json
import os
from pathlib import Path, PurePosixPath

from data_gen.errors import InputError
from pipelines.resumable_log import ResumableLog, json_or_none
from pipelines.run_meta import write_json_atomic

FORMAT = 1
INDEX_FILE = "space_aware.jsonl"
JSON_FILE = "frame_indices.json"
RECORD_FIELDS = ("video", "key", "num_frames", "candidates", "frame_indices")


class FrameIndexError(InputError):
    """A frame-indices file that cannot be read; the message names it."""


def video_key(video: str) -> str:
    """`arkitscenes/41069025.mp4` -> `arkitscenes/41069025`."""
    return PurePosixPath(video).with_suffix("").as_posix()


def _valid(record) -> bool:
    return (
        isinstance(record, dict)
        and all(k in record for k in RECORD_FIELDS)
        and all(isinstance(i, int) and i >= 0 for i in record["frame_indices"])
        and bool(record["frame_indices"])
    )


class IndexFile:
    """`space_aware.jsonl` for one set of `settings`: `.records` maps video -> its record."""

    def __init__(self, path: Path, settings: str):
        self.path, self.settings = path, settings
        self._log = ResumableLog(path, {"format": FORMAT, "settings": settings}, _valid)
        self.discarded = self._log.discarded  # records dropped because they were made under other settings
        self.records: dict[str, dict] = {record["video"]: record for record in self._log.rows}

    def __contains__(self, video: str) -> bool:
        return video in self.records

    def add(self, video: str, num_frames: int, candidates: list[int], frame_indices: list[int]) -> dict:
        """Append one video's record (one write, flushed)."""
        record = {"video": video, "key": video_key(video), "num_frames": int(num_frames),
                  "candidates": [int(c) for c in candidates], "frame_indices": [int(i) for i in frame_indices]}  # fmt: skip
        self._log.append(record)
        self.records[video] = record
        return record

    def close(self) -> None:
        self._log.close()

    def write_json(self, path: Path) -> None:
        """{key: frame_indices} of every record, atomically (the format evaluation reads)."""
        write_json_atomic(path, {r["key"]: r["frame_indices"] for r in self.records.values()})


def read_records(path: str | os.PathLike) -> list[dict]:
    """The records of a `space_aware.jsonl` (or of the run_dir/frames folder holding one)."""
    path = Path(path)
    if path.is_dir():
        path = path / INDEX_FILE
    try:
        lines = path.read_text().splitlines()
    except OSError as e:
        raise FrameIndexError(f"{path}: cannot read frame indices ({e})") from None
    header = json_or_none(lines[0]) if lines else None
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        raise FrameIndexError(f"{path}: not a space-aware frame-indices file (first line {lines[:1]})")
    return [r for r in map(json_or_none, lines[1:]) if _valid(r)]


def read_frame_indices(path: str | os.PathLike, setting: str = "frame indices") -> dict[str, list[int]]:
    """{key: frame indices (ascending)} from `space_aware.jsonl`, `frame_indices.json`, or the
    run_dir/frames folder holding them; key = the video path relative to the videos folder without
    its suffix (VSI-Bench: `<dataset>/<scene_name>`). `setting` names the config key in errors."""
    path = Path(path).expanduser().resolve()
    if path.is_dir():
        path = path / INDEX_FILE
    if path.suffix == ".jsonl":
        try:
            return {r["key"]: sorted(r["frame_indices"]) for r in read_records(path)}
        except FrameIndexError as e:
            raise FrameIndexError(f"{setting}: {e}") from None
    return _read_json(path, setting)


def _read_json(file: Path, setting: str) -> dict[str, list[int]]:
    """`frame_indices.json`: {"<dataset>/<scene_name>": [frame index, ...], ...}."""
    try:
        doc = json.loads(file.read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise FrameIndexError(f"{setting}={file}: cannot read it as JSON ({e})") from None
    ok = isinstance(doc, dict) and all(
        isinstance(v, list) and v and all(isinstance(i, int) and i >= 0 for i in v) for v in doc.values()
    )
    if not ok:
        raise FrameIndexError(f"{setting}={file}: expected {{\"<dataset>/<scene_name>\": [frame index >= 0, ...]}}")
    return {k: sorted(v) for k, v in doc.items()}
