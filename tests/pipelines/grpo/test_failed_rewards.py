"""A reward that could not be computed is not a zero: the pool's actor times out on some items,
and the step's gradient equals the gradient of the same step without those completions (their
group's baseline taken from the scored ones; a group left with one score dropped).

Two prompts, G = 4, one micro-batch. Prompt 0 (numerical, truth 4) loses rollout 1; prompt 1
(multiple choice, truth B) loses rollouts 0-2, so only one score is left and the group leaves the
step. The reference is written by hand: group 0's advantages from its 3 scores, the grpo loss over
those 3 completions, each from its own forward on its prompt's pixels.
"""

from __future__ import annotations

import torch

import modeling
from pipelines.config.grpo import GRPOConfig
from pipelines.grpo import scoring
from pipelines.grpo.advantages import step_advantages
from pipelines.grpo.rollout import Rollouts, completion_mask, encode_prompts
from pipelines.grpo.scoring import reward_metrics
from pipelines.grpo.step import TorchEngine, policy_step
from pipelines.reward_actors import RewardPool, RewardPoolConfig
from pipelines.rewards import RewardConfig
from tests.pipelines.deepspeed_runs import grpo_reference_loss
from tests.pipelines.grpo.conftest import prompt_batch

G = 4
TEXTS = ["4", "5", "8", "2", "B", "A", "B", "C"]  # rollout i answers prompt i // G
FAILING = {1, 4, 5, 6}


def rollouts_of(model, processor, batch) -> Rollouts:
    tok = processor.tokenizer
    eos = tok.convert_tokens_to_ids("<|im_end|>")
    ids = [tok(t, add_special_tokens=False)["input_ids"] + [eos] for t in TEXTS]
    width = max(map(len, ids))
    completion = torch.tensor([row + [tok.pad_token_id] * (width - len(row)) for row in ids])  # [8, T]
    x = batch.inputs
    return Rollouts(x["input_ids"].repeat_interleave(G, 0), x["attention_mask"].repeat_interleave(G, 0),
                    completion, completion_mask(completion, eos), encode_prompts(model, batch), x["video_grid_thw"], G)  # fmt: skip


def test_failed_rewards_leave_the_step(ray_session):
    model, processor = modeling.load("tiny", seed=0)
    batch = prompt_batch(processor, 2)
    batch.records[0].update(problem_type="numerical", ground_truth="4", question_type="object_counting")
    batch.records[1].update(problem_type="multiple_choice", ground_truth="B", question_type="object_rel_distance")
    rollouts = rollouts_of(model, processor, batch)
    slow = {f"{batch.records[i // G]['id']}/{i % G}": [30.0] for i in FAILING}
    pool = RewardPool(RewardPoolConfig(num_actors=1, num_cpus=0.25, batch_size=1, timeout_s=1.0, max_retries=0),
                      test_delays=slow)  # fmt: skip
    try:
        scores = scoring.score(pool, processor.tokenizer, batch.records, rollouts, RewardConfig(), 0)
    finally:
        pool.close()
    assert scores.failed == [i in FAILING for i in range(2 * G)]
    metrics = reward_metrics(scores.columns(), G)
    assert metrics["reward/failed"] == 4 and metrics["reward/dropped_groups"] == 1
    assert metrics["reward/scored"] == 2 * G - 4
    kept_totals = [float(scores.total[i]) for i in (0, 2, 3)]
    assert metrics["reward/total"] == sum(kept_totals + [float(scores.total[7])]) / 4  # failed ones left out

    grpo = GRPOConfig(num_generations=G, max_completion_length=8, prompts_per_step=2, micro_batch_prompts=2,
                      beta=0.0, loss_type="grpo")  # fmt: skip
    advantages, keep = step_advantages(scores.total, scores.valid, grpo, world=1, device="cpu")
    assert keep.tolist() == [True, False, True, True, False, False, False, False]
    groups = modeling.trainable_parameter_groups(model, lr_llm=1.0, lr_connector=1.0, weight_decay=0.0)
    before = {n: p.detach().clone() for n, p in model.named_parameters() if p.requires_grad}
    engine = TorchEngine(model, torch.optim.SGD(groups, lr=1.0))
    policy_step(engine, batch, rollouts, advantages, None, None, grpo, keep=keep)
    ours = {n: before[n] - p.detach() for n, p in model.named_parameters() if n in before}  # = lr * grad

    # By hand: group 0's three scores, unbiased std; the other group is not in the step at all.
    r = torch.tensor(kept_totals)
    hand = torch.zeros(2 * G)
    hand[[0, 2, 3]] = (r - r.mean()) / (r.std() + 1e-4)
    assert hand.abs().sum() > 0  # the scores differ, so there is a gradient to compare
    reference, _ = modeling.load("tiny", seed=0)
    modeling.trainable_parameter_groups(reference)
    grpo_reference_loss(batch, rollouts, hand, [0, 2, 3], accumulation=1)(reference).backward()
    grads = {n: p.grad for n, p in reference.named_parameters() if p.requires_grad}
    assert grads.keys() == ours.keys()
    assert max(float(g.abs().max()) for g in grads.values()) > 1e-4
    for name, g in grads.items():
        torch.testing.assert_close(ours[name], g, atol=2e-6, rtol=1e-4, msg=name)
