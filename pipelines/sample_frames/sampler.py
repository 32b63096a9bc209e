"""One video's candidates -> VGGT's cameras and depth -> the space-aware choice.

`FrameSampler` is the Ray Data actor: one VGGT copy (GPU when the actor has one), a video's
candidates batched into one forward (or `frames_per_forward` anchored chunks), the predictions
turned into numpy, and `data_gen.qa.frame_selection.space_aware_positions` choosing the frames,
the same selection a scan's true depth and poses go through. `sample_positions` is the same
work on one video in-process (tests and the benchmark compare the job with it).
"""

from __future__ import annotations

import contextlib
import json
import time
from dataclasses import dataclass

import numpy as np

from data_gen.qa.frame_selection import camera_to_world, space_aware_positions


@dataclass
class Timings:
    """Seconds spent per phase on one video."""

    aggregator: float = 0.0
    heads: float = 0.0
    selection: float = 0.0
    forwards: int = 0


def predicted_geometry(pred: dict, image_hw: tuple[int, int]) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """VGGT's outputs for one video (B = 1) -> numpy (depth [S, H, W], confidence [S, H, W],
    camera-to-world [S, 4, 4], intrinsics [S, 3, 3]), as the frame selection takes them."""
    from modeling.cameras import pose_encoding_to_cameras

    extrinsics, intrinsics = pose_encoding_to_cameras(pred["pose_enc"].float(), image_hw)
    depth = pred["depth"][0, ..., 0].float().cpu().numpy()
    conf = pred["depth_conf"][0].float().cpu().numpy()
    return depth, conf, camera_to_world(extrinsics[0].cpu().numpy()), intrinsics[0].cpu().numpy()


def run_vggt(model, images, frames_per_forward: int, autocast_dtype=None, timings: Timings | None = None) -> dict:
    """VGGT on one video's frames `[1, S, 3, H, W]` (on the model's device): one forward, or
    anchored chunks merged into frame 0's coordinates (`modeling.vggt_model.merge_anchored`)."""
    import torch

    from modeling.vggt_model import anchored_chunks, merge_anchored

    timings = timings or Timings()
    device = images.device

    def sync() -> None:
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    chunks = anchored_chunks(images.shape[1], frames_per_forward)
    predictions = []
    with torch.inference_mode():
        for chunk in chunks:
            start = time.perf_counter()
            autocast = torch.autocast(device.type, dtype=autocast_dtype) if autocast_dtype else contextlib.nullcontext()
            with autocast:
                layers = model.aggregate(images if len(chunks) == 1 else images[:, chunk])
            sync()
            middle = time.perf_counter()
            predictions.append(model.predict(layers, images.shape[-2:]))
            del layers
            sync()
            timings.aggregator += middle - start
            timings.heads += time.perf_counter() - middle
            timings.forwards += 1
    return predictions[0] if len(chunks) == 1 else merge_anchored(chunks, predictions)


def select_from_predictions(pred: dict, image_hw, sf, timings: Timings | None = None) -> list[int]:
    """Positions (into the candidates) chosen from VGGT's predictions, with `sf`'s selection settings."""
    start = time.perf_counter()
    depth, conf, cam_to_world, intrinsics = predicted_geometry(pred, tuple(image_hw))
    positions = space_aware_positions(
        depth, cam_to_world, intrinsics, conf, num_frames=sf.num_frames, depth_stride=sf.depth_stride,
        conf_threshold=sf.conf_threshold, voxel_divisions=sf.voxel_divisions, pad=sf.pad_frames,
    )  # fmt: skip
    if timings is not None:
        timings.selection += time.perf_counter() - start
    return positions


def to_images(frames: np.ndarray, device):
    """`[S, h, w, 3]` uint8 -> `[1, S, 3, h, w]` float in [0, 1] on `device`."""
    import torch

    images = torch.from_numpy(np.ascontiguousarray(frames)).to(device)
    return (images.permute(0, 3, 1, 2).float() / 255.0)[None]


def sample_positions(model, frames: np.ndarray, sf, timings: Timings | None = None) -> list[int]:
    """The whole choice for one video's resized candidates `[S, h, w, 3]` uint8, in this process."""
    device = next(model.parameters()).device
    images = to_images(frames, device)
    autocast = _autocast_dtype(sf.precision, device)
    pred = run_vggt(model, images, sf.frames_per_forward, autocast, timings)
    return select_from_predictions(pred, images.shape[-2:], sf, timings)


def _autocast_dtype(precision: str, device):
    import torch

    return torch.bfloat16 if precision == "bf16" and device.type == "cuda" else None


def load_sampler_model(sf, seed: int, device: str):
    """The VGGT a `SampleFramesConfig` asks for, in eval mode on `device` (fp32 weights)."""
    from modeling.vggt_model import load_vggt

    return load_vggt(sf.preset, path=sf.weights, device=device, seed=seed)


class FrameSampler:
    """A VGGT replica (a Ray Data actor). `sf`: the `sample_frames` settings as a dict."""

    def __init__(self, sf: dict, seed: int):
        import torch

        from pipelines.config.sample_frames import SampleFramesConfig

        self.sf = SampleFramesConfig.model_validate(sf)
        self.device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
        self.model = load_sampler_model(self.sf, seed, str(self.device))

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        import torch

        out = {k: [] for k in ("video", "path", "num_frames", "candidates", "frame_indices", "error", "timings")}
        for i in range(len(batch["video"])):
            error = str(batch["error"][i])
            candidates = json.loads(str(batch["candidates"][i]))
            timings = Timings()
            indices: list[int] = []
            if not error:
                try:
                    positions = sample_positions(self.model, batch["frames"][i], self.sf, timings)
                    indices = [candidates[p] for p in positions]
                except torch.cuda.OutOfMemoryError:  # the video's error (the hint says what to change)
                    error = (f"{batch['path'][i]}: VGGT ran out of GPU memory on {len(candidates)} candidates; "
                             "set sample_frames.frames_per_forward (e.g. 32) or a smaller sample_frames.image_size")  # fmt: skip
                    torch.cuda.empty_cache()
            times = {"decode": float(batch["decode_s"][i]), "aggregator": timings.aggregator,
                     "heads": timings.heads, "selection": timings.selection, "forwards": timings.forwards}  # fmt: skip
            for key, value in (("video", batch["video"][i]), ("path", batch["path"][i]),
                               ("num_frames", int(batch["num_frames"][i])), ("candidates", json.dumps(candidates)),
                               ("frame_indices", json.dumps(indices)), ("error", error),
                               ("timings", json.dumps(times))):  # fmt: skip
                out[key].append(value)
        return {k: np.asarray(v, dtype=np.int64 if k == "num_frames" else object) for k, v in out.items()}
