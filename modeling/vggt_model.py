"""VGGT with its camera and depth heads: cameras and depth maps from raw frames.

`build_vggt(preset)` gives the model random-initialised (`tiny` and `small` for CPU tests; `vggt-1b`,
alias `spatial-mllm-3b`, the released size); `load_vggt(path)` fills the 1B size from a local VGGT-1B
folder or file (`check_vggt_checkpoint` checks one by name and shape without reading its tensors).
Its forward returns, as VGGT's own model does, `pose_enc` `[B, S, 9]` (the camera
head's last pass), `depth` `[B, S, H, W, 1]` and `depth_conf` `[B, S, H, W]`; `modeling.cameras`
turns them into matrices and world points. The point and track heads are not built: a released
checkpoint's `point_head.*` / `track_head.*` tensors are skipped, by name.

Precision: the aggregator follows the caller's autocast (bf16 on a GPU is what VGGT runs); the heads
always run with autocast off, on tokens cast to their parameters' dtype (fp32 unless the model
was cast), as VGGT's own forward does.
"""

from __future__ import annotations

import dataclasses
import logging
import os
from pathlib import Path

import numpy as np
import torch
from torch import nn

from modeling.config import VGGT_HEAD_PRESETS, VGGT_PRESETS, VGGTConfig, VGGTHeadsConfig
from modeling.vggt import VGGTAggregator, name_list, read_tensors
from modeling.vggt_heads import CameraHead, DPTHead

logger = logging.getLogger(__name__)

VGGT_MODEL_PRESETS = tuple(VGGT_HEAD_PRESETS)  # tiny, small, spatial-mllm-3b, vggt-1b
UNUSED_HEADS = ("point_head.", "track_head.")  # released heads this model does not build


class VGGT(nn.Module):
    """Aggregator + camera head + depth head; parameter names are VGGT-1B's (`aggregator.*`,
    `camera_head.*`, `depth_head.*`)."""

    def __init__(self, config: VGGTConfig, heads: VGGTHeadsConfig):
        super().__init__()
        if max(heads.dpt_layers) >= config.depth:
            raise ValueError(f"dpt_layers {heads.dpt_layers} reach past the aggregator's {config.depth} layers")
        self.config, self.heads = config, heads
        self.aggregator = VGGTAggregator(config)
        self.camera_head = CameraHead(config.out_dim, heads)
        self.depth_head = DPTHead(config.out_dim, heads, config.patch_size)

    def forward(self, images: torch.Tensor, *, frames_chunk: int = 8) -> dict[str, torch.Tensor]:
        """images `[B, S, 3, H, W]` in [0, 1], H and W multiples of 14. `frames_chunk`: frames the
        depth head decodes at a time (memory only; 0 = all at once). Returns `pose_enc` `[B, S, 9]`,
        `depth` `[B, S, H, W, 1]`, `depth_conf` `[B, S, H, W]`."""
        layers = self.aggregate(images)
        return self.predict(layers, images.shape[-2:], frames_chunk=frames_chunk)

    def needed_layers(self) -> list[int]:
        """The aggregator layers the heads read: the depth head's four and the last."""
        return sorted({*self.heads.dpt_layers, self.config.depth - 1})

    def aggregate(self, images: torch.Tensor) -> dict[int, torch.Tensor]:
        """The aggregator's outputs the heads need, `{layer: [B, S, 5 + P, C]}` (the others are
        never kept)."""
        return self.aggregator.selected_layers(images, self.needed_layers())

    def predict(self, layers: dict[int, torch.Tensor], image_hw, *, frames_chunk: int = 8) -> dict[str, torch.Tensor]:
        """Both heads on `aggregate`'s outputs, for images of size `image_hw` = (H, W)."""
        dtype = self.camera_head.embed_pose.weight.dtype
        layers = {i: t.to(dtype) for i, t in layers.items()}
        with torch.autocast(device_type=next(iter(layers.values())).device.type, enabled=False):
            pose_enc = self.camera_head(layers[self.config.depth - 1])[-1]  # [B, S, 9]
            depth, conf = self.depth_head(
                layers, tuple(image_hw), self.config.patch_start_idx, frames_chunk=frames_chunk
            )
        return {"pose_enc": pose_enc, "depth": depth, "depth_conf": conf}


