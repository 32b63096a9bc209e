"""Per-token log-probs (and entropy) of completion tokens, given prompt + completion and the
prompts' precomputed `video_embeds`: one forward per chunk of rollouts, no encoder call.

    logp, entropy = rollout_logprobs(model, rollouts, temperature=1.0, batch_size=16)   # [N, T] each

Logits are divided by the sampling temperature and the suppressed media tokens are masked, so
log-probs are those of the distribution the completions were sampled from (as TRL does).
"""

from __future__ import annotations

import torch

from pipelines.grpo.rollout import Rollouts, expand_rows


def token_logprobs(
    logits: torch.Tensor, targets: torch.Tensor, suppress_token_ids: tuple[int, ...] = (), with_entropy: bool = False
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """log p(target) per position from `[n, T, V]` logits (already temperature-scaled) and `[n, T]`
    targets; entropy `[n, T]` (no grad) when asked.

    log p = logit(target) - logsumexp(logits), so no `[n, T, V]` log-softmax is kept for
    backward; the entropy is computed one row at a time."""
    logits = logits.float()
    if suppress_token_ids:
        logits = logits.index_fill(-1, torch.tensor(suppress_token_ids, device=logits.device), float("-inf"))
    lse = torch.logsumexp(logits, dim=-1)  # [n, T]
    logp = logits.gather(-1, targets.unsqueeze(-1)).squeeze(-1) - lse  # [n, T]
    entropy = None
    if with_entropy:
        with torch.no_grad():
            rows = []
            for row, row_lse in zip(logits.detach(), lse.detach(), strict=True):  # [T, V], [T]
                p = torch.softmax(row, dim=-1)
                rows.append(row_lse - (p * row.nan_to_num(neginf=0.0)).sum(-1))  # H = lse - E[logit]
            entropy = torch.stack(rows)  # [n, T]
    return logp, entropy


def forward_logprobs(
    model,
    prompt_ids: torch.Tensor,
    prompt_mask: torch.Tensor,
    completion_ids: torch.Tensor,
    completion_mask: torch.Tensor,
    video_embeds: torch.Tensor,
    video_grid_thw: torch.Tensor,
    *,
    temperature: float,
    suppress_token_ids: tuple[int, ...] = (),
    with_entropy: bool = False,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """One forward over `[n, P + T]` with the video rows given; returns `[n, T]` log-probs of the
    completion tokens (grad follows the caller's mode) and optionally their entropy."""
    T = completion_ids.shape[1]
    input_ids = torch.cat([prompt_ids, completion_ids], dim=1)  # [n, P + T]
    attention_mask = torch.cat([prompt_mask, completion_mask], dim=1)  # [n, P + T]
    logits = model(
        input_ids=input_ids,
        attention_mask=attention_mask,
        video_grid_thw=video_grid_thw,
        video_embeds=video_embeds,
        logits_to_keep=T + 1,
        use_cache=False,
    ).logits  # [n, T + 1, V]: positions P-1 .. P+T-1
    logits = logits[:, :-1] / temperature  # [n, T, V]: each predicts the next completion token
    return token_logprobs(logits, completion_ids, suppress_token_ids, with_entropy)


@torch.no_grad()
def rollout_logprobs(
    model,
    rollouts: Rollouts,
    *,
    temperature: float,
    batch_size: int,
    suppress_token_ids: tuple[int, ...] = (),
    video_embeds: torch.Tensor | None = None,
    with_entropy: bool = False,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """No-grad log-probs `[N, T]` of every rollout under `model`, `batch_size` rollouts per forward.

    `video_embeds` defaults to the rollouts' own (the generating policy's encoders); the reference
    model passes the ones its own encoders produced for the same prompts.
    """
    embeds = rollouts.video_embeds if video_embeds is None else video_embeds
    N = rollouts.num_rollouts
    logps, entropies = [], []
    for start in range(0, N, batch_size):
        stop = min(start + batch_size, N)
        rows_embeds, rows_grid = expand_rows(embeds, rollouts.video_grid_thw, rollouts.group_size, start, stop)
        logp, entropy = forward_logprobs(
            model,
            rollouts.prompt_ids[start:stop],
            rollouts.prompt_mask[start:stop],
            rollouts.completion_ids[start:stop],
            rollouts.completion_mask[start:stop],
            rows_embeds,
            rows_grid,
            temperature=temperature,
            suppress_token_ids=suppress_token_ids,
            with_entropy=with_entropy,
        )
        logps.append(logp)
        entropies.append(entropy)
    return torch.cat(logps), (torch.cat(entropies) if with_entropy else None)  # [N, T]

