"""Export settings (the `export` section of the run config): our built dataset written as Qwen-VL
finetune records (`python -m jobs.export_dataset`)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class ExportConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True, use_attribute_docstrings=True)

    split: str = "train"
    """Dataset split to export (run_dir/dataset/<split>)."""
    out_dir: str | None = None
    """Where the export goes: <out_dir>/<split>.jsonl and <out_dir>/frames/<scene>/<frame>.png;
    null = run_dir/export/<split>. Replaced as a whole (written beside it, then renamed)."""
    num_frames: int = Field(16, ge=1)
    """Frames per record, count (the record's list thinned evenly, as training does). Paper: 16."""
    frame_sampling: Literal["space_aware", "uniform"] = "space_aware"
    """Which record column picks the frames: frame_indices (space-aware) or uniform_indices."""
    prompt_style: Literal["spatial_mllm", "vsi_bench"] = "spatial_mllm"
    """Wording of the human turn (pipelines/prompting.py), as sft.prompt_style."""
    media: Literal["video", "images"] = "video"
    """How a record's frames are written: `video` = one mp4 of exactly its frames (lossless RGB
    H.264 at video_fps), `"video": "videos/<scene>/<frames>.mp4"` and one `<video>` tag, which the
    authors' loader reads as a video (its 16 frames, timed by its video_frame_fps) and our qwen_vl
    reader as the same video; `images` = PNG files, `"image": [...]` and one `<image>` tag each,
    which the authors' loader reads as separate images (each its own block, no timing) while our
    reader joins them into one video."""
    video_fps: float = Field(4.0, gt=0)
    """Frame rate written into the exported mp4s, frames per second: 4 = the v1.1 recipe's
    video_frame_fps, so our reader (frames / duration) and theirs (video_frame_fps=4) both give
    0.5 s per frame pair, and theirs samples every frame (16 frames over 4 s, clamped to 16)."""
    think_format: bool = False
    """The gpt turn as `<think>{rationale}</think><answer>{answer}</answer>` (and the question asks
    for it), as sft.think_format; false = the bare answer."""
