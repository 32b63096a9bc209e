"""One optimizer update through our SFT and GRPO code on DeepSpeed equals the same update written
in plain torch (AdamW, the loss as its type defines it, gradients summed over micro-batches,
clipped): ZeRO 1, 2 and 3, accumulation 1 and 2, fp32, one gloo rank. The runs are in
tests/pipelines/deepspeed_runs.py, in a subprocess of their own.

The tolerance (1e-5 on weights moved by ~1e-3) is fp32 reduction order; the plain update that
keeps only the last micro-batch's gradient (ZeRO-3's old behaviour) lands ~2e-3 away, so a
regression to it fails here. GRPO's update runs with shared prefixes (each prompt computed once
for its G completions, the default) and with repeated prompts: both equal the plain update, and
each other.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parents[2]
TOLERANCE = 1e-5


@pytest.fixture(scope="module")
def updates() -> dict:
    proc = subprocess.run([sys.executable, "-m", "tests.pipelines.deepspeed_runs", "updates"], cwd=REPO,
                          capture_output=True, text=True, timeout=600)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-4000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("stage", ["sft", "grpo"])
@pytest.mark.parametrize("zero", [1, 2, 3])
@pytest.mark.parametrize("accumulation", [1, 2])
def test_update_equals_plain_torch(updates, stage, zero, accumulation):
    run = updates[f"{stage}-zero{zero}-acc{accumulation}"]
    assert run["moved"] > 100 * TOLERANCE  # the update did move the weights
    assert run["ours"] < TOLERANCE
    if accumulation > 1:  # the first micro-batch's gradient counts
        assert run["last_only"] > 100 * TOLERANCE
    if stage == "grpo":  # shared prefixes and repeated prompts: the same update
        assert run["repeated"] < TOLERANCE and run["vs_repeated"] < TOLERANCE


@pytest.mark.parametrize("normalization", ["tokens", "samples"])
def test_sft_loss_normalization_by_hand(updates, normalization):
    """Two micro-batches whose answers have different lengths: the loss train_step reports equals
    the per-token cross-entropies combined by hand (tokens: sum / count; samples: the mean of each
    micro-batch's mean), and the update equals plain torch under the same normalisation."""
    run = updates["sft-zero2-acc2" if normalization == "tokens" else "sft-samples-zero2-acc2"]
    assert len(set(run["answer_tokens"])) > 1  # micro-batches of different answer lengths
    assert run["loss"] == pytest.approx(run["loss_hand"], rel=1e-5)
    assert run["ours"] < TOLERANCE and run["moved"] > 100 * TOLERANCE
    if normalization == "samples":  # the two rules do weigh the micro-batches differently
        assert abs(run["loss_hand"] - updates["sft-zero2-acc2"]["loss_hand"]) > 1e-4
