"""Per-token log-probs (and entropy) of completion tokens, given prompt + completion.

    logp, entropy = rollout_logprobs(model, rollouts, temperature=1.0, batch_size=16)   # [N, T] each
    logp, entropy = forward_logprobs(engine, ids, mask, completion_ids, completion_mask,
                                     temperature=1.0, video_embeds=..., video_grid_thw=...)
    logp, entropy = shared_prefix_logprobs(engine, prompt_ids, prompt_mask, positions, completion_ids,
                                           completion_mask, temperature=1.0, video_embeds=..., ...)

`shared_prefix_logprobs` holds each prompt once and its G completions after it in one packed row
(`modeling.shared_prefix`): the same log-probs as `forward_logprobs` over the G repeated rows, at a
fraction of the compute (grpo.shared_prefix).

Logits are divided by the sampling temperature and the suppressed media tokens are masked, so
log-probs are those of the distribution the completions were sampled from (as TRL does).

Memory: `selective_logprobs` never holds fp32 logits over the whole vocabulary for the whole
batch. It works through `CHUNK_ELEMENTS`-sized slices of positions in fp32, saves only the
logits the model already returned (its dtype) and one log-normaliser per position, and in
backward recomputes each slice's softmax. A naive `log_softmax(logits.float())` keeps two fp32
copies of `[n, T, V]` alive until backward (see bench/bench_logprob_memory.py).
"""

from __future__ import annotations

import torch

from modeling.model import videos_for_rows
from modeling.rope import prompt_positions
from modeling.shared_prefix import pack_branches
from pipelines.grpo.rollout import Rollouts

CHUNK_ELEMENTS = 1 << 24  # fp32 elements per slice: 64 MiB, ~110 positions of a 152k vocabulary


