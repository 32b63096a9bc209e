"""Fixtures for the GRPO tests: a tiny model and a batch of video prompts (their data: tests/pipelines/conftest.py)."""

from __future__ import annotations

import pytest
import torch

from pipelines.grpo.rollout import PromptBatch
from tests.modeling.helpers import random_video, video_prompt


@pytest.fixture(autouse=True)
def _few_threads():
    """The CI box is shared: keep torch to two threads."""
    previous = torch.get_num_threads()
    torch.set_num_threads(min(previous, 2))
    yield
    torch.set_num_threads(previous)


@pytest.fixture
def tiny():
    import modeling

    return modeling.load("tiny", seed=0)


def prompt_batch(processor, num_prompts: int = 2, frames: int = 4) -> PromptBatch:
    """`num_prompts` left-padded prompts with different questions and random videos."""
    questions = [f"How many chairs are in room {i}?" + " Think." * i for i in range(num_prompts)]
    inputs = processor(
        text=[video_prompt(processor, q) for q in questions],
        videos=[random_video(i, frames) for i in range(num_prompts)],
        padding_side="left",
    )
    records = [{"id": str(i), "question": q} for i, q in enumerate(questions)]
    return PromptBatch(dict(inputs), records)
