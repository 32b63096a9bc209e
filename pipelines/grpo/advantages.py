"""A step's advantages and which rollouts take part, with failed rewards left out.

    advantages, keep = step_advantages(scores.total, scores.valid, grpo, world=2, device=dev)

`keep` `[N]`: scored rollouts in groups with at least 2 scores (`rl_math.kept_rollouts`).
With `scale_rewards=batch` the std is that of the whole global batch, every rank's scored rewards
(TRL's semantics), reduced across ranks here; each rank's own std would give the ranks different
advantage scales for the same rewards.
"""

from __future__ import annotations

import torch

from pipelines import rl_math


def global_std(values: torch.Tensor, valid: torch.Tensor, device) -> torch.Tensor:
    """Unbiased std of the `valid` entries of `values` `[N]` over all ranks (collective); 0 for
    fewer than 2 entries. Reduced in float64 as (count, sum, sum of squares)."""
    import torch.distributed as dist

    v = values.double()[valid.bool()]
    t = torch.stack([v.new_tensor(float(v.numel())), v.sum(), (v * v).sum()]).to(device)  # [3]
    dist.all_reduce(t)
    count, total, squares = t.tolist()
    if count < 2:
        return torch.zeros((), dtype=torch.float32)
    var = max(0.0, (squares - total * total / count) / (count - 1))
    return torch.tensor(var**0.5, dtype=torch.float32)


def step_advantages(
    rewards: torch.Tensor, valid: torch.Tensor, grpo, *, world: int, device
) -> tuple[torch.Tensor, torch.Tensor]:
    """(advantages `[N]`, keep `[N]` bool) of this rank's rollouts, group by group."""
    G = grpo.num_generations
    batch_std = None
    if grpo.scale_rewards == "batch" and world > 1:
        batch_std = global_std(rewards, valid, device)
    advantages = rl_math.group_advantages(rewards, G, grpo.scale_rewards, valid=valid, batch_std=batch_std)
    return advantages, rl_math.kept_rollouts(valid, G)
