"""Space-aware frame sampling on videos (the `sample_frames` section of the run config)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator


class SampleFramesConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True, use_attribute_docstrings=True)

    videos_dir: str | None = None
    """Folder of the videos; output names are paths relative to it. Required. (Paths here are
    resolved against the working directory of the job's driver.)"""
    video_list: str | None = None
    """Text file, one video path (relative to videos_dir) per line; null = every video file
    (.mp4, .mov, .mkv, .avi, .webm) under videos_dir, searched recursively."""
    vsibench_file: str | None = None
    """A VSI-Bench question file (either format eval.vsibench_file reads): sample the videos it
    names, videos_dir/<dataset>/<scene_name>.mp4 (or the v1.0 file's `path`). Excludes video_list."""
    preset: Literal["tiny", "small", "vggt-1b"] = "vggt-1b"
    """VGGT size: `vggt-1b` (the released model: needs sample_frames.weights) or the random
    `tiny` / `small` for CPU runs and tests."""
    weights: str | None = None
    """A VGGT-1B checkpoint: a file (.safetensors, .pt) or a folder holding model.safetensors or
    model.pt; its point and track heads are skipped. null = random init (tiny/small only). On a
    cluster, a path every node sees (each actor loads it)."""
    image_size: int = Field(518, ge=14, multiple_of=14)
    """Width of the frames VGGT sees, pixels: frames are resized to it, height in proportion rounded
    to a multiple of 14 and centre-cropped to at most image_size (VGGT's own preprocessing; 640x480
    -> 518x392). Smaller = less memory and time, coarser geometry."""
    num_candidates: int = Field(128, ge=1)
    """Evenly spaced candidate frames per video that go through VGGT together, count. Paper: 128."""
    num_frames: int = Field(16, ge=1)
    """Frames chosen per video, count. Paper: 16."""
    conf_threshold: float = Field(0.1, ge=0.0)
    """Keep depth points whose confidence is above this and at least the median, unitless (VGGT's
    confidence is 1 + exp(x), so every point passes 0.1: the median decides). Paper: 0.1."""
    voxel_divisions: int = Field(20, ge=1)
    """Voxel edge = shortest extent of the kept points' bounding box / this, count. Paper: 20."""
    depth_stride: int = Field(4, ge=1)
    """Use every n-th depth pixel in x and y, pixels (the predicted depth is upsampled from a 4x
    patch grid, 3.5 px per cell at 14 px patches: stride 4 drops little; as data.qa.depth_stride)."""
    pad_frames: bool = True
    """When coverage stops early (no candidate adds a voxel), fill up to num_frames with evenly
    spaced unused candidates, as the dataset build does."""
    frames_per_forward: int = Field(0, ge=0)
    """Candidates per VGGT forward, count; 0 = all num_candidates in one (exact: global attention
    sees every frame together). Set it (e.g. 32 or 64) when a forward does not fit the GPU: the
    candidates then go in chunks that all start with candidate 0, the others dealt out in turn (each
    chunk spans the whole video), each chunk's depth and camera translations rescaled to the first
    chunk's by candidate 0's median depth. Frames of different chunks never attend to each other,
    so their geometry agrees only through that one frame."""
    precision: Literal["bf16", "fp32"] = "bf16"
    """On a GPU, the aggregator runs under bf16 autocast (VGGT's own inference) or in fp32; the
    heads and the weights stay fp32. On CPU everything is fp32."""
    num_actors: int = Field(1, ge=1)
    """Model replicas (Ray Data actors), count; each takes one GPU when the cluster has GPUs."""
    max_bad_video_fraction: float = Field(0.05, ge=0.0, le=1.0)
    """Share of the videos that may fail to decode, fraction: they are skipped, counted and named
    (and retried by the next run); one more stops the job, naming them. 0 = the first bad video stops it."""
    frames_dir: str | None = None
    """Also write each video's chosen frames as images here, in the authors' pre-sampled layout:
    <frames_dir>/<video path without its suffix>/frame_<index 6 digits>.png (for VSI-Bench:
    <dataset>/<scene_name>/), full resolution. null = indices only."""

    @model_validator(mode="after")
    def _one_video_source(self) -> SampleFramesConfig:
        if self.video_list and self.vsibench_file:
            raise ValueError("set sample_frames.video_list or sample_frames.vsibench_file, not both")
        if self.num_frames > self.num_candidates:
            raise ValueError(f"num_frames={self.num_frames} exceeds num_candidates={self.num_candidates}")
        if self.frames_per_forward == 1:
            raise ValueError("frames_per_forward=1 leaves no room beside the shared first candidate; use 0 or >= 2")
        return self
