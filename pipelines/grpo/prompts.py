"""GRPO prompts: QA records -> one left-padded processor batch (frames read, prompt rendered in
the same words as SFT, think-format instruction included).

Prompts are loaded in the training worker, not by a Ray Data pipeline as in SFT: a step needs only
`prompts_per_step` of them, and reading their frames is small next to sampling
`num_generations` completions each.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from pipelines import prompting
from pipelines.grpo.rollout import PromptBatch


def prompt_batch(
    processor,
    records: list[dict],
    videos: list[list[np.ndarray]],
    *,
    think: bool,
    style: str = prompting.DEFAULT_STYLE,
) -> PromptBatch:
    """One processor call: the records' prompts (in `style`, grpo.prompt_style) left-padded (the
    layout generation needs), each with its video (a list of HxWx3 uint8 frames)."""
    texts = [prompting.prompt_text(processor, record, think=think, style=style) for record in records]
    inputs = processor(text=texts, videos=videos, padding_side="left", return_tensors="pt")
    return PromptBatch(dict(inputs), list(records))


def load_prompts(processor, records: list[dict], scans_root: Path, grpo) -> PromptBatch:
    """The prompts of `records` (frames per grpo.num_frames / grpo.frame_sampling)."""
    videos = [
        prompting.load_frames(record, scans_root, sampling=grpo.frame_sampling, num_frames=grpo.num_frames)
        for record in records
    ]
    return prompt_batch(processor, records, videos, think=grpo.think_format, style=grpo.prompt_style)
