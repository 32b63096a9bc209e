"""GRPO tensor math and nothing else: group advantages and the clipped policy loss (TRL's meanings).

Shapes: N = completions in the (micro-)batch, ordered group by group (G rollouts per prompt);
T = padded completion length. Log-probs are per completion token, `mask` is 1 on real completion
tokens and 0 on padding.

    adv = group_advantages(rewards, group_size=8)                       # [N]
    loss, metrics = policy_loss(logp, old_logp, adv, mask, loss_type="grpo",
                                epsilon=0.2, epsilon_high=0.2, beta=0.04, ref_logp=ref_logp)

With `num_iterations` = 1 the old policy is the current one: pass `old_logp=None` (TRL's
`per_token_logps.detach()`), so the ratio is 1 with the right gradient. With `num_iterations` > 1,
keep the log-probs computed once after generation and pass them as `old_logp` on every iteration.
"""

from __future__ import annotations

from typing import Literal

import torch

LossType = Literal["grpo", "bnpo", "dr_grpo", "dapo"]
LOSS_TYPES = ("grpo", "bnpo", "dr_grpo", "dapo")
ADV_EPS = 1e-4


def kept_rollouts(valid: torch.Tensor, group_size: int) -> torch.Tensor:
    """`[N]` bool: rollouts whose reward was computed (`valid` `[N]`) in a group with at least 2
    such rollouts; a smaller group has no baseline to compare with and leaves the step. With
    group_size 1 (no baseline ever) every scored rollout is kept."""
    grouped = valid.bool().view(-1, group_size)  # [N/G, G]
    enough = grouped.sum(dim=1, keepdim=True) >= min(2, group_size)  # [N/G, 1]
    return (grouped & enough).reshape(-1)


def group_advantages(
    rewards: torch.Tensor,
    group_size: int,
    scale: Literal["group", "batch", "none"] = "group",
    *,
    valid: torch.Tensor | None = None,
    batch_std: float | torch.Tensor | None = None,
) -> torch.Tensor:
    """(r - group mean) / (std + 1e-4) for rewards `[N]` ordered group by group; returns `[N]`.

    scale: "group" = the group's std, "batch" = the std of all N rewards (or `batch_std`, the
    whole global batch's, when the caller computed it across ranks), "none" = no division.
    std is unbiased (torch's default); a group or batch of one has std 0 (torch says nan), so its
    advantage is 0. All-equal rewards give advantage 0, never nan.

    valid `[N]` bool: rewards that could be computed. Means and stds use only those; a rollout
    outside `kept_rollouts(valid, G)` gets advantage 0 (and should be masked out of the loss).
    """
    if rewards.dim() != 1 or group_size < 1 or rewards.numel() % group_size:
        raise ValueError(
            f"rewards must be [N] with N a multiple of group_size={group_size}, got {tuple(rewards.shape)}"
        )
    if scale not in ("group", "batch", "none"):
        raise ValueError(f"scale must be group, batch or none, got {scale!r}")
    rewards = rewards.float()
    if valid is None:
        valid = torch.ones_like(rewards, dtype=torch.bool)
    keep = kept_rollouts(valid, group_size)  # [N]
    w = valid.float().view(-1, group_size)  # [N/G, G]
    grouped = rewards.masked_fill(~valid.bool(), 0.0).view(-1, group_size)  # [N/G, G]
    count = w.sum(dim=1, keepdim=True)  # [N/G, 1]
    mean = grouped.sum(dim=1, keepdim=True) / count.clamp(min=1)  # [N/G, 1]
    centred = (grouped - mean) * w  # [N/G, G], 0 where invalid
    advantages = centred.reshape(-1)  # [N]
    if scale == "group":
        std = (centred.pow(2).sum(dim=1) / (count.squeeze(1) - 1).clamp(min=1)).sqrt()  # [N/G]
        advantages = advantages / (std.repeat_interleave(group_size) + ADV_EPS)
    elif scale == "batch":
        if batch_std is None:
            r = rewards[valid.bool()]
            batch_std = r.std() if r.numel() > 1 else rewards.new_zeros(())
        advantages = advantages / (torch.as_tensor(batch_std, dtype=rewards.dtype) + ADV_EPS)
    return torch.where(keep, advantages, torch.zeros_like(advantages))