def _configs(preset: str) -> tuple[VGGTConfig, VGGTHeadsConfig]:
    if preset not in VGGT_HEAD_PRESETS:
        raise ValueError(f"unknown VGGT preset {preset!r}; choose one of {VGGT_MODEL_PRESETS}")
    return dataclasses.replace(VGGT_PRESETS[preset]), dataclasses.replace(VGGT_HEAD_PRESETS[preset])


def build_vggt(preset: str = "vggt-1b") -> VGGT:
    """VGGT with camera and depth heads, random-initialised: `tiny`, `small`, `vggt-1b` (= the
    `spatial-mllm-3b` encoder). Build the 1B size inside `with torch.device("meta"):` when only
    names and shapes are needed (its fp32 weights are ~4.4 GB)."""
    return VGGT(*_configs(preset))


def vggt_checkpoint_files(path: str | os.PathLike) -> list[Path]:
    """The files of a VGGT checkpoint: the file itself (`.safetensors`, `.pt`, `.bin`), or a
    folder's `model.safetensors` (or shards, or `pytorch_model*.bin`), else its one `.pt` file (the
    layout of VGGT-1B's release)."""
    from modeling.checkpoint_io import checkpoint_files

    path = Path(path)
    if path.is_file():
        return [path]
    if not path.is_dir():
        raise FileNotFoundError(f"no VGGT checkpoint at {path}")
    try:
        return checkpoint_files(path)
    except FileNotFoundError:
        pt_files = sorted(path.glob("*.pt"))
        if len(pt_files) != 1:
            raise FileNotFoundError(f"no model.safetensors, pytorch_model*.bin or single .pt weights in {path}") from None
        return pt_files


def checkpoint_shapes(path: str | os.PathLike) -> dict[str, tuple[int, ...]]:
    """Name -> shape of every tensor of a VGGT checkpoint, reading no tensor data (safetensors
    headers; `.pt`/`.bin` memory-mapped), so the 5 GB release is checked in a moment."""
    shapes: dict[str, tuple[int, ...]] = {}
    for file in vggt_checkpoint_files(path):
        if file.suffix == ".safetensors":
            from safetensors import safe_open

            with safe_open(str(file), framework="pt") as f:
                shapes.update({k: tuple(f.get_slice(k).get_shape()) for k in f.keys()})
        else:
            try:
                state = torch.load(file, map_location="cpu", weights_only=True, mmap=True)
            except RuntimeError:  # the legacy (non-zip) format cannot be mapped
                state = torch.load(file, map_location="cpu", weights_only=True)
            state = state["model"] if isinstance(state, dict) and isinstance(state.get("model"), dict) else state
            shapes.update({k: tuple(v.shape) for k, v in state.items()})
    return shapes


def checkpoint_problems(expected: dict[str, tuple[int, ...]], found: dict[str, tuple[int, ...]], source) -> str | None:
    """What keeps `found` (a checkpoint's names and shapes) from filling a model with `expected`:
    missing, unexpected (point/track heads aside) and mis-shaped names, all listed; None when it fits."""
    found = {k: v for k, v in found.items() if not k.startswith(UNUSED_HEADS)}
    missing = sorted(set(expected) - set(found))
    unexpected = sorted(set(found) - set(expected))
    wrong = sorted(k for k in set(found) & set(expected) if tuple(found[k]) != tuple(expected[k]))
    if not (missing or unexpected or wrong):
        return None
    lines = [f"VGGT weights in {os.fspath(source)} do not match the model:"]
    if missing:
        lines.append(f"  missing ({len(missing)}): {name_list(missing)}")
    if unexpected:
        lines.append(f"  unexpected ({len(unexpected)}): {name_list(unexpected)}")
    if wrong:
        lines.append(f"  shape mismatch ({len(wrong)}): "
                     + name_list([f"{k} {tuple(found[k])} vs {tuple(expected[k])}" for k in wrong]))  # fmt: skip
    return "\n".join(lines)


def check_vggt_checkpoint(preset: str, path: str | os.PathLike) -> None:
    """Raise ValueError (listing every problem) unless `path` fills `preset`'s VGGT exactly."""
    with torch.device("meta"):
        expected = {k: tuple(v.shape) for k, v in build_vggt(preset).state_dict().items()}
    problem = checkpoint_problems(expected, checkpoint_shapes(path), path)
    if problem:
        raise ValueError(problem)


