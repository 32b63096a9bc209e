"""The learning-rate schedule and the DeepSpeed config dict (no DeepSpeed engine needed)."""

from __future__ import annotations

import math

import pytest

from pipelines.config.train import TrainConfig
from pipelines.train.deepspeed_setup import deepspeed_config, lr_multiplier


def test_warmup_then_cosine_to_zero():
    lrs = [lr_multiplier(s, total_steps=10, warmup_steps=2, schedule="cosine") for s in range(10)]
    assert lrs[:3] == [1 / 3, 2 / 3, 1.0]
    assert lrs[3] == pytest.approx(0.5 * (1 + math.cos(math.pi / 8)))
    assert all(a >= b for a, b in zip(lrs[2:], lrs[3:], strict=False))
    assert lr_multiplier(10, total_steps=10, warmup_steps=2, schedule="cosine") == pytest.approx(0.0)


def test_linear_and_constant():
    assert lr_multiplier(5, total_steps=10, warmup_steps=0, schedule="linear") == pytest.approx(0.5)
    assert lr_multiplier(9, total_steps=10, warmup_steps=0, schedule="constant") == 1.0
    with pytest.raises(ValueError, match="schedule"):
        lr_multiplier(0, total_steps=1, warmup_steps=0, schedule="step")


@pytest.mark.parametrize("stage", [2, 3])
def test_deepspeed_config(stage):
    cfg = deepspeed_config(
        TrainConfig(num_workers=2, zero_stage=stage), dtype="bf16", micro_batch_size=1, accumulation=8, max_grad_norm=1.0
    )
    assert cfg["train_batch_size"] == 16 and cfg["gradient_accumulation_steps"] == 8
    assert cfg["zero_optimization"]["stage"] == stage and cfg["bf16"]["enabled"]
    assert cfg["gradient_clipping"] == 1.0
    assert "optimizer" not in cfg  # a torch AdamW is passed in: nothing gets compiled
    assert cfg["zero_optimization"].get("stage3_gather_16bit_weights_on_model_save", False) == (stage == 3)
