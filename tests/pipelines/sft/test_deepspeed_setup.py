"""The learning-rate schedule and the DeepSpeed config dict (no DeepSpeed engine needed)."""

from __future__ import annotations

import math

import pytest
import torch

from pipelines.config.train import TrainConfig
from pipelines.train.deepspeed_setup import deepspeed_config, lr_scheduler, warmup_updates


def _lrs(schedule: str, *, total: int, warmup: int, peak: float = 2.0) -> list[float]:
    """The lr of each optimizer update 0..total, stepping as DeepSpeed does (after each update)."""
    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=peak)
    scheduler = lr_scheduler(optimizer, schedule=schedule, total_steps=total, warmup_steps=warmup)
    lrs = []
    for _ in range(total + 1):
        lrs.append(optimizer.param_groups[0]["lr"] / peak)
        optimizer.step()
        scheduler.step()
    return lrs


def test_warmup_then_cosine_to_zero():
    """The HF Trainer's warmup: update 0 at 0, update w reaches the peak, then a half cosine."""
    lrs = _lrs("cosine", total=10, warmup=2)
    assert lrs[:3] == [0.0, 0.5, 1.0]
    assert lrs[3] == pytest.approx(0.5 * (1 + math.cos(math.pi / 8)))
    assert all(a >= b for a, b in zip(lrs[2:], lrs[3:], strict=False))
    assert lrs[10] == pytest.approx(0.0)


def test_linear_and_constant():
    assert _lrs("linear", total=10, warmup=0)[5] == pytest.approx(0.5)
    assert _lrs("constant", total=10, warmup=0)[9] == 1.0
    assert _lrs("constant", total=10, warmup=4)[:6] == [0.0, 0.25, 0.5, 0.75, 1.0, 1.0]
    with pytest.raises(ValueError, match="schedule"):
        _lrs("step", total=1, warmup=0)


def test_warmup_ratio_rounds_up_like_the_hf_trainer():
    assert warmup_updates(0.03, 1000) == 30
    assert warmup_updates(0.1, 50) == 5
    assert warmup_updates(0.03, 10) == 1  # a ratio > 0 always warms up at least one update
    assert warmup_updates(0.0, 10) == 0


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
