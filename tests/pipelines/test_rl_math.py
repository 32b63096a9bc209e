"""GRPO tensor math on hand-computed tensors: advantages, every loss_type, KL, clip metrics,
gradients, padding, group size 1 and all-equal rewards."""

from __future__ import annotations

import math
import statistics

import pytest
import torch

from pipelines.rl_math import LOSS_TYPES, group_advantages, policy_loss

EPS = 1e-4

# ---------------------------------------------------------------------------------------------
# Advantages


def test_group_advantages_hand_computed():
    rewards = torch.tensor([1.0, 0.0, 2.0, 0.0, 1.0, 3.0])  # two groups of 3
    # group 1: mean 1, unbiased std 1; group 2: mean 4/3, std sqrt(((4/3)^2 + (1/3)^2 + (5/3)^2) / 2)
    std2 = math.sqrt(((4 / 3) ** 2 + (1 / 3) ** 2 + (5 / 3) ** 2) / 2)
    expected = [
        0.0,
        -1 / (1 + EPS),
        1 / (1 + EPS),
        (-4 / 3) / (std2 + EPS),
        (-1 / 3) / (std2 + EPS),
        (5 / 3) / (std2 + EPS),
    ]
    assert group_advantages(rewards, 3).tolist() == pytest.approx(expected, rel=1e-6)


def test_group_advantages_batch_and_none_scaling():
    rewards = torch.tensor([1.0, 0.0, 3.0, 1.0])
    centred = [0.5, -0.5, 1.0, -1.0]  # minus the group means 0.5 and 2
    batch_std = statistics.stdev([1.0, 0.0, 3.0, 1.0])
    assert group_advantages(rewards, 2, scale="none").tolist() == pytest.approx(centred)
    assert group_advantages(rewards, 2, scale="batch").tolist() == pytest.approx(
        [c / (batch_std + EPS) for c in centred], rel=1e-6
    )


@pytest.mark.parametrize("scale", ["group", "batch", "none"])
def test_group_size_one_and_equal_rewards_give_zero_not_nan(scale):
    assert group_advantages(torch.tensor([0.3, 1.7, 2.0]), 1, scale=scale).tolist() == [0.0, 0.0, 0.0]
    assert group_advantages(torch.tensor([2.0, 2.0, 0.5, 0.5]), 2, scale=scale).tolist() == [0.0] * 4
    assert group_advantages(torch.tensor([5.0]), 1, scale=scale).tolist() == [0.0]


def test_group_advantages_rejects_bad_input():
    with pytest.raises(ValueError):
        group_advantages(torch.zeros(5), 2)
    with pytest.raises(ValueError):
        group_advantages(torch.zeros(4), 2, scale="token")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        group_advantages(torch.zeros(2, 2), 2)


# ---------------------------------------------------------------------------------------------
# Loss: one hand-computed batch
#
# N = 2 sequences, T = 3, epsilon = 0.2, epsilon_high = 0.28, A = [+1, -1].
# ratios: seq 0 = [1.0, 1.5, 0.5 (pad)], seq 1 = [0.5, 2.0 (pad), 1.0 (pad)].
# per-token -min(r A, clip(r) A): seq 0: -1.0, -min(1.5, 1.28) = -1.28; seq 1: -min(-0.5, -0.8) = 0.8.
# masked sums: seq 0 = -2.28 over 2 tokens, seq 1 = 0.8 over 1 token; 3 active tokens.

EPSILON, EPSILON_HIGH = 0.2, 0.28
RATIOS = torch.tensor([[1.0, 1.5, 0.5], [0.5, 2.0, 1.0]])
MASK = torch.tensor([[1, 1, 0], [1, 0, 0]])
ADV = torch.tensor([1.0, -1.0])
OLD = torch.tensor([[-1.0, -2.0, -0.5], [-0.7, -1.2, -3.0]])
LOGP = OLD + RATIOS.log()

HAND = {
    "grpo": (-2.28 / 2 + 0.8 / 1) / 2,  # -0.17
    "bnpo": (-2.28 + 0.8) / 3,
    "dr_grpo": (-2.28 + 0.8) / (2 * 4),  # max_completion_length 4
    "dapo": (-2.28 + 0.8) / 3,  # one process: equals bnpo
}


def _loss(loss_type, logp=LOGP, **kw):
    kw.setdefault("max_completion_length", 4)
    return policy_loss(
        logp, OLD, ADV, MASK, loss_type=loss_type, epsilon=EPSILON, epsilon_high=EPSILON_HIGH, **kw
    )


@pytest.mark.parametrize("loss_type", LOSS_TYPES)
def test_every_loss_type_hand_computed(loss_type):
    loss, _ = _loss(loss_type)
    assert loss.item() == pytest.approx(HAND[loss_type], rel=1e-6)


