"""Small videos written by the tests themselves (PyAV, libx264 at near-lossless quality)."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def frame_colour(i: int) -> np.ndarray:
    """A distinct flat RGB colour per frame index, far apart for neighbouring indices."""
    return np.array([(40 + 5 * i) % 256, (220 - 3 * i) % 256, (17 * i + 60) % 256], dtype=np.uint8)


def synthetic_frames(n: int, width: int = 64, height: int = 48) -> list[np.ndarray]:
    """Frame i: flat colour_i with a white 8x8 square at x = 2*i (so the order shows twice)."""
    frames = []
    for i in range(n):
        img = np.broadcast_to(frame_colour(i), (height, width, 3)).copy()
        x = (2 * i) % (width - 8)
        img[8:16, x : x + 8] = 255
        frames.append(img)
    return frames


def write_mp4(path: Path, frames: list[np.ndarray], fps: int = 24, gop: int = 12) -> Path:
    import av

    path.parent.mkdir(parents=True, exist_ok=True)
    h, w = frames[0].shape[:2]
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = w, h, "yuv420p"
        stream.options = {"crf": "0", "preset": "ultrafast", "g": str(gop)}  # keyframe every `gop`
        for img in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return path