def load_vggt_weights(model: VGGT, path: str | os.PathLike, *, dtype: torch.dtype = torch.float32) -> VGGT:
    """Assign a VGGT-1B checkpoint's `aggregator.*`, `camera_head.*` and `depth_head.*` tensors to
    `model` (which may sit on the meta device: tensors are assigned, not copied). `point_head.*` and
    `track_head.*` are skipped; any other missing, unexpected or mis-shaped name raises one
    ValueError listing them all."""
    tensors: dict[str, torch.Tensor] = {}
    for file in vggt_checkpoint_files(path):
        tensors.update(read_tensors(file))
    skipped = [k for k in tensors if k.startswith(UNUSED_HEADS)]
    state = {k: v for k, v in tensors.items() if not k.startswith(UNUSED_HEADS)}
    expected = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    problem = checkpoint_problems(expected, {k: tuple(v.shape) for k, v in state.items()}, path)
    if problem:
        raise ValueError(problem)
    if skipped:
        logger.info("skipped %d point/track-head tensors of %s (not built)", len(skipped), path)
    state = {k: v.to(dtype) if v.is_floating_point() else v for k, v in state.items()}
    model.load_state_dict(state, strict=True, assign=True)
    return model


def load_vggt(
    preset: str = "vggt-1b", *, path: str | os.PathLike | None = None, dtype: str | torch.dtype = torch.float32,
    device: str | torch.device | None = None, seed: int | None = None,
) -> VGGT:  # fmt: skip
    """A VGGT in eval mode: `preset`'s sizes, weights from `path` (a VGGT-1B folder or file) or,
    without one, random-initialised (`seed` makes that reproducible without touching the global
    RNG). `dtype`: parameters' dtype (`float32`/`fp32`, `bfloat16`/`bf16`, or a torch dtype)."""
    dtype = {"fp32": torch.float32, "float32": torch.float32, "bf16": torch.bfloat16,
             "bfloat16": torch.bfloat16}.get(dtype, dtype) if isinstance(dtype, str) else dtype  # fmt: skip
    if not isinstance(dtype, torch.dtype):
        raise ValueError(f"unknown dtype {dtype!r}; use fp32 or bf16")
    if path is not None:
        with torch.device("meta"):
            model = build_vggt(preset)
        model = load_vggt_weights(model, path, dtype=dtype)
    else:
        with torch.random.fork_rng(devices=[]):
            if seed is not None:
                torch.manual_seed(seed)
            model = build_vggt(preset)
        model.to(dtype)
    if device is not None:
        model.to(device)
    return model.eval()


# --- inputs: frames as VGGT sees them ---


def vggt_input_size(height: int, width: int, image_size: int = 518, patch_size: int = 14) -> tuple[int, int, int]:
    """VGGT's preprocessing of an HxW frame: resized to width `image_size`, height in proportion
    rounded to a multiple of the patch size, then centre-cropped to at most `image_size`. Returns
    (resized height, cropped height, width)."""
    resized = max(patch_size, round(height * image_size / width / patch_size) * patch_size)
    return resized, min(resized, image_size), image_size


def resize_for_vggt(frames, image_size: int = 518, patch_size: int = 14) -> np.ndarray:
    """HxWx3 uint8 RGB frames (one size) -> `[S, h, w, 3]` uint8 as VGGT takes them (bicubic, see
    `vggt_input_size`); divide by 255 for the model's [0, 1] input."""
    from PIL import Image

    height, width = frames[0].shape[:2]
    resized, cropped, w = vggt_input_size(height, width, image_size, patch_size)
    top = (resized - cropped) // 2
    out = np.empty((len(frames), cropped, w, 3), dtype=np.uint8)
    for i, frame in enumerate(frames):
        img = np.asarray(Image.fromarray(np.asarray(frame, dtype=np.uint8)).resize((w, resized), Image.Resampling.BICUBIC))
        out[i] = img[top : top + cropped]
    return out


# --- many frames: anchored chunks ---


