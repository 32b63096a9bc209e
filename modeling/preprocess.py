"""Frame preprocessing for both encoders (PIL + numpy; no torchvision).

One video = a list of HxWx3 uint8 RGB frames (or a [T, H, W, 3] array/tensor, or PIL images). All
frames are resized (PIL bicubic, like transformers' `Qwen2VLImageProcessorPil`) to the size
`smart_resize` picks from the first frame: sides multiples of 28 (patch 14 x merge 2), pixel count
within [min_pixels, max_pixels]. An odd frame count is padded with the last frame, so a single
image becomes two identical frames. Then:

- `pixel_values_videos`: frames / 255, Qwen-normalised (CLIP mean/std), patchified to
  `[t * h * w, 3 * 2 * 14 * 14]` with t = frames / 2 and h, w = size / 14 (Qwen's layout).
- `spatial_pixel_values`: the same frames / 255, NOT normalised (VGGT normalises inside), in the
  same patch layout, so both tensors split by `video_grid_thw` the same way; `unpatchify` turns
  a video's rows back into `[S, 3, H, W]` for VGGT.
- `video_grid_thw`: `(t, h, w)`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import torch
from PIL import Image

# OpenAI CLIP statistics, what Qwen2-VL's processors normalise with.
QWEN_IMAGE_MEAN = (0.48145466, 0.4578275, 0.40821073)
QWEN_IMAGE_STD = (0.26862954, 0.26130258, 0.27577711)


@dataclass
class FrameSpec:
    """How frames are sized and normalised. Pixel bounds are per frame.

    The 3B presets use qwen-vl-utils' video bounds (min 128*28*28, max 768*28*28 pixels per frame):
    a 640x480 frame keeps its size (476x644). Tiny caps frames at 112x112 so tests stay fast.
    """

    min_pixels: int = 128 * 28 * 28
    max_pixels: int = 768 * 28 * 28
    patch_size: int = 14
    merge_size: int = 2
    temporal_patch_size: int = 2
    image_mean: tuple[float, ...] = field(default=QWEN_IMAGE_MEAN)
    image_std: tuple[float, ...] = field(default=QWEN_IMAGE_STD)

    @property
    def factor(self) -> int:
        """Sides must be multiples of this (one merged token covers factor x factor pixels)."""
        return self.patch_size * self.merge_size


FRAME_PRESETS = {
    "tiny": FrameSpec(min_pixels=56 * 56, max_pixels=112 * 112),
    "small": FrameSpec(min_pixels=56 * 56, max_pixels=224 * 224),
    "spatial-mllm-3b": FrameSpec(),
    "qwen2.5-vl-3b": FrameSpec(),
}


def smart_resize(height: int, width: int, factor: int, min_pixels: int, max_pixels: int) -> tuple[int, int]:
    """Qwen2-VL's target size: sides rounded to multiples of `factor`, area within the bounds."""
    if max(height, width) / min(height, width) > 200:
        raise ValueError(f"aspect ratio must be below 200, got {height}x{width}")
    h_bar = round(height / factor) * factor
    w_bar = round(width / factor) * factor
    if h_bar * w_bar > max_pixels:
        beta = math.sqrt(height * width / max_pixels)
        h_bar = max(factor, math.floor(height / beta / factor) * factor)
        w_bar = max(factor, math.floor(width / beta / factor) * factor)
    elif h_bar * w_bar < min_pixels:
        beta = math.sqrt(min_pixels / (height * width))
        h_bar = math.ceil(height * beta / factor) * factor
        w_bar = math.ceil(width * beta / factor) * factor
    return h_bar, w_bar


def as_frames(video) -> list[np.ndarray]:
    """A video as a list of HxWx3 uint8 arrays; accepts arrays, tensors, PIL images or lists of them."""
    if isinstance(video, Image.Image):
        video = [video]
    if isinstance(video, torch.Tensor):
        video = video.cpu().numpy()
    if isinstance(video, np.ndarray):
        video = [video] if video.ndim == 3 else list(video)
    frames = []
    for frame in video:
        if isinstance(frame, Image.Image):
            frame = np.asarray(frame.convert("RGB"))
        elif isinstance(frame, torch.Tensor):
            frame = frame.cpu().numpy()
        frame = np.asarray(frame)
        if frame.dtype != np.uint8 or frame.ndim != 3 or frame.shape[-1] != 3:
            raise ValueError(f"each frame must be an HxWx3 uint8 RGB array, got {frame.dtype} {frame.shape}")
        frames.append(frame)
    if not frames:
        raise ValueError("a video needs at least one frame")
    return frames


def resize_frames(frames: list[np.ndarray], height: int, width: int) -> np.ndarray:
    """PIL bicubic resize of every frame to height x width: `[T, height, width, 3]` uint8."""
    out = []
    for frame in frames:
        img = Image.fromarray(frame)
        if img.size != (width, height):
            img = img.resize((width, height), resample=Image.Resampling.BICUBIC)
        out.append(np.asarray(img))
    return np.stack(out)


