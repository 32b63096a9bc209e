"""SFT settings (the `sft` section of the run config). Defaults are the Spatial-MLLM recipe
(reference §3): 1 epoch, global batch 16, release v1.1 learning rates (LLM 7e-6, connector and
merger 2e-5; the paper's single peak lr is 1e-5), weight decay 0.1, clip 1.0, cosine, warmup 3%,
max length 8192, 16 frames. Scaling and ZeRO live in the shared `train` section."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from pipelines.config.optimizer import OptimizerConfig


class SFTConfig(OptimizerConfig):
    """The optimizer fields (lr_llm, lr_connector, weight_decay, adam_*, max_grad_norm,
    lr_schedule, warmup_ratio, gradient_checkpointing) come from OptimizerConfig, with SFT's defaults."""

    max_steps: int = Field(50, ge=-1)
    """Optimizer steps; -1 = num_epochs full passes over the train split."""
    num_epochs: float = Field(1.0, gt=0)
    """Passes over the train split when max_steps is -1, epochs (fractions allowed)."""
    global_batch_size: int = Field(16, ge=1)
    """Samples per optimizer step over all workers, count; must be a multiple of
    micro_batch_size x train.num_workers (the quotient is the gradient accumulation)."""
    micro_batch_size: int = Field(1, ge=1)
    """Samples per forward/backward on one worker, count."""
    loss_normalization: Literal["tokens", "samples"] = "tokens"
    """How answer tokens are weighed: `tokens` = cross-entropy summed over the answer tokens of the
    whole global batch / their count (every token weighs the same); `samples` = each micro-batch's
    mean over its answer tokens / the accumulation, averaged over workers (the authors' HF Trainer:
    with micro_batch_size 1 every sample weighs the same, a 1-token answer as much as a 9-token one)."""
    train_turn_end_newline: bool = False
    """Also train on the newline the chat template puts after each answer's <|im_end|> (the
    authors' loader labels it); false = the answer and <|im_end|> only."""
    min_pixels: int | None = Field(None, ge=28 * 28)
    """Per-frame pixel lower bound for SFT's frames, pixels; null = the model's (the 3B presets:
    qwen-vl-utils' 100,352). The authors' training: 293,216."""
    max_pixels: int | None = Field(None, ge=28 * 28)
    """Per-frame pixel upper bound for SFT's frames, pixels; null = the model's (the 3B presets:
    602,112). The authors' training: 324,576, so every frame is ~476x644 whatever its source."""
    max_length: int = Field(8192, ge=16)
    """Longest training sequence, tokens; longer samples lose their tail (after the video) and
    are counted in data/truncated; one whose video alone is longer is an error."""
    num_frames: int = Field(16, ge=1)
    """Frames per sample, count; a record with more gets an evenly spread subset, fewer are used as
    is. A video without listed frames gets qwen-vl-finetune's rule up to this many (data.mixture.video_*)."""
    frame_sampling: Literal["space_aware", "uniform"] = "space_aware"
    """Which record column picks the frames: frame_indices (space-aware: ours, or a source's
    frame_indices_file) or uniform_indices; a record listing none gets data.mixture's video rule."""
    think_format: bool = False
    """Target `<think>{rationale}</think><answer>{answer}</answer>` and ask for that format (the
    cold start before GRPO); false = the bare answer."""
    prompt_style: Literal["spatial_mllm", "vsi_bench"] = "spatial_mllm"
    """Wording of the question turn (pipelines/prompting.py): `spatial_mllm` = the authors' eval
    script (question, options, VSI-Bench's post-prompt), `vsi_bench` = the same after VSI-Bench's
    "These are frames of a video." line. Evaluation asks a model trained here in the same words."""
    shuffle: bool = True
    """Shuffle the records each epoch (a pure function of seed and epoch); false = file order."""
    skip_bad_records: bool = False
    """Bad records (a malformed line, missing or unreadable media) are skipped and counted
    (data/skipped_records, data/bad_samples) instead of stopping the job before training, up to
    train.max_bad_record_fraction of the records."""
    save_steps: int = Field(50, ge=0)
    """Checkpoint every this many optimizer steps, steps; 0 = only when stopping early."""
    stop_at_step: int = Field(-1, ge=-1)
    """Checkpoint and stop after this many steps without changing the schedule (a time-boxed
    job; re-running resumes), steps; -1 = run to the end."""