def test_dapo_global_token_count():
    # 8 active tokens over the whole global batch, 2 data-parallel processes: sum / (8 / 2).
    loss, _ = _loss("dapo", num_items_in_batch=8, num_processes=2)
    assert loss.item() == pytest.approx((-2.28 + 0.8) / 4, rel=1e-6)
    loss_t, _ = _loss("dapo", num_items_in_batch=torch.tensor(8), num_processes=2)
    assert loss_t.item() == pytest.approx(loss.item())


def test_clip_metrics_hand_computed():
    _, m = _loss("grpo")
    # low: r < 0.8 with A < 0 (seq 1, token 0); high: r > 1.28 with A > 0 (seq 0, token 1); the
    # padded ratios (0.5 with A > 0, 2.0 with A < 0) are not counted either way.
    assert m["clip_ratio/low_mean"].item() == pytest.approx(1 / 3)
    assert m["clip_ratio/high_mean"].item() == pytest.approx(1 / 3)
    assert m["clip_ratio/region_mean"].item() == pytest.approx(2 / 3)
    assert m["ratio_mean"].item() == pytest.approx((1.0 + 1.5 + 0.5) / 3)
    assert "kl" not in m
    assert all(not v.requires_grad for v in m.values())


def test_k3_kl_term_hand_computed():
    # ref - logp on the active tokens: seq 0 = [0, ln 2], seq 1 = [-ln 2]; k3 = e^d - d - 1.
    delta = torch.tensor([[0.0, math.log(2), 5.0], [-math.log(2), 5.0, 5.0]])  # 5.0 on padding
    ref = LOGP + delta
    k3 = [0.0, 1 - math.log(2), math.log(2) - 0.5]
    beta = 0.04
    loss, m = _loss("grpo", beta=beta, ref_logp=ref)
    seq0 = (-1.0 + beta * k3[0] - 1.28 + beta * k3[1]) / 2
    seq1 = 0.8 + beta * k3[2]
    assert loss.item() == pytest.approx((seq0 + seq1) / 2, rel=1e-6)
    assert m["kl"].item() == pytest.approx(sum(k3) / 3, rel=1e-6)
    loss_bnpo, _ = _loss("bnpo", beta=beta, ref_logp=ref)
    assert loss_bnpo.item() == pytest.approx((-2.28 + 0.8 + beta * sum(k3)) / 3, rel=1e-6)
    # beta = 0 with a reference: kl is logged, the loss is unchanged
    loss0, m0 = _loss("grpo", beta=0.0, ref_logp=ref)
    assert loss0.item() == pytest.approx(HAND["grpo"], rel=1e-6)
    assert m0["kl"].item() == pytest.approx(m["kl"].item())


def test_gradients_vanish_on_clipped_and_padded_tokens():
    logp = LOGP.clone().requires_grad_(True)
    loss, _ = _loss("grpo", logp=logp)
    loss.backward()
    grad = logp.grad
    # unclipped seq 0 token 0: d(-r A)/dlogp = -r A = -1, times 1/(2 tokens) / (2 sequences)
    assert grad[0, 0].item() == pytest.approx(-0.25)
    assert grad[0, 1].item() == 0.0  # r = 1.5 > 1.28 with A > 0: clipped
    assert grad[1, 0].item() == 0.0  # r = 0.5 < 0.8 with A < 0: clipped
    assert grad[0, 2].item() == 0.0 and grad[1, 1].item() == 0.0 and grad[1, 2].item() == 0.0  # padding


def test_first_iteration_old_logp_none_is_ratio_one():
    # num_iterations = 1: old = logp.detach(), ratio 1, gradient -A / (tokens of the sequence) / N.
    logp = torch.tensor([[-1.0, -2.0, -0.3], [-0.5, -0.1, -4.0]], requires_grad=True)
    loss, m = policy_loss(logp, None, ADV, MASK, loss_type="grpo", epsilon=0.2, epsilon_high=0.2)
    loss.backward()
    assert loss.item() == pytest.approx(0.0)  # (-1 + 1) / 2
    torch.testing.assert_close(logp.grad, torch.tensor([[-0.25, -0.25, 0.0], [0.5, 0.0, 0.0]]))
    assert m["clip_ratio/region_mean"].item() == 0.0


