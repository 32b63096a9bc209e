"""Frames rendered when they are read, so a ScanNet-sized scene (1,600 frames of 1296x968 colour)
is written in the memory of one frame instead of ~7 GB.

Depth is rendered at the depth size with the depth intrinsics. Colour is rendered at
`color_size / color_scale` and enlarged (bilinear) to `color_size`: a real colour stream's pixel
count and JPEG size for decode-bound benchmarks, at a fraction of the ray casting (detail is that of
the smaller render). When both sizes and intrinsics agree and `color_scale` is 1, one render gives
both, exactly the pixels `render_frames` gives.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

from data_gen.synthetic.render import RenderScene, render_frame


class RenderedFrames:
    """The frame protocol of `data_gen.scans.scan` (`ids`, `skipped`, `pose`, `color`, `depth`),
    rendering on demand; the last frame's renders are kept, so `color(i)` then `depth(i)` (how the
    writer reads) renders frame i once per size."""

    def __init__(self, scene: RenderScene, poses: np.ndarray, *, color_intrinsic: np.ndarray,
                 color_size: tuple[int, int], depth_intrinsic: np.ndarray, depth_size: tuple[int, int],
                 color_scale: int = 1):  # fmt: skip
        if color_scale < 1 or color_size[0] % color_scale or color_size[1] % color_scale:
            raise ValueError(f"color_scale {color_scale} must divide the colour size {color_size}")
        self.scene, self.poses = scene, poses
        self.color_size, self.depth_size, self.color_scale = color_size, depth_size, color_scale
        self.depth_intrinsic = depth_intrinsic
        self.render_intrinsic = _scaled(color_intrinsic, color_scale)
        self.render_size = (color_size[0] // color_scale, color_size[1] // color_scale)
        self.shared = self.render_size == depth_size and np.array_equal(self.render_intrinsic, depth_intrinsic)
        self._last: tuple[int, np.ndarray, np.ndarray] | None = None  # one frame at a time

    @property
    def ids(self) -> list[int]:
        return list(range(len(self.poses)))

    @property
    def skipped(self) -> dict[int, str]:
        return {}

    def __len__(self) -> int:
        return len(self.poses)

    def pose(self, i: int) -> np.ndarray:
        return np.asarray(self.poses[i], dtype=np.float64)

    def color(self, i: int) -> np.ndarray:
        return self._rendered(i)[0]

    def depth(self, i: int) -> np.ndarray:
        return self._rendered(i)[1]

    def _rendered(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        """(colour, depth) of frame i, rendered unless it is the last frame asked for."""
        if self._last is None or self._last[0] != i:
            pose = self.poses[i]
            color = render_frame(self.scene, pose, self.render_intrinsic, *self.render_size)
            depth = color if self.shared else render_frame(self.scene, pose, self.depth_intrinsic, *self.depth_size)
            rgb = color.color
            if self.color_scale > 1:
                rgb = np.asarray(Image.fromarray(rgb).resize(self.color_size, Image.BILINEAR))
            self._last = (i, rgb, depth.depth)
        return self._last[1], self._last[2]


def _scaled(intrinsic: np.ndarray, scale: int) -> np.ndarray:
    """The intrinsics of an image `scale` times smaller (pixel centres at integer coordinates)."""
    if scale == 1:
        return intrinsic
    k = np.array(intrinsic, dtype=np.float64)
    k[0, 0] /= scale
    k[1, 1] /= scale
    k[0, 2] = (k[0, 2] + 0.5) / scale - 0.5
    k[1, 2] = (k[1, 2] + 0.5) / scale - 0.5
    return k
