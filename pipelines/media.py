"""RGB frames from a video file (VSI-Bench's `{dataset}/{scene_name}.mp4`, with PyAV) or from a
folder of pre-sampled frames (the authors' `{dataset}/{scene_name}/*.png`).

`read_frames(path, k)` returns k frames (HxWx3 uint8 RGB) at evenly spaced frame indices, first and
last included, in video order; a video with fewer than k frames gives all of its frames.
`read_frames(path, indices=[...])` returns the frames at those indices (space-aware sampling).
`read_frame_folder(folder, k)` reads the folder's images in name order, thinned evenly to k.

Seek-efficient: only the sampled frames are converted to RGB, and a sample far ahead of the last
decoded frame is reached by seeking to the keyframe before it rather than decoding every frame in
between (VSI-Bench videos hold thousands of frames; 16 are used).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from data_gen.errors import InputError
from data_gen.qa.frame_selection import uniform_positions

# Decode forward instead of seeking when the next sample is at most this many frames ahead: a
# seek lands on a keyframe and decodes from there anyway, so short gaps are cheaper without one.
# The gap grows to the longest keyframe distance seen, so a seek never lands behind the frame
# already decoded (long-GOP videos are then read in one forward pass).
SEEK_GAP = 32


class VideoError(InputError):
    """A video that cannot be read; the message names the file and the problem."""

    def __init__(self, path: str | Path, problem: str):
        super().__init__(f"{path}: {problem}")
        self.path = Path(path)


def read_frames(path: str | Path, num_frames: int | None = None, *, indices: list[int] | None = None) -> list[np.ndarray]:
    """`num_frames` uniformly spaced frames of `path` (fewer when the video is shorter), or the
    frames at `indices` (in video order), as HxWx3 uint8 RGB arrays. Raises VideoError naming the
    file when it is missing or undecodable, or an index is past its end."""
    import av  # PyAV: imported here so the rest of the package does not need it

    path = Path(path)
    if (num_frames is None) == (indices is None):
        raise ValueError("give num_frames or indices")
    if num_frames is not None and num_frames < 1:
        raise ValueError(f"num_frames must be >= 1, got {num_frames}")
    if indices is not None and (not indices or min(indices) < 0):
        raise ValueError(f"indices must be a non-empty list of frame indices >= 0, got {indices}")
    if not path.is_file():
        raise VideoError(path, "no such video file")
    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise VideoError(path, "has no video stream")
            stream = container.streams.video[0]
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
    except av.FFmpegError as e:
        raise VideoError(path, f"cannot be decoded ({e})") from None
    if not frames:
        raise VideoError(path, "no frame could be decoded")
    return frames


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


def read_frame_folder(folder: str | Path, num_frames: int) -> list[np.ndarray]:
    """The images of `folder` (.png/.jpg, sorted by name) as HxWx3 uint8 RGB arrays, thinned to
    an evenly spread `num_frames` when it holds more. Raises VideoError naming the folder when it
    is missing, empty or an image cannot be read."""
    from PIL import Image, UnidentifiedImageError

    folder = Path(folder)
    if not folder.is_dir():
        raise VideoError(folder, "no such frame folder")
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise VideoError(folder, f"holds no {'/'.join(IMAGE_SUFFIXES)} frames")
    if len(files) > num_frames:
        files = [files[int(p)] for p in uniform_positions(len(files), num_frames)]
    frames = []
    for file in files:
        try:
            with Image.open(file) as img:
                frames.append(np.asarray(img.convert("RGB"), dtype=np.uint8))
        except (OSError, UnidentifiedImageError) as e:
            raise VideoError(file, f"cannot be read as an image ({e})") from None
    if len({f.shape for f in frames}) > 1:
        raise VideoError(folder, f"frames differ in size: {sorted({f.shape for f in frames})}")
    return frames