def policy_loss(
    logp: torch.Tensor,
    old_logp: torch.Tensor | None,
    advantages: torch.Tensor,
    mask: torch.Tensor,
    *,
    loss_type: LossType,
    epsilon: float,
    epsilon_high: float,
    beta: float = 0.0,
    ref_logp: torch.Tensor | None = None,
    max_completion_length: int | None = None,
    num_items_in_batch: float | torch.Tensor | None = None,
    num_processes: int = 1,
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """The clipped GRPO objective, reduced as TRL's `loss_type` does. Returns (scalar loss, metrics).

    logp, old_logp, ref_logp, mask: `[N, T]`; advantages: `[N]`. old_logp None = logp.detach().
    Per token: `-min(ratio * A, clip(ratio, 1 - epsilon, 1 + epsilon_high) * A) + beta * k3`,
    ratio = exp(logp - old_logp), k3 = exp(ref - logp) - (ref - logp) - 1. Reduction:
    - grpo: mean over each sequence's active tokens, then over the sequences;
    - bnpo: mean over all active tokens of this batch;
    - dr_grpo: sum / (sequences * max_completion_length) (required);
    (a sequence whose mask is all 0, e.g. one whose reward failed, is not counted: as if absent)
    - dapo: sum / (num_items_in_batch / num_processes), where `num_items_in_batch` is the number
      of active tokens of the whole global batch (every process and accumulation micro-batch of
      one optimizer step); data-parallel training averages gradients over `num_processes`, which
      the division undoes. Default: this batch's active tokens, so dapo equals bnpo in one process.
    grpo/bnpo/dr_grpo are per micro-batch: the trainer divides them by its accumulation steps
    (TRL does); dapo with the global count is already the optimizer step's normaliser.

    Computed in at least fp32 (bf16 log-probs are upcast; gradients flow back in their dtype).
    metrics (detached 0-dim tensors, means over active tokens like TRL's): `kl` (when ref_logp
    is given), `clip_ratio/low_mean` (ratio < 1 - epsilon with A < 0), `clip_ratio/high_mean`
    (ratio > 1 + epsilon_high with A > 0), `clip_ratio/region_mean` (either), `ratio_mean`.
    """
    if loss_type not in LOSS_TYPES:
        raise ValueError(f"loss_type must be one of {LOSS_TYPES}, got {loss_type!r}")
    if logp.dim() != 2 or mask.shape != logp.shape or advantages.shape != logp.shape[:1]:
        raise ValueError(
            f"need logp/mask [N, T] and advantages [N]; got {tuple(logp.shape)}, {tuple(mask.shape)}, "
            f"{tuple(advantages.shape)}"
        )
    if beta != 0.0 and ref_logp is None:
        raise ValueError("beta != 0 needs ref_logp (the frozen reference model's log-probs)")
    if loss_type == "dr_grpo" and not max_completion_length:
        raise ValueError("loss_type dr_grpo needs max_completion_length")

    # At least fp32: bf16 log-probs would round the ratios, and bf16 token counts are inexact past 256.
    dtype = torch.promote_types(logp.dtype, torch.float32)
    logp = logp.to(dtype)
    old_logp = logp.detach() if old_logp is None else old_logp.to(dtype)
    ref_logp = None if ref_logp is None else ref_logp.to(dtype)
    mask = mask.to(dtype)  # [N, T]
    adv = advantages.to(dtype).unsqueeze(1)  # [N, 1]
    ratio = torch.exp(logp - old_logp)  # [N, T]
    clipped = torch.clamp(ratio, 1 - epsilon, 1 + epsilon_high)  # [N, T]
    per_token = -torch.min(ratio * adv, clipped * adv)  # [N, T]
    kl = None
    if ref_logp is not None:
        delta = ref_logp - logp  # [N, T]
        kl = torch.exp(delta) - delta - 1  # [N, T], k3 >= 0
        if beta != 0.0:
            per_token = per_token + beta * kl

    masked = per_token * mask  # [N, T]
    sequences = (mask.sum(-1) > 0).sum().clamp(min=1)  # rows taking part
    if loss_type == "grpo":
        loss = (masked.sum(-1) / mask.sum(-1).clamp(min=1.0)).sum() / sequences
    elif loss_type == "bnpo":
        loss = masked.sum() / mask.sum().clamp(min=1.0)
    elif loss_type == "dr_grpo":
        loss = masked.sum() / (sequences * max_completion_length)
    else:  # dapo
        total = (
            mask.sum()
            if num_items_in_batch is None
            else torch.as_tensor(num_items_in_batch, dtype=logp.dtype)
        )
        loss = masked.sum() / (total.clamp(min=1.0) / num_processes)

    metrics = _metrics(ratio.detach(), adv, mask, epsilon, epsilon_high, None if kl is None else kl.detach())
    return loss, metrics


def _metrics(
    ratio: torch.Tensor,
    adv: torch.Tensor,
    mask: torch.Tensor,
    epsilon: float,
    epsilon_high: float,
    kl: torch.Tensor | None,
) -> dict[str, torch.Tensor]:
    """Means over active tokens of this batch, as TRL logs them (before any cross-process mean)."""
    tokens = mask.sum().clamp(min=1.0)

    def masked_mean(x: torch.Tensor) -> torch.Tensor:
        return (x.to(mask.dtype) * mask).sum() / tokens

    low = (ratio < 1 - epsilon) & (adv < 0)  # [N, T]
    high = (ratio > 1 + epsilon_high) & (adv > 0)  # [N, T]
    metrics = {
        "clip_ratio/low_mean": masked_mean(low),
        "clip_ratio/high_mean": masked_mean(high),
        "clip_ratio/region_mean": masked_mean(low | high),
        "ratio_mean": masked_mean(ratio),
    }
    if kl is not None:
        metrics["kl"] = masked_mean(kl)
    return metrics
