"""Two gloo ranks under ZeRO-3, every parameter partitioned: a GRPO step whose ranks sample
completions of different lengths (3 and 12 tokens) and whose micro-batches hold different mixes of
frame shapes (rank 0: one shape; rank 1: two in one micro-batch) finishes, and gives the
rollouts, advantages and weights of the same step under ZeRO-2, and of the same ZeRO-3 step with
repeated prompts instead of shared prefixes. `scale_rewards=batch` divides by the std of both ranks' rewards together.

Both failure modes were seen here: with DeepSpeed's hooks left on during generation the step hangs
(each decoded token gathers parameters, and the ranks decode different numbers of tokens); with
the spatial encoder called once per frame shape, gloo aborts with "Received data size doesn't
match expected size ... a distributed collective mismatch". The subprocess timeout turns a hang
into a failure.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parents[3]
G = 4


@pytest.fixture(scope="module")
def two_ranks() -> dict:
    try:
        proc = subprocess.run([sys.executable, "-m", "tests.pipelines.deepspeed_runs", "two_ranks"], cwd=REPO,
                              capture_output=True, text=True, timeout=300)  # fmt: skip
    except subprocess.TimeoutExpired:
        pytest.fail("the two-rank ZeRO-3 GRPO step did not finish in 300 s (a collective deadlock?)")
    assert proc.returncode == 0, proc.stderr[-4000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_ranks_generate_different_lengths_and_finish(two_ranks):
    ranks = two_ranks["ranks"]
    assert ranks["0"]["zero3"]["lengths"] == [3] * 4 * G
    assert ranks["1"]["zero3"]["lengths"] == [12] * 4 * G


def test_zero3_gives_the_zero2_step(two_ranks):
    for rank in ("0", "1"):
        z3, z2 = two_ranks["ranks"][rank]["zero3"], two_ranks["ranks"][rank]["zero2"]
        assert z3["completions"] == z2["completions"]  # the same gathered weights sampled
        assert z3["advantages"] == pytest.approx(z2["advantages"], abs=1e-6)
    assert two_ranks["zero3_vs_zero2"] < 1e-5  # fp32 reduction order


def test_shared_prefixes_give_the_repeated_prompt_step(two_ranks):
    """The same ZeRO-3 step with each prompt computed once for its 4 completions (the default)
    and with the prompt repeated per completion: the same samples and the same weights."""
    for rank in ("0", "1"):
        shared, repeated = two_ranks["ranks"][rank]["zero3"], two_ranks["ranks"][rank]["zero3_repeated"]
        assert shared["completions"] == repeated["completions"]
    assert two_ranks["shared_vs_repeated"] < 1e-5  # fp32 summation order


def test_batch_scaling_uses_the_std_of_both_ranks(two_ranks):
    rewards = torch.cat([torch.arange(4 * G, dtype=torch.float32) * (r + 1) for r in range(2)])  # both ranks'
    std = float(rewards.double().std())  # unbiased, over the 32 rewards of the global batch
    for r in range(2):
        mine = rewards[r * 4 * G : (r + 1) * 4 * G].view(-1, G)
        expected = ((mine - mine.mean(dim=1, keepdim=True)) / (std + 1e-4)).reshape(-1)
        assert two_ranks["ranks"][str(r)]["zero3"]["advantages"] == pytest.approx(expected.tolist(), abs=1e-6)
    # and not the rank's own std (rank 1's rewards spread twice as far as rank 0's)
    own = float(rewards[4 * G :].std())
    assert abs(own - std) > 0.5
