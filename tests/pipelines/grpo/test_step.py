"""The GRPO update: lr 0 moves nothing, num_iterations keeps the old log-probs, beta 0 needs no
reference, gradients reach the connector and merger (encoded once per prompt with grad)."""

from __future__ import annotations

import pytest
import torch

import modeling
from pipelines import rl_math
from pipelines.config.grpo import GRPOConfig
from pipelines.grpo.rollout import Sampling, generate
from pipelines.grpo.step import TorchEngine, old_logprobs, policy_step, reference_logprobs
from tests.pipelines.grpo.conftest import prompt_batch

G = 4


def _setup(tiny, lr: float, **grpo_kw):
    model, processor = tiny
    grpo = GRPOConfig(num_generations=G, max_completion_length=8, prompts_per_step=2, micro_batch_prompts=1,
                      lr_llm=lr, lr_connector=lr, **grpo_kw)  # fmt: skip
    groups = modeling.trainable_parameter_groups(model, lr_llm=lr, lr_connector=lr, weight_decay=0.1)
    engine = TorchEngine(model, torch.optim.AdamW(groups), accumulation=grpo.accumulation, max_grad_norm=1.0)
    batch = prompt_batch(processor, 2)
    tok = processor.tokenizer
    sampling = Sampling(G, 8, 1.0, tok.convert_tokens_to_ids("<|im_end|>"), tok.pad_token_id)
    torch.manual_seed(0)
    rollouts = generate(model, batch, sampling)
    advantages = rl_math.group_advantages(torch.arange(2 * G, dtype=torch.float32) % 3, G)
    return model, engine, batch, rollouts, advantages, grpo


def _snapshot(model):
    return {n: p.detach().clone() for n, p in model.named_parameters()}


def test_lr_zero_leaves_every_weight_unchanged(tiny):
    model, engine, batch, rollouts, adv, grpo = _setup(tiny, lr=0.0, beta=0.0)
    before = _snapshot(model)
    metrics = policy_step(engine, batch, rollouts, adv, None, None, grpo)
    assert metrics["grad_norm"] > 0  # gradients flowed; the optimizer just did not move
    for name, p in model.named_parameters():
        assert torch.equal(p, before[name]), name


def test_gradients_reach_connector_merger_and_llm_only(tiny):
    model, engine, batch, rollouts, adv, grpo = _setup(tiny, lr=1e-3, beta=0.0)
    before = _snapshot(model)
    policy_step(engine, batch, rollouts, adv, None, None, grpo)
    roles = modeling.parameter_names_by_role(model)
    params = dict(model.named_parameters())
    moved = {n for n in params if not torch.equal(params[n], before[n])}
    assert any(n.startswith("model.connector.") for n in moved)
    assert any(n.startswith("model.visual.merger.") for n in moved)
    assert any(n.startswith("model.language_model.") for n in moved)
    assert not moved & set(roles["frozen"])


def test_num_iterations_keeps_the_old_logprobs(tiny, monkeypatch):
    model, engine, batch, rollouts, adv, grpo = _setup(tiny, lr=1e-2, beta=0.0, num_iterations=2)
    old = old_logprobs(model, rollouts, grpo, ())
    assert old is not None and old.shape == rollouts.completion_ids.shape
    seen = []
    real = rl_math.policy_loss

    def spy(logp, old_logp, *args, **kwargs):
        seen.append((logp.detach().clone(), old_logp))
        return real(logp, old_logp, *args, **kwargs)

    monkeypatch.setattr(rl_math, "policy_loss", spy)
    metrics = policy_step(engine, batch, rollouts, adv, old, None, grpo)
    assert len(seen) == 4  # 2 iterations x 2 micro-batches
    n = 2 * G // 2
    for i, (logp, old_rows) in enumerate(seen):
        rows = slice((i % 2) * n, (i % 2 + 1) * n)
        assert torch.equal(old_rows, old[rows])  # the same tensor on every iteration
        mask = rollouts.completion_mask[rows].bool()
        if i < 2:  # first iteration: the policy that generated, so the ratio is 1
            torch.testing.assert_close(logp[mask], old_rows[mask], atol=1e-5, rtol=1e-5)
        else:  # second: the policy moved, the denominator did not
            assert not torch.allclose(logp[mask], old_rows[mask], atol=1e-4)
    assert metrics["ratio_mean"] != pytest.approx(1.0, abs=1e-6)
    assert old_logprobs(model, rollouts, grpo.model_copy(update={"num_iterations": 1}), ()) is None


def test_beta_zero_needs_no_reference_and_beta_adds_kl(tiny):
    model, engine, batch, rollouts, adv, grpo = _setup(tiny, lr=1e-2, beta=0.0)
    assert reference_logprobs(None, batch, rollouts, grpo, ()) is None  # never touches a model
    assert "kl" not in policy_step(engine, batch, rollouts, adv, None, None, grpo)
    grpo_kl = grpo.model_copy(update={"beta": 0.04})
    ref, _ = modeling.load("tiny", seed=0)  # the starting weights
    ref_logp = reference_logprobs(ref, batch, rollouts, grpo_kl, ())
    assert ref_logp.shape == rollouts.completion_ids.shape
    metrics = policy_step(engine, batch, rollouts, adv, None, ref_logp, grpo_kl)
    assert metrics["kl"] > 0  # the policy moved away from the reference in the first call
