"""Which videos to sample, and their candidate frames.

`list_videos(cfg.sample_frames)` -> `[(name, absolute path)]`, name = the path relative to
videos_dir (`arkitscenes/41069025.mp4`), in name order, from a folder, a list file or a VSI-Bench
question file; bad input fails before any work with an `InputError` naming the key and file.
`decode_candidates(row)` is the Ray Data step that reads one video's candidate frames.
"""

from __future__ import annotations

from pathlib import Path, PurePosixPath

import numpy as np

from data_gen.errors import InputError
from data_gen.qa.frame_selection import uniform_positions
from pipelines.formats.question_files import EvalInputError, detect_format, question_file, read_rows

VIDEO_SUFFIXES = (".mp4", ".mov", ".mkv", ".avi", ".webm")
NO_FRAMES = np.zeros((0, 1, 1, 3), dtype=np.uint8)


class SampleFramesInputError(InputError):
    """Videos that cannot be listed; the message names the config key and the file."""


def _path(value: str) -> Path:
    return Path(value).expanduser().resolve()


def list_videos(sf) -> list[tuple[str, Path]]:
    """The videos a `SampleFramesConfig` names, `[(name relative to videos_dir, path)]`, sorted by
    name, each once. Every listed video must exist (checked here, before any work)."""
    if not sf.videos_dir:
        raise SampleFramesInputError("sample_frames.videos_dir is not set: the folder of the videos to sample")
    root = _path(sf.videos_dir)
    if not root.is_dir():
        raise SampleFramesInputError(f"sample_frames.videos_dir={root}: no such folder")
    if sf.vsibench_file:
        names, source = _vsibench_videos(_path(sf.vsibench_file)), f"sample_frames.vsibench_file={sf.vsibench_file}"
    elif sf.video_list:
        names, source = _listed_videos(_path(sf.video_list), root), f"sample_frames.video_list={sf.video_list}"
    else:
        names = [p.relative_to(root).as_posix() for p in root.rglob("*")
                 if p.is_file() and p.suffix.lower() in VIDEO_SUFFIXES and not p.name.startswith(".")]  # fmt: skip
        source = f"sample_frames.videos_dir={root}"
        if not names:
            raise SampleFramesInputError(f"{source}: holds no {'/'.join(VIDEO_SUFFIXES)} videos")
    names = sorted(set(names))
    missing = [n for n in names if not (root / n).is_file()]
    if missing:
        more = f" and {len(missing) - 3} more" if len(missing) > 3 else ""
        raise SampleFramesInputError(f"{source}: {len(missing)} video(s) missing under {root}: {missing[:3]}{more}")
    return [(n, root / n) for n in names]


def _listed_videos(file: Path, root: Path) -> list[str]:
    if not file.is_file():
        raise SampleFramesInputError(f"sample_frames.video_list={file}: no such file")
    names = []
    for line in file.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        path = Path(line)
        if path.is_absolute():
            try:
                line = path.resolve().relative_to(root).as_posix()
            except ValueError:
                raise SampleFramesInputError(
                    f"sample_frames.video_list={file}: {line} is not under sample_frames.videos_dir={root}"
                ) from None
        names.append(PurePosixPath(line).as_posix())
    if not names:
        raise SampleFramesInputError(f"sample_frames.video_list={file}: lists no video")
    return names


def _vsibench_videos(file: Path) -> list[str]:
    """The videos a question file names, read as evaluation reads it (either format)."""
    try:
        file = question_file(str(file))
        rows = read_rows(file)
        fmt = detect_format(file, rows)
        names = [fmt.question(row, i)[1] for i, row in enumerate(rows)]
    except EvalInputError as e:
        raise SampleFramesInputError(f"sample_frames.vsibench_file: {e}") from None
    except KeyError as e:
        raise SampleFramesInputError(f"sample_frames.vsibench_file={file}: a row lacks column {e}") from None
    if not names:
        raise SampleFramesInputError(f"sample_frames.vsibench_file={file}: holds no questions")
    return names


def candidate_frames(path: Path, num_candidates: int) -> tuple[int, list[int], list[np.ndarray]]:
    """(frame count, the num_candidates evenly spaced frame indices, those frames HxWx3 uint8).
    Raises `pipelines.media.VideoError` naming the file when it cannot be read."""
    from pipelines.media import VideoError, read_frames, video_info

    total, _ = video_info(path)
    candidates = [int(p) for p in uniform_positions(total, num_candidates)]
    frames = read_frames(path, indices=candidates)
    if len(frames) != len(candidates):
        raise VideoError(path, f"gave {len(frames)} of its {len(candidates)} candidate frames")
    return total, candidates, frames


def decode_candidates(row: dict, num_candidates: int, image_size: int) -> dict:
    """Ray Data map step: row {"video", "path"} + "frames" `[S, h, w, 3]` uint8 at VGGT's input size,
    "num_frames", "candidates" (JSON list), "decode_s", "error" ("" = decoded). A video that cannot
    be read is this row's error, never the job's."""
    import json
    import time

    from modeling.vggt_model import resize_for_vggt

    start = time.perf_counter()
    try:
        total, candidates, frames = candidate_frames(Path(row["path"]), num_candidates)
        out = {"frames": resize_for_vggt(frames, image_size), "num_frames": total,
               "candidates": json.dumps(candidates), "error": ""}  # fmt: skip
    except InputError as e:  # VideoError: the message names the file
        out = {"frames": NO_FRAMES, "num_frames": 0, "candidates": "[]", "error": str(e)}
    except Exception as e:  # noqa: BLE001 - a decoder's unexpected failure on one file
        out = {"frames": NO_FRAMES, "num_frames": 0, "candidates": "[]",
               "error": f"{row['path']}: cannot be read ({type(e).__name__}: {e})"}  # fmt: skip
    return {**row, **out, "decode_s": time.perf_counter() - start}
