"""GRPO learns: from a tiny policy warmed up on the think format, the GRPO step of the real loop
(`train.grpo_step`: generate with reused video features, score on reward actors, clipped loss,
AdamW) raises the mean total reward on a fixed prompt set by >= 0.2; lr 0 leaves it exactly where
it was.

The warm-up is SFT on the think format (`<think>look</think><answer>X</answer>`, the SFT
worker's sample encoding) with every option letter equally often, so the warmed-up policy writes
the format well but picks letters at random: accuracy 1/4, headroom 3/4. Every question's answer
is B; GRPO has to find that out from the accuracy reward. GRPO: 20 steps of 4 prompts x 8
rollouts, AdamW lr 1e-3 after a 3-update warmup, beta 0.04 (a frozen reference). Seeds 0, 1, 2 of
the GRPO part gave +0.38, +0.61, +0.42. Timing: ~55 s on an idle 2-core box.
"""

from __future__ import annotations

import contextlib

import numpy as np
import pytest
import torch

import modeling
from pipelines import rewards
from pipelines.config import RunConfig
from pipelines.grpo.prompts import prompt_batch
from pipelines.grpo.rollout import PromptBatch, generate, sampling_from_config
from pipelines.grpo.scoring import completion_texts
from pipelines.grpo.step import TorchEngine
from pipelines.grpo.train import Job, PhaseTimer, grpo_step
from pipelines.sft.samples import collate, encode_sample
from pipelines.train.deepspeed_setup import lr_scheduler
from pipelines.train.metrics_log import NullLogger
from tests.modeling.helpers import random_video

LANDMARKS = ("door", "bed", "window", "sink")
OPTIONS = ["A. chair", "B. table", "C. sofa", "D. lamp"]
WARMUP_STEPS, WARMUP_LR = 70, 6e-3
GRPO_STEPS, GRPO_LR, WARMUP_UPDATES = 20, 1e-3, 3
EVAL_SAMPLES, EVAL_SEED = 16, 123
BETA, SEED = 0.04, 0  # the paper's KL weight keeps the format from drifting while the answer is learned


def _records() -> list[dict]:
    return [
        {"id": f"q{i}", "question": f"Which object is closest to the {name}?", "options": OPTIONS,
         "ground_truth": "B", "problem_type": "multiple_choice", "question_type": "object_rel_distance",
         "rationale": "look"}
        for i, name in enumerate(LANDMARKS)
    ]  # fmt: skip


@contextlib.contextmanager
def two_threads():
    """Both cores for this CPU-bound test (make test sets OMP_NUM_THREADS=1), then back."""
    previous = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


@pytest.fixture(scope="module")
def warm_start():
    """(state_dict of the warmed-up tiny policy, processor, prompt batch)."""
    with two_threads():
        return _warm_start()


def _warm_start():
    model, processor = modeling.load("tiny", seed=0)
    records = _records()
    videos = [random_video(i, 4) for i in range(len(records))]
    sft_batches = [  # every prompt with letters A and C, then B and D: each letter equally often
        collate([encode_sample(processor, {**r, "ground_truth": letter}, v, think=True, max_length=2048)[0]
                 for r, v in zip(records, videos, strict=True) for letter in letters],
                processor)  # [8, L]
        for letters in ("AC", "BD")
    ]  # fmt: skip
    model.train()
    groups = modeling.trainable_parameter_groups(model, lr_llm=WARMUP_LR, lr_connector=WARMUP_LR, weight_decay=0.0)
    optimizer = torch.optim.AdamW(groups)
    torch.manual_seed(0)
    for step in range(WARMUP_STEPS):
        model(**sft_batches[step % 2]).loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    batch = prompt_batch(processor, records, videos, think=True)
    return {k: v.detach().clone() for k, v in model.state_dict().items()}, processor, batch


