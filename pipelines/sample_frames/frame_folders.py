"""The optional frame folders (`sample_frames.frames_dir`): each video's chosen frames at full
resolution, `<frames_dir>/<key>/frame_<index, 6 digits>.png`, the authors' pre-sampled layout
(`<dataset>/<scene_name>/`, sorted names = video order); key as in `pipelines.formats.frame_indices`.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

from data_gen.errors import InputError
from pipelines.formats.frame_indices import video_key


def frame_folder(frames_dir: Path, video: str) -> Path:
    """Where a video's chosen frames go: `<frames_dir>/<key>/` (VSI-Bench: `<dataset>/<scene_name>/`)."""
    return frames_dir / video_key(video)


def frame_file_name(index: int) -> str:
    return f"frame_{index:06d}.png"


def write_frame_folder(row: dict, frames_dir: str) -> dict:
    """Ray Data map step: the row's chosen frames, full resolution, as PNGs in its frame folder,
    written into a temporary folder and renamed into place. Rows with an error pass through; a
    failure to read the frames becomes the row's error."""
    from PIL import Image

    from pipelines.media import read_frames

    if row["error"]:
        return row
    indices = json.loads(row["frame_indices"])
    dest = frame_folder(Path(frames_dir), str(row["video"]))
    tmp = dest.with_name(f".{dest.name}.tmp{os.getpid()}")
    try:
        frames = read_frames(Path(row["path"]), indices=indices)
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        for index, frame in zip(sorted(indices), frames, strict=True):
            Image.fromarray(frame).save(tmp / frame_file_name(index))
        if dest.exists():
            shutil.rmtree(dest)
        os.replace(tmp, dest)
    except InputError as e:
        shutil.rmtree(tmp, ignore_errors=True)
        return {**row, "error": str(e)}
    return row


def folder_complete(frames_dir: Path, record: dict) -> bool:
    """True when a record's frame folder holds exactly its chosen frames."""
    folder = frame_folder(frames_dir, record["video"])
    wanted = {frame_file_name(i) for i in record["frame_indices"]}
    return folder.is_dir() and {p.name for p in folder.iterdir()} == wanted
