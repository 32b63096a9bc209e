"""Evaluation settings (the `eval` section of the run config)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator


class EvalConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True, use_attribute_docstrings=True)

    split: str = Field("val")
    """Dataset split to evaluate (train or val), when source = dataset."""
    source: Literal["dataset", "vsibench"] = "dataset"
    """What to evaluate on: `dataset` = run_dir/dataset/<split>/*.parquet with frames from the scans;
    `vsibench` = the VSI-Bench file (eval.vsibench_file) with its videos (eval.videos_dir)."""
    vsibench_file: str | None = None
    """VSI-Bench questions, Parquet or JSON / JSON Lines (columns id, dataset, scene_name,
    question_type, question, options, ground_truth). Required when source = vsibench."""
    videos_dir: str | None = None
    """Folder holding {dataset}/{scene_name}.mp4; null = the folder of eval.vsibench_file."""
    num_frames: int = Field(16, ge=1)
    """Frames per question, count. Paper: 16."""
    frame_sampling: Literal["space_aware", "uniform"] = "space_aware"
    """Which frames: `space_aware` = the record's frame_indices (our dataset); `uniform` = evenly
    spaced. A video without geometry (VSI-Bench mp4) is always sampled uniformly."""
    batch_size: int = Field(4, ge=1)
    """Questions per generate() call on one replica, count."""
    num_replicas: int = Field(1, ge=1)
    """Model replicas in the Ray Data actor pool, count; each takes one GPU when the cluster has GPUs."""
    max_new_tokens: int = Field(256, ge=1)
    """Greedy decoding budget per answer, tokens (room for a short <think> before <answer>)."""
    think_format: bool | None = None
    """Ask for <think>...</think><answer>...</answer> in the prompt; null = as the evaluated model
    was trained (grpo.think_format for grpo/final, sft.think_format for sft/final, off otherwise)."""
    limit: int = Field(0, ge=0)
    """Evaluate only the first this-many questions, count; 0 = all."""

    @model_validator(mode="after")
    def _vsibench_needs_a_file(self) -> EvalConfig:
        if self.source == "vsibench" and not self.vsibench_file:
            raise ValueError("eval.source=vsibench needs eval.vsibench_file (Parquet or JSON)")
        return self
