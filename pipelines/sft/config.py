"""SFT settings (the `sft` section of the run config). Defaults are the Spatial-MLLM recipe
(reference §3): 1 epoch, global batch 16, release v1.1 learning rates (LLM 7e-6, connector and
merger 2e-5; the paper's single peak lr is 1e-5), weight decay 0.1, clip 1.0, cosine, warmup 3%,
max length 8192, 16 frames. Scaling and ZeRO live in the shared `train` section."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class SFTConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True, use_attribute_docstrings=True)

    max_steps: int = Field(50, ge=-1)
    """Optimizer steps; -1 = num_epochs full passes over the train split."""
    num_epochs: float = Field(1.0, gt=0)
    """Passes over the train split when max_steps is -1, epochs (fractions allowed)."""
    global_batch_size: int = Field(16, ge=1)
    """Samples per optimizer step over all workers, count; must be a multiple of
    micro_batch_size x train.num_workers (the quotient is the gradient accumulation)."""
    micro_batch_size: int = Field(1, ge=1)
    """Samples per forward/backward on one worker, count."""
    lr_llm: float = Field(7e-6, gt=0)
    """Peak learning rate of the language model (release v1.1: 7e-6; paper: 1e-5)."""
    lr_connector: float = Field(2e-5, gt=0)
    """Peak learning rate of the spatial connector and Qwen's patch merger (release: 2e-5; paper: 1e-5)."""
    weight_decay: float = Field(0.1, ge=0)
    """AdamW decoupled weight decay; never applied to biases and norm weights."""
    adam_betas: tuple[float, float] = (0.9, 0.999)
    """AdamW (beta1, beta2)."""
    adam_eps: float = Field(1e-8, gt=0)
    """AdamW epsilon."""
    max_grad_norm: float = Field(1.0, ge=0)
    """Clip the global gradient L2 norm to this; 0 = no clipping."""
    lr_schedule: Literal["cosine", "linear", "constant"] = "cosine"
    """Decay after warmup, to 0 at the last step (release: cosine; paper: linear)."""
    warmup_ratio: float = Field(0.03, ge=0, lt=1)
    """Linear warmup to the peak lr over this share of the steps, fraction (step i of w warmup
    steps runs at (i+1)/(w+1) of the peak)."""
    gradient_checkpointing: bool = False
    """Recompute the LLM's activations in backward (less memory, ~30% more compute)."""
    max_length: int = Field(8192, ge=16)
    """Longest training sequence, tokens; longer samples lose their tail (after the video) and
    are counted in data/truncated; one whose video alone is longer is an error."""
    num_frames: int = Field(16, ge=1)
    """Frames per sample, count; a record with more gets an evenly spread subset, fewer are used as is."""
    frame_sampling: Literal["space_aware", "uniform"] = "space_aware"
    """Which record column picks the frames: frame_indices (space-aware) or uniform_indices."""
    think_format: bool = False
    """Target `<think>{rationale}</think><answer>{answer}</answer>` and ask for that format (the
    cold start before GRPO); false = the bare answer."""
    shuffle: bool = True
    """Shuffle the records each epoch (a pure function of seed and epoch); false = file order."""
    skip_bad_records: bool = False
    """Records whose frames are missing are skipped and counted (data/skipped_records) instead of
    stopping the job before training."""
    save_steps: int = Field(50, ge=0)
    """Checkpoint every this many optimizer steps, steps; 0 = only when stopping early."""
    stop_at_step: int = Field(-1, ge=-1)
    """Checkpoint and stop after this many steps without changing the schedule (a time-boxed
    job; re-running resumes), steps; -1 = run to the end."""
    fail_at_step: int = Field(-1, ge=-1)
    """Testing aid: rank 0 raises once right after this step's checkpoint, so Ray Train restarts the
    workers from it (needs train.max_failures >= 1), steps; -1 = off."""