def test_all_equal_rewards_give_zero_loss_and_no_nan():
    adv = group_advantages(torch.tensor([1.0, 1.0, 1.0, 1.0]), 4)
    logp = torch.randn(4, 5, requires_grad=True)
    mask = torch.ones(4, 5)
    mask[2:, 3:] = 0
    for loss_type in LOSS_TYPES:
        loss, m = policy_loss(
            logp, logp.detach() - 0.1, adv, mask, loss_type=loss_type, epsilon=0.2, epsilon_high=0.28,
            max_completion_length=5,
        )  # fmt: skip
        assert loss.item() == 0.0
        assert all(torch.isfinite(v) for v in m.values())


def test_fully_padded_sequence_is_safe():
    mask = torch.tensor([[1, 1, 0], [0, 0, 0]])
    for loss_type in LOSS_TYPES:
        loss, m = policy_loss(
            LOGP, OLD, ADV, mask, loss_type=loss_type, epsilon=EPSILON, epsilon_high=EPSILON_HIGH,
            max_completion_length=4,
        )  # fmt: skip
        assert torch.isfinite(loss) and all(torch.isfinite(v) for v in m.values())
    empty = torch.zeros(2, 3)
    loss, m = policy_loss(LOGP, OLD, ADV, empty, loss_type="bnpo", epsilon=0.2, epsilon_high=0.2)
    assert loss.item() == 0.0 and m["clip_ratio/region_mean"].item() == 0.0


def _reference_loss(logp, old, adv, mask, loss_type, eps, eps_high, beta, ref, max_len):
    """Token-by-token Python loops: the definitions read literally."""
    n, t = len(logp), len(logp[0])
    per_seq, total, active = [], 0.0, 0
    for i in range(n):
        s, k = 0.0, 0
        for j in range(t):
            if not mask[i][j]:
                continue
            r = math.exp(logp[i][j] - old[i][j])
            a = adv[i]
            term = -min(r * a, min(max(r, 1 - eps), 1 + eps_high) * a)
            d = ref[i][j] - logp[i][j]
            term += beta * (math.exp(d) - d - 1)
            s, k = s + term, k + 1
        per_seq.append(s / max(k, 1))
        total, active = total + s, active + k
    return {
        "grpo": sum(per_seq) / n,
        "bnpo": total / max(active, 1),
        "dr_grpo": total / (n * max_len),
        "dapo": total / max(active, 1),
    }[loss_type]


@pytest.mark.parametrize("loss_type", LOSS_TYPES)
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_matches_token_loop_reference(loss_type, seed):
    g = torch.Generator().manual_seed(seed)
    n, t = 6, 7
    old = -torch.rand(n, t, generator=g, dtype=torch.float64) * 3
    logp = old + (torch.rand(n, t, generator=g, dtype=torch.float64) - 0.5)  # ratios in [0.6, 1.65]
    ref = old + (torch.rand(n, t, generator=g, dtype=torch.float64) - 0.5)
    lengths = torch.randint(1, t + 1, (n,), generator=g)
    mask = (torch.arange(t)[None, :] < lengths[:, None]).to(torch.float64)
    adv = group_advantages(torch.rand(n, generator=g, dtype=torch.float64), 3).double()
    loss, _ = policy_loss(
        logp, old, adv, mask, loss_type=loss_type, epsilon=0.2, epsilon_high=0.28, beta=0.04, ref_logp=ref,
        max_completion_length=t,
    )  # fmt: skip
    expected = _reference_loss(
        logp.tolist(), old.tolist(), adv.tolist(), mask.tolist(), loss_type, 0.2, 0.28, 0.04, ref.tolist(), t
    )
    assert loss.item() == pytest.approx(expected, rel=1e-9)


def test_argument_errors():
    with pytest.raises(ValueError, match="ref_logp"):
        _loss("grpo", beta=0.04)
    with pytest.raises(ValueError, match="max_completion_length"):
        _loss("dr_grpo", max_completion_length=None)
    with pytest.raises(ValueError, match="loss_type"):
        _loss("ppo")
    with pytest.raises(ValueError):
        policy_loss(LOGP, OLD, ADV[:1], MASK, loss_type="grpo", epsilon=0.2, epsilon_high=0.2)


def test_bf16_inputs_are_reduced_in_fp32():
    n, t = 2, 600  # more active tokens than bf16 counts exactly
    logp = torch.full((n, t), -1.0, dtype=torch.bfloat16, requires_grad=True)
    mask = torch.ones(n, t, dtype=torch.bool)
    mask[1, 301:] = False  # 901 active tokens
    adv = torch.tensor([1.0, -1.0])
    loss, _ = policy_loss(logp, None, adv, mask, loss_type="bnpo", epsilon=0.2, epsilon_high=0.2)
    assert loss.dtype == torch.float32
    assert loss.item() == pytest.approx((-600 + 301) / 901, rel=1e-6)
    loss.backward()
    assert logp.grad.dtype == torch.bfloat16