def _slices(positions: int, vocab: int):
    """slice objects over `positions` rows, each at most CHUNK_ELEMENTS / vocab rows."""
    step = max(1, CHUNK_ELEMENTS // vocab)
    return [slice(s, min(s + step, positions)) for s in range(0, positions, step)]


def _scaled(logits: torch.Tensor, temperature: float, suppress: torch.Tensor | None) -> torch.Tensor:
    """One slice `[k, V]` in fp32, divided by the temperature, suppressed tokens at -inf."""
    x = logits.float() / temperature
    if suppress is not None:
        x.index_fill_(-1, suppress, float("-inf"))
    return x


class _SelectiveLogprobs(torch.autograd.Function):
    """log softmax(logits / temperature)[target] per position; logits `[P, V]`, targets `[P]`."""

    @staticmethod
    def forward(ctx, logits, targets, temperature, suppress):
        out = torch.empty(targets.shape, dtype=torch.float32, device=logits.device)  # [P]
        lse = torch.empty_like(out)  # [P]
        for s in _slices(*logits.shape):
            x = _scaled(logits[s], temperature, suppress)  # [k, V] fp32
            lse[s] = torch.logsumexp(x, dim=-1)
            out[s] = x.gather(-1, targets[s, None]).squeeze(-1) - lse[s]
        ctx.save_for_backward(logits, targets, lse)
        ctx.temperature, ctx.suppress = temperature, suppress
        return out

    @staticmethod
    def backward(ctx, grad_out):
        logits, targets, lse = ctx.saved_tensors
        grad = torch.empty_like(logits)  # [P, V] in the logits' dtype
        for s in _slices(*logits.shape):
            x = _scaled(logits[s], ctx.temperature, ctx.suppress)  # [k, V]
            g = grad_out[s, None].float()  # [k, 1]
            d = -torch.exp(x - lse[s, None]) * g  # d log p(target) / dx = onehot - softmax
            d.scatter_add_(-1, targets[s, None], g)
            grad[s] = d / ctx.temperature
        return grad, None, None, None


def selective_logprobs(
    logits: torch.Tensor, targets: torch.Tensor, *, temperature: float = 1.0,
    suppress_token_ids: tuple[int, ...] = (),
) -> torch.Tensor:  # fmt: skip
    """fp32 log-probs `[n, T]` of `targets` `[n, T]` under softmax(logits / temperature), logits
    `[n, T, V]` in any dtype (suppressed ids get probability 0); differentiable in `logits`."""
    n, T, V = logits.shape
    suppress = torch.tensor(suppress_token_ids, device=logits.device) if suppress_token_ids else None
    flat = _SelectiveLogprobs.apply(logits.reshape(n * T, V), targets.reshape(n * T), temperature, suppress)
    return flat.view(n, T)


@torch.no_grad()
def token_entropy(logits: torch.Tensor, *, temperature: float = 1.0, suppress_token_ids: tuple[int, ...] = ()):
    """Entropy `[n, T]` of softmax(logits / temperature), slice by slice (no grad)."""
    n, T, V = logits.shape
    flat = logits.reshape(n * T, V)
    suppress = torch.tensor(suppress_token_ids, device=logits.device) if suppress_token_ids else None
    out = torch.empty(n * T, dtype=torch.float32, device=logits.device)
    for s in _slices(n * T, V):
        x = _scaled(flat[s], temperature, suppress)  # [k, V]
        p = torch.softmax(x, dim=-1)
        out[s] = torch.logsumexp(x, -1) - (p * x.nan_to_num(neginf=0.0)).sum(-1)  # H = lse - E[x]
    return out.view(n, T)


def forward_logprobs(
    forward,
    prompt_ids: torch.Tensor,
    prompt_mask: torch.Tensor,
    completion_ids: torch.Tensor,
    completion_mask: torch.Tensor,
    *,
    temperature: float,
    suppress_token_ids: tuple[int, ...] = (),
    with_entropy: bool = False,
    **media,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """One forward over `[n, P + T]`; returns `[n, T]` log-probs of the completion tokens (grad
    follows the caller's mode) and optionally their entropy.

    `forward`: the model, or the DeepSpeed engine for a training forward (its own `__call__` is
    what counts the micro-steps of gradient accumulation under ZeRO-3). `media`: the model's video
    arguments, `video_embeds` + `video_grid_thw` per row, or per-prompt pixels + `video_repeats`."""
    T = completion_ids.shape[1]
    input_ids = torch.cat([prompt_ids, completion_ids], dim=1)  # [n, P + T]
    attention_mask = torch.cat([prompt_mask, completion_mask], dim=1)  # [n, P + T]
    logits = forward(
        input_ids=input_ids, attention_mask=attention_mask, logits_to_keep=T + 1, use_cache=False, **media
    ).logits  # [n, T + 1, V]: positions P-1 .. P+T-1
    logits = logits[:, :-1]  # [n, T, V]: each predicts the next completion token
    logp = selective_logprobs(logits, completion_ids, temperature=temperature, suppress_token_ids=suppress_token_ids)
    entropy = None
    if with_entropy:
        entropy = token_entropy(logits.detach(), temperature=temperature, suppress_token_ids=suppress_token_ids)
    return logp, entropy


def shared_prefix_logprobs(
    forward,
    prompt_ids: torch.Tensor,
    prompt_mask: torch.Tensor,
    positions: torch.Tensor,
    completion_ids: torch.Tensor,
    completion_mask: torch.Tensor,
    *,
    temperature: float,
    dtype: torch.dtype,
    suppress_token_ids: tuple[int, ...] = (),
    with_entropy: bool = False,
    **media,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """`forward_logprobs` with each of the b prompts `[b, P]` (positions `[3, b, P]`) computed once
    for its G = n / b completions `[n, T]`: one forward over `[b, P + G*T]` packed rows with a
    block mask. `media`: one video per prompt (`video_embeds` or pixels, with `video_grid_thw`
    `[b, 3]`); `dtype`: the model's compute dtype (the mask's)."""
    packed = pack_branches(prompt_ids, prompt_mask, positions, completion_ids, completion_mask)
    logits = forward(
        input_ids=packed.input_ids, attention_mask=packed.attention_mask(dtype), position_ids=packed.position_ids,
        logits_to_keep=packed.logit_index, use_cache=False, **media,
    ).logits  # [b, G*T, V]: each branch token's predicting position  # fmt: skip
    logits = packed.per_branch(logits)  # [n, T, V]
    logp = selective_logprobs(logits, completion_ids, temperature=temperature, suppress_token_ids=suppress_token_ids)
    entropy = None
    if with_entropy:
        entropy = token_entropy(logits.detach(), temperature=temperature, suppress_token_ids=suppress_token_ids)
    return logp, entropy


def rollout_prompts(config, rollouts: Rollouts, prompts: slice) -> dict:
    """Prompts `prompts` of the rollouts, once each: ids, mask `[b, P]`, positions `[3, b, P]`."""
    G = rollouts.group_size
    ids = rollouts.prompt_ids[prompts.start * G : prompts.stop * G : G]  # [b, P]
    mask = rollouts.prompt_mask[prompts.start * G : prompts.stop * G : G]
    seconds = None if rollouts.second_per_grid_ts is None else rollouts.second_per_grid_ts[prompts]
    positions = prompt_positions(config, ids, mask, rollouts.video_grid_thw[prompts], seconds)
    return {"prompt_ids": ids, "prompt_mask": mask, "positions": positions}


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
    shared_prefix: bool = True,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """No-grad log-probs `[N, T]` of every rollout under `model`, `batch_size` rollouts per forward
    (shared_prefix: whole groups, at least one, each prompt computed once).

    `video_embeds` defaults to the rollouts' own (the generating policy's encoders); the reference
    model passes the ones its own encoders produced for the same prompts.
    """
    embeds = rollouts.video_embeds if video_embeds is None else video_embeds
    if shared_prefix:
        return _shared_rollout_logprobs(model, rollouts, embeds, temperature=temperature, batch_size=batch_size,
                                        suppress_token_ids=suppress_token_ids, with_entropy=with_entropy)  # fmt: skip
    N = rollouts.num_rollouts
    logps, entropies = [], []
    for start in range(0, N, batch_size):
        stop = min(start + batch_size, N)
        prompts = [r // rollouts.group_size for r in range(start, stop)]  # a chunk may split a group
        rows_embeds, rows_grid = videos_for_rows(embeds, rollouts.video_grid_thw, prompts)
        seconds = rollouts.second_per_grid_ts
        timing = {} if seconds is None else {"second_per_grid_ts": seconds[prompts]}  # [rows]
        logp, entropy = forward_logprobs(
            model,
            rollouts.prompt_ids[start:stop],
            rollouts.prompt_mask[start:stop],
            rollouts.completion_ids[start:stop],
            rollouts.completion_mask[start:stop],
            temperature=temperature,
            suppress_token_ids=suppress_token_ids,
            with_entropy=with_entropy,
            video_embeds=rows_embeds,
            video_grid_thw=rows_grid,
            **timing,
        )
        logps.append(logp)
        entropies.append(entropy)
    return torch.cat(logps), (torch.cat(entropies) if with_entropy else None)  # [N, T]


def _shared_rollout_logprobs(model, rollouts: Rollouts, embeds, *, temperature, batch_size, suppress_token_ids,
                             with_entropy):  # fmt: skip
    G = rollouts.group_size
    B = rollouts.num_rollouts // G
    per_forward = max(1, batch_size // G)  # prompts per forward
    logps, entropies = [], []
    for start in range(0, B, per_forward):
        prompts = slice(start, min(start + per_forward, B))
        rows = slice(prompts.start * G, prompts.stop * G)
        rows_embeds, rows_grid = videos_for_rows(embeds, rollouts.video_grid_thw, list(range(B))[prompts])
        logp, entropy = shared_prefix_logprobs(
            model, **rollout_prompts(model.config, rollouts, prompts), completion_ids=rollouts.completion_ids[rows],
            completion_mask=rollouts.completion_mask[rows], temperature=temperature,
            dtype=model.lm_head.weight.dtype, suppress_token_ids=suppress_token_ids, with_entropy=with_entropy,
            video_embeds=rows_embeds, video_grid_thw=rows_grid,
        )  # fmt: skip
        logps.append(logp)
        entropies.append(entropy)
    return torch.cat(logps), (torch.cat(entropies) if with_entropy else None)  # [N, T]
