"""GRPO prompts: training records -> one left-padded processor batch (frames read, prompt rendered
in the same words as SFT, think-format instruction included).

Prompts are loaded in the training worker, not by a Ray Data pipeline as in SFT: a step needs only
`prompts_per_step` of them, and reading their frames is small next to sampling
`num_generations` completions each. A record whose frames cannot be decoded is replaced by the next
record that works (`pipelines.train.data.with_fallback`), and the failure is reported.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from pipelines import media, prompting
from pipelines.grpo.rollout import PromptBatch
from pipelines.train.data import with_fallback


def prompt_batch(
    processor,
    records: list[dict],
    videos: list[list[np.ndarray]],
    *,
    think: bool,
    style: str = prompting.DEFAULT_STYLE,
    fps: list[float | None] | None = None,
) -> PromptBatch:
    """One processor call: the records' prompts (in `style`, grpo.prompt_style) left-padded (the
    layout generation needs), each with its video (a list of HxWx3 uint8 frames). `fps`: each
    video's sampled frame rate, None where unknown (those keep the model's 1 s per temporal patch);
    no `second_per_grid_ts` at all when every one is unknown."""
    texts = [prompting.prompt_text(processor, record, think=think, style=style) for record in records]
    rates = None
    if fps is not None and any(r is not None for r in fps):
        unit = processor.frames.temporal_patch_size  # the rate whose spacing is the default 1 s
        rates = [float(r) if r is not None else float(unit) for r in fps]
    inputs = processor(text=texts, videos=videos, padding_side="left", return_tensors="pt", fps=rates)
    return PromptBatch(dict(inputs), list(records))


def load_prompts(processor, table: pa.Table, rows: list[int], grpo, rule: media.FrameRule) -> tuple[PromptBatch | None, list[str]]:
    """The prompts of `table`'s records at `rows` (frames per grpo.num_frames / grpo.frame_sampling
    and `rule`), and a line per record that failed and was replaced; None when a prompt had no
    readable record within reach."""

    def make(record: dict) -> tuple[dict, media.Clip]:
        return record, prompting.record_clip(record, sampling=grpo.frame_sampling, rule=rule)

    made, failures = [], []
    for row in rows:
        result, failed = with_fallback(table, row, make)
        failures += failed
        made.append(result)
    if any(m is None for m in made):
        return None, failures
    records = [record for record, _ in made]
    clips = [clip for _, clip in made]
    batch = prompt_batch(processor, records, [c.frames for c in clips], think=grpo.think_format,
                         style=grpo.prompt_style, fps=[c.fps for c in clips])  # fmt: skip
    return batch, failures
