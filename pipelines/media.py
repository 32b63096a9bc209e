"""Frames from every kind of media a record can point at, for training and evaluation alike:

- `video`: an mp4 (any container PyAV opens), decoded with PyAV at given or evenly spaced indices;
- `folder`: a folder of pre-extracted frames (.png/.jpg in name order, e.g. the authors' pre-sampled
  `{dataset}/{scene_name}/*.png`);
- `images`: image files listed by the record (a Qwen-VL `image` list), shown as one video's frames;
- `scan`: a ScanNet scene folder (every layout `data_gen.scans.scannet.read_scan` reads).

`load_clip(kind, paths, ids, rule)` returns a `Clip`: HxWx3 uint8 RGB frames in video order and,
for a video, the rate of the sampled frames (`fps`, what `second_per_grid_ts` is made from). A clip
decodes only the frames it shows. Frames come from `ids` when the record gives them, else from
`rule` (`FrameRule`): for a video qwen-vl-finetune's rule (one frame per `interval_s` seconds,
clamped to [min_frames, num_frames], `linspace(0, n - 1, k)` cast to int, duplicates dropped), for
a scan or folder `num_frames` evenly spaced, for images all of them (thinned evenly).
`media_problem(kind, paths)` says cheaply (names and container headers, no decoding) whether the
media is there and readable, for checks before any work.

Seek-efficient: only the sampled frames of a video are converted to RGB, and a sample far ahead of
the last decoded frame is reached by seeking to the keyframe before it rather than decoding every
frame in between (VSI-Bench videos hold thousands of frames; 16 are used).
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from data_gen.errors import InputError
from data_gen.qa.frame_selection import uniform_indices, uniform_positions
from data_gen.scans.scan import ScanError

# Decode forward instead of seeking when the next sample is at most this many frames ahead: a
# seek lands on a keyframe and decodes from there anyway, so short gaps are cheaper without one.
# The gap grows to the longest keyframe distance seen, so a seek never lands behind the frame
# already decoded (long-GOP videos are then read in one forward pass).
SEEK_GAP = 32


class VideoError(InputError):
    """Media that cannot be read (a video, frame folder, image or scan); the message names the file
    and the problem."""

    def __init__(self, path: str | Path, problem: str):
        super().__init__(f"{path}: {problem}")
        self.path = Path(path)


def read_frames(path: str | Path, num_frames: int | None = None, *, indices: list[int] | None = None) -> list[np.ndarray]:
    """`num_frames` uniformly spaced frames of `path` (fewer when the video is shorter), or the
    frames at `indices` (in video order), as HxWx3 uint8 RGB arrays. Raises VideoError naming the
    file when it is missing or undecodable, or an index is past its end."""
    path = Path(path)
    if (num_frames is None) == (indices is None):
        raise ValueError("give num_frames or indices")
    if num_frames is not None and num_frames < 1:
        raise ValueError(f"num_frames must be >= 1, got {num_frames}")
    if indices is not None and (not indices or min(indices) < 0):
        raise ValueError(f"indices must be a non-empty list of frame indices >= 0, got {indices}")
    with _video_stream(path) as (container, stream):
        stream.thread_type = "AUTO"
        total = _frame_count(container, stream)
        if total == 0:
            raise VideoError(path, "has no frames")
        if indices is None:
            targets = [int(p) for p in uniform_positions(total, num_frames)]
        else:
            targets = sorted({int(i) for i in indices})
            if targets[-1] >= total:
                raise VideoError(path, f"has {total} frames; frame index {targets[-1]} asked for")
        frames = _decode_at(container, stream, targets)
    if not frames:
        raise VideoError(path, "no frame could be decoded")
    return frames


@contextlib.contextmanager
def _video_stream(path: Path):
    """(container, its first video stream), open for the `with` block. Raises VideoError naming
    the file when it is missing, has no video stream, or PyAV fails on it (inside the block too)."""
    import av  # PyAV: imported here so the rest of the package does not need it

    if not path.is_file():
        raise VideoError(path, "no such video file")
    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise VideoError(path, "has no video stream")
            yield container, container.streams.video[0]
    except av.FFmpegError as e:
        raise VideoError(path, f"cannot be decoded ({e})") from None


def _frame_count(container, stream) -> int:
    """Frames in the stream: the container's count (mp4 stores it), else count packets (cheap:
    demuxing does not decode), then rewind."""
    if stream.frames:
        return int(stream.frames)
    count = sum(1 for packet in container.demux(stream) if packet.size)
    container.seek(0, stream=stream)
    return count


def _decode_at(container, stream, targets: list[int]) -> list[np.ndarray]:
    """The frames at the given (sorted) indices. An index is the frame's position in presentation
    order, derived from its timestamp and the stream's frame rate; a stream without timestamps or
    rate is decoded from the start, counting frames."""
    rate = stream.average_rate or stream.guessed_rate
    time_base = stream.time_base
    start = stream.start_time or 0
    timed = bool(rate) and time_base is not None

    def index_of(frame, counter: int) -> int:
        if not timed or frame.pts is None:
            return counter
        return round(float((frame.pts - start) * time_base * rate))

    out: list[np.ndarray] = []
    decoded = None  # the iterator of decoded frames since the last seek
    position = -1  # index of the last decoded frame
    gap = SEEK_GAP
    last = None
    for target in targets:
        seeked = decoded is None or (timed and target - position > gap)
        if seeked:
            if timed:
                # backward=True: the keyframe at or before the target; decode forward from there.
                container.seek(start + int(target / rate / time_base), stream=stream, backward=True)
                position = -1
            decoded = iter(container.decode(stream))
        frame = None
        for frame in decoded:
            position = index_of(frame, position + 1)
            if seeked:
                gap, seeked = max(gap, target - position), False  # how far back the keyframe was
            if position >= target:
                break
        else:
            frame = None
        if frame is None:  # the stream ended early (its count overstated): repeat the last frame
            if last is None:
                break
            out.append(last)
            continue
        last = frame.to_ndarray(format="rgb24")  # [H, W, 3] uint8
        out.append(last)
    return out


IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")


def frame_files(folder: str | Path) -> list[Path]:
    """The .png/.jpg files of a frame folder, sorted by name. Raises VideoError naming the folder
    when it is missing or holds none."""
    folder = Path(folder)
    if not folder.is_dir():
        raise VideoError(folder, "no such frame folder")
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise VideoError(folder, f"holds no {'/'.join(IMAGE_SUFFIXES)} frames")
    return files


def read_images(files: list[Path]) -> list[np.ndarray]:
    """Image files as HxWx3 uint8 RGB arrays, in the order given; all of one size. Raises
    VideoError naming the file that cannot be read."""
    from PIL import Image, UnidentifiedImageError

    frames = []
    for file in files:
        try:
            with Image.open(file) as img:
                frames.append(np.asarray(img.convert("RGB"), dtype=np.uint8))
        except (OSError, UnidentifiedImageError) as e:
            raise VideoError(file, f"cannot be read as an image ({e})") from None
    if len({f.shape for f in frames}) > 1:
        raise VideoError(Path(files[0]).parent, f"frames differ in size: {sorted({f.shape for f in frames})}")
    return frames


def read_frame_folder(folder: str | Path, num_frames: int) -> list[np.ndarray]:
    """The images of `folder` (.png/.jpg, sorted by name) as HxWx3 uint8 RGB arrays, thinned to
    an evenly spread `num_frames` when it holds more. Raises VideoError naming the folder when it
    is missing, empty or an image cannot be read."""
    files = frame_files(folder)
    if len(files) > num_frames:
        files = [files[int(p)] for p in uniform_positions(len(files), num_frames)]
    return read_images(files)


# --- videos: length and qwen-vl-finetune's frame rule ---


def video_info(path: str | Path) -> tuple[int, float]:
    """(frames, average frames per second) of a video, from its container (no frame decoded; a
    stream without a frame count is demuxed, not decoded). Raises VideoError naming the file."""
    path = Path(path)
    with _video_stream(path) as (container, stream):
        total = _frame_count(container, stream)
        rate = stream.average_rate or stream.guessed_rate
    if total == 0:
        raise VideoError(path, "has no frames")
    if not rate or float(rate) <= 0:
        raise VideoError(path, "has no frame rate")
    return total, float(rate)


def qwen_vl_indices(total: int, fps: float, *, interval_s: float, min_frames: int, max_frames: int) -> list[int]:
    """qwen-vl-finetune's frames of a `total`-frame video at `fps`: k = round(duration / interval_s)
    clamped to [min_frames, max_frames], at `linspace(0, total - 1, k)` cast to int (truncated, as
    numpy's dtype=int does), duplicates dropped (a video shorter than k frames gives fewer)."""
    duration = total / fps
    k = min(max(round(duration / interval_s), min_frames), max_frames)
    return [int(i) for i in np.unique(np.linspace(0, total - 1, k).astype(np.int64))]


# --- scans ---


def scan_frame_ids(scene_dir: Path) -> list[int]:
    """The frame ids of a scan folder that have a colour image, from file names (or the `.sens`
    header), without decoding: every layout `read_scan` reads. Empty for a missing or unreadable
    scene."""
    from data_gen.scans.scannet import color_frame_ids

    if not Path(scene_dir).is_dir():
        return []
    try:
        return color_frame_ids(scene_dir)
    except ScanError:
        return []


def missing_frames(scene_dir: Path, ids: list[int]) -> list[int]:
    """Which of `ids` have no colour image in the scan folder (see `scan_frame_ids`); a missing or
    unreadable scene misses all."""
    have = set(scan_frame_ids(scene_dir))
    return [i for i in ids if i not in have]


def scan_frames(scene_dir: Path, ids: list[int]) -> list[np.ndarray]:
    """Colour frames `ids` of the scan folder `scene_dir` as HxWx3 uint8 RGB arrays, in the order
    given, reading those images alone (`data_gen.scans.scannet.read_color_frames`: no mesh,
    annotations, poses or depth). Raises ScanError (an InputError naming the file), OSError or
    ValueError when they cannot be read."""
    from data_gen.scans.scannet import read_color_frames

    return [np.asarray(frame, dtype=np.uint8) for frame in read_color_frames(scene_dir, ids)]


# --- one record's frames ---

MEDIA_KINDS = ("scan", "video", "folder", "images")


@dataclass(frozen=True)
class FrameRule:
    """Which frames to show when a record names none, and the frame rate to report for a video.

    num_frames: at most this many frames (qwen-vl-finetune's video_max_frames; the stage's
    `num_frames`). min_frames: at least this many from a video (video_min_frames). interval_s: one
    video frame per this many seconds before clamping (base_interval). fps: the rate
    `second_per_grid_ts` is made from; None = the sampled frames' own rate, frames / duration."""

    num_frames: int = 16
    min_frames: int = 16
    interval_s: float = 2.0
    fps: float | None = None


@dataclass
class Clip:
    """A record's frames (HxWx3 uint8 RGB, video order) and, for a video, the rate they were
    sampled at (frames per second; None for scans, folders and images, whose timing is unknown)."""

    frames: list[np.ndarray]
    fps: float | None = None


def load_clip(kind: str, paths: list[str], ids: list[int], rule: FrameRule) -> Clip:
    """The frames of one record's media (`kind` in MEDIA_KINDS; `paths`: the video, folder or scan,
    or the image files), at `ids` (frame indices of the video or scan, positions in the folder's
    sorted files) when given, else as `rule` says. Raises VideoError naming the file."""
    ids = [int(i) for i in ids]
    if kind == "video":
        path = Path(paths[0])
        total, avg_fps = video_info(path)
        if not ids:
            ids = qwen_vl_indices(total, avg_fps, interval_s=rule.interval_s, min_frames=rule.min_frames,
                                  max_frames=rule.num_frames)  # fmt: skip
        frames = read_frames(path, indices=ids)
        return Clip(frames, rule.fps or len(set(ids)) / (total / avg_fps))  # the authors' len(frame_idx) / duration
    if kind == "folder":
        files = frame_files(paths[0])
        if ids:
            if max(ids) >= len(files):
                raise VideoError(paths[0], f"holds {len(files)} frames; frame {max(ids)} asked for")
            files = [files[i] for i in ids]
        elif len(files) > rule.num_frames:
            files = [files[int(p)] for p in uniform_positions(len(files), rule.num_frames)]
        return Clip(read_images(files))
    if kind == "images":
        files = [Path(p) for p in paths]
        if len(files) > rule.num_frames:
            files = [files[int(p)] for p in uniform_positions(len(files), rule.num_frames)]
        return Clip(read_images(files))
    if kind == "scan":
        scene = Path(paths[0])
        if not ids:
            ids = uniform_indices(scan_frame_ids(scene), rule.num_frames)
        if not ids:
            raise VideoError(scene, "no scan frames")
        try:
            return Clip(scan_frames(scene, ids))  # missing frames are found by its one listing
        except ScanError as e:
            raise VideoError(scene, e.problem) from None
        except (OSError, ValueError, KeyError, IndexError) as e:
            raise VideoError(scene, f"cannot read frames {ids} ({e})") from None
    raise ValueError(f"media kind must be one of {MEDIA_KINDS}, got {kind!r}")


def media_problem(kind: str, paths: list[str], ids: list[int]) -> str | None:
    """What keeps this media from being read, found cheaply (file names, scan listings, video
    container headers; nothing decoded), or None. Frames that cannot be decoded although the
    files are there are found when the clip is loaded."""
    try:
        if kind == "video":
            total, _ = video_info(paths[0])
            if ids and max(ids) >= total:
                return f"{paths[0]}: has {total} frames; frame index {max(ids)} asked for"
        elif kind == "folder":
            files = frame_files(paths[0])
            if ids and max(ids) >= len(files):
                return f"{paths[0]}: holds {len(files)} frames; frame {max(ids)} asked for"
        elif kind == "images":
            lost = [p for p in paths if not Path(p).is_file()]
            if lost:
                return f"{lost[0]}: no such image file" + (f" (and {len(lost) - 1} more)" if len(lost) > 1 else "")
        elif kind == "scan":
            if not Path(paths[0]).is_dir():
                return f"{paths[0]}: no such scan folder"
            lost = missing_frames(Path(paths[0]), ids) if ids else []
            if lost or not scan_frame_ids(Path(paths[0])):
                return f"{paths[0]}: frames {lost[:5]} missing" if lost else f"{paths[0]}: no colour frames"
        else:
            return f"unknown media kind {kind!r}"
    except VideoError as e:
        return str(e)
    return None
