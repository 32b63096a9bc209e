"""Fixtures for the GRPO tests: a tiny model and a batch of video prompts."""

from __future__ import annotations

from pathlib import Path

import pyarrow.parquet as pq
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


TRAIN_PROMPTS = 10


@pytest.fixture(scope="session")
def grpo_data(tmp_path_factory) -> Path:
    """A folder with `scans/` (one synthetic scene, 12 frames of 112x112) and `dataset/train`:
    10 hand-written records, multiple choice and numerical, 4 frames each."""
    from data_gen.schema import records_to_table
    from data_gen.synthetic.scenes import synthesize_scans

    root = tmp_path_factory.mktemp("grpo_data")
    synthesize_scans(root, 1, seed=0, num_frames=12, width=112, height=112)
    records = []
    for i in range(TRAIN_PROMPTS):
        mc = i % 2 == 0
        records.append({
            "id": f"r{i:02d}", "dataset": "synthetic", "scene_name": "scene0000_00",
            "question_type": "object_rel_distance" if mc else "object_counting",
            "problem_type": "multiple_choice" if mc else "numerical",
            "question": f"Question {i}: which object is closest to the door?" if mc else f"Question {i}: how many chairs?",
            "options": ["A. chair", "B. table", "C. sofa", "D. lamp"] if mc else [],
            "ground_truth": "ABCD"[i % 4] if mc else str(i % 5 + 1), "rationale": "look",
            "video": "scene0000_00", "frame_indices": [i % 3, 4, 7, 11], "uniform_indices": [0, 4, 7, 11], "meta": "{}",
        })  # fmt: skip
    (root / "dataset" / "train").mkdir(parents=True)
    pq.write_table(records_to_table(records), root / "dataset" / "train" / "part-00000.parquet")
    return root
