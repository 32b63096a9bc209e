"""Evaluation's scoring rules on hand-written answers: VSI-Bench's official scorer, GRPO's lenient
reading and the Spatial-MLLM authors' scorer (release v1.1, src/evaluation/vsibench/dataset_utils.py),
and eval.protocol's settings."""

from __future__ import annotations

import pytest
import torch

from pipelines.config.evaluate import EvalConfig
from pipelines.rewards import accuracy
from pipelines.spatial_mllm_scoring import clean, mean_relative_accuracy

MC, NUM = "multiple_choice", "numerical"


@pytest.mark.parametrize(
    "answer, kind, truth, official, lenient, theirs",
    [
        ("B", MC, "B", 1.0, 1.0, 1.0),
        ("B.", MC, "B", 1.0, 1.0, 1.0),
        ("b", MC, "B", 1.0, 1.0, 1.0),
        ("B. chair", MC, "B", 1.0, 1.0, 0.0),  # official reads the first token; theirs the whole answer
        ("(B)", MC, "B", 0.0, 1.0, 0.0),
        ("<answer>B</answer>", MC, "B", 0.0, 1.0, 1.0),  # theirs reads the answer tag
        ("1,200", NUM, "1200", 0.0, 1.0, 1.0),  # official: float("1,200") fails; theirs drops commas
        ("3 meters", NUM, "3", 1.0, 1.0, 0.0),  # official: first token "3"; theirs: float("3 meters") fails
        ("3", NUM, "4", 0.6, 0.6, 0.5),  # |3-4|/4 = 0.25: official <= passes 0.75 ... ; theirs < misses 0.75
        ("0.9", NUM, "1.0", 0.9, 0.9, 0.8),  # rel 0.1 (float32: 0.100000024 >= 1 - 0.9), on the last tolerance
        ("5", NUM, "4", 0.6, 0.6, 0.5),  # rel 0.25
        ("4", NUM, "4", 1.0, 1.0, 1.0),
        ("about 4", NUM, "4", 0.0, 1.0, 0.0),
        ("", NUM, "4", 0.0, 0.0, 0.0),
    ],
)
def test_each_rule_on_hand_written_answers(answer, kind, truth, official, lenient, theirs):
    assert accuracy(answer, kind, truth, rule="official")[0] == pytest.approx(official)
    assert accuracy(answer, kind, truth, rule="lenient")[0] == pytest.approx(lenient)
    assert accuracy(answer, kind, truth, rule="spatial_mllm")[0] == pytest.approx(theirs)


def test_their_mra_is_torch_float32_with_a_strict_comparison():
    """Their code, written out with torch: rel = |p - t| / (|t| + 1e-8), thresholds
    torch.arange(0.5, 0.975, 0.05, float32), mean of rel < 1 - threshold."""
    def theirs(p, t):
        rel = torch.abs(torch.tensor(p, dtype=torch.float32) - torch.tensor(t, dtype=torch.float32)) / (
            torch.abs(torch.tensor(t, dtype=torch.float32)) + 1e-8)
        return (rel < (1 - torch.arange(0.5, 0.95 + 0.05 / 2, 0.05, dtype=torch.float32))).float().mean().item()

    for p, t in [(3, 4), (4.5, 5), (0.9, 1.0), (1, 2), (7.2, 8), (10, 10), (0, 3), (2.2, 2), (1e9, 1)]:
        assert mean_relative_accuracy(p, t) == theirs(p, t), (p, t)


def test_their_cleaning():
    assert clean("  The answer:\nB.  ") == "the answer: b"
    assert clean("<answer>1</answer> then <answer> 2.5. </answer>") == "2.5"


def test_the_protocol_sets_what_it_names_unless_a_key_is_set():
    theirs = EvalConfig(protocol="spatial_mllm")
    assert (theirs.scoring, theirs.frame_timing, theirs.decoding) == ("spatial_mllm", "processor_default", "spatial_mllm")
    assert theirs.generation_kwargs(think=False) == {"do_sample": True, "temperature": 0.1, "top_p": 0.001,
                                                     "max_new_tokens": 1024}  # fmt: skip
    mixed = EvalConfig(protocol="spatial_mllm", scoring="official", max_new_tokens=16)
    assert (mixed.scoring, mixed.decoding, mixed.decoding_budget(False)) == ("official", "spatial_mllm", 16)
    official = EvalConfig()
    assert (official.scoring, official.frame_timing, official.decoding) == ("official", "sampled", "greedy")
    assert official.generation_kwargs(think=False) == {"do_sample": False, "max_new_tokens": 16}
