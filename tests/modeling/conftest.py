"""Fixtures for the modeling tests: random tiny models and a processed video prompt."""

from __future__ import annotations

import pytest
import torch

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
    """A fresh tiny Spatial-MLLM (seeded) and its processor; tests may train or modify it."""
    import modeling

    return modeling.load("tiny", seed=0)


@pytest.fixture
def tiny_batch(tiny):
    """One prompt with a 4-frame 112x112 video, as the processor returns it."""
    _, processor = tiny
    return processor(text=[video_prompt(processor)], videos=[random_video(0, 4)], return_tensors="pt")
