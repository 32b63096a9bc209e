"""Compute-planner settings (the `plan` section of the run config, read by `jobs.plan`)."""

from __future__ import annotations

import re

from pydantic import BaseModel, ConfigDict, Field, field_validator

PAPER_SFT_SAMPLES = 120_000  # Spatial-MLLM-120k (reference section 3)
DEFAULT_PROMPT_TEXT_TOKENS = 110  # system turn, chat markup, question, options, post-prompt
DEFAULT_ANSWER_TOKENS = 6  # "B<|im_end|>" to "3.5<|im_end|>", ScanQA's few words


class PlanConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True, use_attribute_docstrings=True)

    mfu: float = Field(0.35, gt=0, le=1)
    """Model FLOPs utilisation the GPU-hours assume: the share of the GPU's peak the run sustains, fraction."""
    gpu_peak_tflops: float = Field(312.0, gt=0)
    """The GPU's dense bf16 peak, TFLOP/s (A100 / A800: 312; H100 / H200 SXM: 989)."""
    frame_size: str = "640x480"
    """WIDTHxHEIGHT of the source frames before the processor resizes them (VSI-Bench's videos and
    the paper's training frames: 640x480)."""
    sft_samples: int = Field(0, ge=0)
    """SFT samples of one epoch, count; 0 = the records of the configured data when run_dir holds
    them (our split, or data.mixture's sources), else the paper's 120,000."""
    prompt_text_tokens: int = Field(0, ge=0)
    """Text tokens of a prompt besides its video (system turn, question, options), count; 0 =
    measured on up to sample_records records with the model's tokenizer, else 110."""
    answer_tokens: int = Field(0, ge=0)
    """SFT target tokens (answer and <|im_end|>), count; 0 = measured like prompt_text_tokens, else 6."""
    completion_tokens: int = Field(0, ge=0)
    """Mean GRPO completion tokens, count; 0 = half of grpo.max_completion_length."""
    sample_records: int = Field(256, ge=1)
    """Records read to measure the text lengths, count."""

    @field_validator("frame_size")
    @classmethod
    def _size(cls, value: str) -> str:
        if not re.fullmatch(r"\d+x\d+", value):
            raise ValueError(f"frame_size must be WIDTHxHEIGHT in pixels, e.g. 640x480, got {value!r}")
        return value

    @property
    def frame_width_height(self) -> tuple[int, int]:
        width, height = self.frame_size.split("x")
        return int(width), int(height)