def _cfg(lr: float) -> RunConfig:
    return RunConfig.model_validate({"grpo": {
        "num_generations": 8, "max_completion_length": 48, "prompts_per_step": 4, "micro_batch_prompts": 4,
        "lr_llm": lr, "lr_connector": lr, "beta": BETA, "reward_pool": {"num_actors": 1, "num_cpus": 0.5},
    }})  # fmt: skip


def mean_reward(model, processor, batch: PromptBatch) -> dict[str, float]:
    """Mean rewards of EVAL_SAMPLES sampled completions per prompt (temperature 1, fixed seed)."""
    grpo = _cfg(0.0).grpo.model_copy(update={"num_generations": EVAL_SAMPLES})
    torch.manual_seed(EVAL_SEED)
    rollouts = generate(model, batch, sampling_from_config(grpo, processor.tokenizer))
    scores = [
        rewards.score(text, "multiple_choice", batch.records[i // EVAL_SAMPLES]["ground_truth"])
        for i, text in enumerate(completion_texts(processor.tokenizer, rollouts))
    ]
    return {k: float(np.mean([s[k] for s in scores])) for k in ("total", "format", "accuracy")}


def train(state: dict, processor, batch: PromptBatch, lr: float, pool) -> tuple[object, list[float]]:
    """GRPO_STEPS steps of the real GRPO step on the fixed batch; returns the policy and the
    training reward of each step."""
    cfg = _cfg(lr)
    model, _ = modeling.load("tiny", seed=0)
    model.load_state_dict(state)
    model.train()
    groups = modeling.trainable_parameter_groups(model, lr_llm=lr, lr_connector=lr, weight_decay=0.0)
    optimizer = torch.optim.AdamW(groups)
    # AdamW's first steps are sign steps: ramp the lr up
    warmup = lr_scheduler(optimizer, schedule="constant", total_steps=GRPO_STEPS, warmup_steps=WARMUP_UPDATES)
    engine = TorchEngine(model, optimizer, max_grad_norm=cfg.grpo.max_grad_norm, scheduler=warmup)
    reference = None
    if cfg.grpo.beta:
        reference, _ = modeling.load("tiny", seed=0)
        reference.load_state_dict(state)
        reference.eval().requires_grad_(False)
    job = Job(cfg=cfg, plan=None, engine=engine, reference=reference, processor=processor,
              sampling=sampling_from_config(cfg.grpo, processor.tokenizer), pool=pool, records=None,
              group_names=[g["name"] for g in groups], logger=NullLogger(), rank=0, world=1, step=0,
              stop_step=GRPO_STEPS, trainer_state={})  # fmt: skip
    torch.manual_seed(SEED)
    curve = []
    for _ in range(GRPO_STEPS):
        _, scores, _ = grpo_step(job, batch, PhaseTimer())
        curve.append(float(scores.total.mean()))
    return model, curve


def test_grpo_raises_the_reward_and_lr_zero_does_not(warm_start, ray_session):
    from pipelines.reward_actors import RewardPool, RewardPoolConfig

    state, processor, batch = warm_start
    with two_threads(), RewardPool(RewardPoolConfig(num_actors=1, num_cpus=0.5)) as pool:
        start, _ = modeling.load("tiny", seed=0)
        start.load_state_dict(state)
        before = mean_reward(start, processor, batch)
        assert before["format"] > 0.5 and before["accuracy"] < 0.5, before  # the warm-up did its job
        trained, curve = train(state, processor, batch, GRPO_LR, pool)
        control, control_curve = train(state, processor, batch, 0.0, pool)
        after = mean_reward(trained, processor, batch)
        unchanged = mean_reward(control, processor, batch)
    print(f"\nmean total reward: before {before}, after GRPO {after}, lr-0 control {unchanged}")
    print(f"training reward per step: {np.round(curve, 3).tolist()}; control {np.round(control_curve, 3).tolist()}")
    assert after["total"] >= before["total"] + 0.2
    assert unchanged == before  # same weights, same seed: the very same samples
    for name, p in control.state_dict().items():
        assert torch.equal(p, state[name]), name
