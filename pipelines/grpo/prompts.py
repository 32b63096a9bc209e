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
from pipelines.grpo.rollout import PromptBatch, collate_prompts


def encode_prompt(processor, record: dict, frames: list[np.ndarray], *, think: bool) -> dict[str, np.ndarray]:
    """One prompt: `input_ids`, `mm_token_type_ids` `[P]`, pixels `[t*h*w, 1176]`, grid `[1, 3]`."""
    enc = processor(text=[prompting.prompt_text(processor, record, think=think)], videos=[frames], return_tensors="np")
    return {
        "input_ids": enc["input_ids"][0].astype(np.int64),
        "mm_token_type_ids": enc["mm_token_type_ids"][0].astype(np.int64),
        "pixel_values_videos": enc["pixel_values_videos"].astype(np.float32),
        "spatial_pixel_values": enc["spatial_pixel_values"].astype(np.float32),
        "video_grid_thw": enc["video_grid_thw"].astype(np.int64),
    }


def load_prompts(processor, records: list[dict], scans_root: Path, grpo) -> PromptBatch:
    """The prompts of `records` (frames per grpo.num_frames / grpo.frame_sampling)."""
    encoded = [
        encode_prompt(
            processor,
            record,
            prompting.load_frames(record, scans_root, sampling=grpo.frame_sampling, num_frames=grpo.num_frames),
            think=grpo.think_format,
        )
        for record in records
    ]
    return collate_prompts(encoded, records, processor.tokenizer.pad_token_id)