def anchored_chunks(num_frames: int, frames_per_forward: int) -> list[list[int]]:
    """Frame lists for forwards of at most `frames_per_forward` frames, each starting with frame 0
    (VGGT's world frame is its first frame's camera, so every chunk shares it); the other frames are
    dealt out in turn (chunk i takes frames 1 + i, 1 + i + n, ...), so that every chunk spans the
    whole video and overlaps frame 0's view and the other chunks. 0, or a size that holds every
    frame: one forward."""
    if frames_per_forward <= 0 or frames_per_forward >= num_frames:
        return [list(range(num_frames))]
    if frames_per_forward < 2:
        raise ValueError("frames_per_forward must be 0 or >= 2 (the shared first frame plus at least one)")
    chunks = -(-(num_frames - 1) // (frames_per_forward - 1))  # ceil: chunks needed for the other frames
    return [[0, *range(1 + i, num_frames, chunks)] for i in range(chunks)]


def merge_anchored(chunks: list[list[int]], predictions: list[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    """One prediction for every frame from the forwards over `anchored_chunks` (B = 1 each).

    Predictions are up to scale, and each forward picks its own: chunk i's depth and camera
    translations are multiplied by median(frame 0's depth in chunk 0) / median(frame 0's depth in
    chunk i). Rotations, fields of view and confidences are kept; frame 0 comes from chunk 0."""
    reference = predictions[0]["depth"][0, 0].median()
    num_frames = max(max(chunk) for chunk in chunks) + 1
    first = predictions[0]
    pose = first["pose_enc"].new_empty(1, num_frames, first["pose_enc"].shape[-1])
    depth = first["depth"].new_empty(1, num_frames, *first["depth"].shape[2:])
    conf = first["depth_conf"].new_empty(1, num_frames, *first["depth_conf"].shape[2:])
    for i, (chunk, pred) in enumerate(zip(chunks, predictions, strict=True)):
        scale = reference / pred["depth"][0, 0].median()
        frames = [(j, f) for j, f in enumerate(chunk) if i == 0 or f != 0]
        src = torch.tensor([j for j, _ in frames])
        dst = torch.tensor([f for _, f in frames])
        chunk_pose = pred["pose_enc"][0, src].clone()  # [m, 9]
        chunk_pose[:, :3] *= scale
        pose[0, dst] = chunk_pose
        depth[0, dst] = pred["depth"][0, src] * scale
        conf[0, dst] = pred["depth_conf"][0, src]
    return {"pose_enc": pose, "depth": depth, "depth_conf": conf}


# --- memory ---


def memory_estimate(preset: str, num_frames: int, image_hw: tuple[int, int], *, bf16: bool = True,
                    frames_chunk: int = 8, kept_layers: int | None = None) -> dict[str, float]:  # fmt: skip
    """Rough peak GPU memory of one forward over `num_frames` frames of `image_hw` pixels, GiB, from
    tensor sizes (no CUDA context, allocator slack or cuDNN workspaces: add ~1-2 GiB).

    weights: fp32 parameters. kept_layers: the aggregator outputs the heads read (4 + the last,
    [S, 5 + P, 2 * dim] fp32: the residual stream stays fp32 under autocast). block: the largest
    transient inside one transformer block (fp32 residual and norm, then qkv, attention and MLP
    activations in bf16 under autocast; attention itself is a fused kernel, O(tokens)). depth_head:
    one chunk of `frames_chunk` frames at full resolution. peak = weights + images + kept_layers +
    max(block, depth_head + outputs). `kept_layers`: how many layers are kept (None = what the heads
    read; VGGT's own aggregator keeps all of them)."""
    config, heads = _configs(preset)
    h, w = image_hw
    grid = (h // config.patch_size) * (w // config.patch_size)
    tokens = num_frames * (grid + config.patch_start_idx)
    with torch.device("meta"):
        params = sum(p.numel() for p in VGGT(config, heads).parameters())
    act = 2 if bf16 else 4
    dim, gib = config.embed_dim, 2.0**30
    kept = len({*heads.dpt_layers, config.depth - 1}) if kept_layers is None else kept_layers
    parts = {
        "weights": params * 4 / gib,
        "images": num_frames * 3 * h * w * 4 / gib,
        "kept_layers": kept * tokens * 2 * dim * 4 / gib,
        "block": tokens * dim * (2 * 4 + act * (3 + 1 + 1 + 2 * config.mlp_ratio)) / gib,
        "depth_head": min(frames_chunk or num_frames, num_frames) * h * w * (heads.dpt_features // 2) * 4 * 3 / gib,
        "outputs": num_frames * h * w * 4 * 2 / gib,
    }
    parts["peak"] = parts["weights"] + parts["images"] + parts["kept_layers"] + max(
        parts["block"], parts["depth_head"] + parts["outputs"]
    )
    return parts