def patchify(frames: np.ndarray, patch: int, merge: int, temporal: int) -> np.ndarray:
    """`[T, C, H, W]` (T a multiple of `temporal`) -> `[t*h*w, C*temporal*patch*patch]`, Qwen's order:
    rows by (frame pair, merged row, merged column, row in merge, column in merge)."""
    t_all, c, h, w = frames.shape
    t, gh, gw = t_all // temporal, h // patch, w // patch
    x = frames.reshape(t, temporal, c, gh // merge, merge, patch, gw // merge, merge, patch)
    # [t, tp, C, gh/m, mh, ph, gw/m, mw, pw] -> [t, gh/m, gw/m, mh, mw, C, tp, ph, pw]
    x = x.transpose(0, 3, 6, 4, 7, 2, 1, 5, 8)
    return x.reshape(t * gh * gw, c * temporal * patch * patch)


def unpatchify(
    rows: torch.Tensor, grid_thw: tuple[int, int, int], patch: int, merge: int, temporal: int
) -> torch.Tensor:
    """Inverse of `patchify` for one video: `[t*h*w, C*temporal*patch*patch]` -> `[t*temporal, C, H, W]`."""
    t, gh, gw = (int(v) for v in grid_thw)
    c = rows.shape[1] // (temporal * patch * patch)
    x = rows.reshape(t, gh // merge, gw // merge, merge, merge, c, temporal, patch, patch)
    # [t, gh/m, gw/m, mh, mw, C, tp, ph, pw] -> [t, tp, C, gh/m, mh, ph, gw/m, mw, pw]
    x = x.permute(0, 6, 5, 1, 3, 7, 2, 4, 8)
    return x.reshape(t * temporal, c, gh * patch, gw * patch)


def patch_rows(video, spec: FrameSpec) -> tuple[np.ndarray, np.ndarray]:
    """One video -> (`[t*h*w, 3*2*14*14]` uint8 patch rows, `video_grid_thw` `(t, h, w)`): frames
    resized and patchified, not yet scaled. A quarter of the bytes of either float tensor, so
    data pipelines ship these and `pixel_values` makes both tensors where the model runs."""
    frames = as_frames(video)
    h0, w0 = frames[0].shape[:2]
    height, width = smart_resize(h0, w0, spec.factor, spec.min_pixels, spec.max_pixels)
    resized = resize_frames(frames, height, width)  # [T, H, W, 3] uint8
    remainder = len(resized) % spec.temporal_patch_size
    if remainder:  # repeat the last frame; a lone image becomes a 2-frame still video
        pad = np.repeat(resized[-1:], spec.temporal_patch_size - remainder, axis=0)
        resized = np.concatenate([resized, pad], axis=0)
    chw = resized.transpose(0, 3, 1, 2)  # [T, 3, H, W]
    rows = patchify(chw, spec.patch_size, spec.merge_size, spec.temporal_patch_size)  # uint8
    grid = (len(resized) // spec.temporal_patch_size, height // spec.patch_size, width // spec.patch_size)
    return rows, np.asarray(grid, dtype=np.int64)


def pixel_values(rows: np.ndarray, spec: FrameSpec) -> dict[str, np.ndarray]:
    """uint8 patch rows -> `pixel_values_videos` (Qwen-normalised) and `spatial_pixel_values` (/255),
    both float32 in the rows' layout."""
    # A uint8 pixel has 256 values: look the results up instead of computing them per pixel. The
    # tables use transformers' arithmetic (float64 multiply by 1/255, then float32; then
    # (x - mean) / std in float32), so values equal Qwen2VLImageProcessorPil's bit for bit.
    unit_table = (np.arange(256, dtype=np.float64) * (1 / 255)).astype(np.float32)  # [256]
    mean = np.asarray(spec.image_mean, dtype=np.float32)[:, None]
    std = np.asarray(spec.image_std, dtype=np.float32)[:, None]
    norm_table = (unit_table[None, :] - mean) / std  # [3, 256]
    per_channel = rows.shape[1] // 3  # columns are channel-major: (C, tp, ph, pw)
    normalised = np.empty(rows.shape, dtype=np.float32)
    for c in range(3):
        cols = slice(c * per_channel, (c + 1) * per_channel)
        normalised[:, cols] = norm_table[c][rows[:, cols]]
    return {"pixel_values_videos": normalised, "spatial_pixel_values": unit_table[rows]}


def preprocess_video(video, spec: FrameSpec) -> dict[str, np.ndarray]:
    """One video -> `pixel_values_videos`, `spatial_pixel_values` (both float32, same shape) and
    `video_grid_thw` `(t, h, w)`; see the module docstring."""
    rows, grid = patch_rows(video, spec)
    return {**pixel_values(rows, spec), "video_grid_thw": grid}
