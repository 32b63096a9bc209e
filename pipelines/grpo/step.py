"""One GRPO update on scored rollouts: old and reference log-probs, then `num_iterations`
optimizer updates with the clipped objective of `rl_math.policy_loss`.

    old_logp = old_logprobs(model, rollouts, grpo, suppress)               # None when mu = 1
    ref_logp = reference_logprobs(ref_model, batch, rollouts, grpo, suppress) # None when beta = 0
    metrics = policy_step(engine, batch, rollouts, advantages, old_logp, ref_logp, grpo, suppress)

Shared prefixes (grpo.shared_prefix, the default): every pass holds each prompt once, its G
completions packed after it under a block mask (`logprobs.shared_prefix_logprobs`), so a prompt's
~3,000 video tokens go through the language model once per pass instead of G times; and the
frozen encoders (Qwen's vision blocks, VGGT) run once per step, at generation: the reference and
the update fuse their kept outputs with their own merger and connector (`Rollouts.frozen`). The
repeated-prompt path (false) gives the same log-probs and update up to float summation order.

Feature reuse: old log-probs reuse the rollouts' `video_embeds` (same weights as at generation);
the reference encodes each prompt once with its own (frozen) encoders; the update re-encodes each
micro-batch's prompts once per iteration **with grad**, so the connector and Qwen's patch merger
get gradients (the frozen vision blocks and spatial encoder build no graph). Videos are never
encoded per rollout.

`engine` is a DeepSpeed engine, or `TorchEngine` (the same methods over a torch optimizer) in
tests and benchmarks. The update's forward goes through `engine(...)`, DeepSpeed's public path:
under ZeRO-3 the engine's forward is what advances its micro-step counter, and without it every
micro-batch's gradient overwrote the one before (only the last micro-batch of an accumulation
counted). Loss scaling is done here, not by the engine: grpo / bnpo / dr_grpo losses are per
micro-batch and divided by the number of micro-batches that hold a scored completion (the
accumulation, as TRL, unless failed rewards emptied one); dapo's normaliser is the active token
count of the whole optimizer step over all ranks, so it is not divided again.

Failed rewards: `keep` `[N]` marks the rollouts that take part (scored, in a group with >= 2
scored); the others are masked out of the loss as if they were not in the batch. A micro-batch
with nothing kept still runs forward and backward (loss 0): under ZeRO-3 every rank must make the
same collective calls.
"""

from __future__ import annotations

from collections import defaultdict

import torch

from pipelines import rl_math
from pipelines.grpo.logprobs import (
    forward_logprobs,
    rollout_logprobs,
    rollout_prompts,
    shared_prefix_logprobs,
)
from pipelines.grpo.rollout import PromptBatch, Rollouts, encode_prompts


class TorchEngine:
    """The part of DeepSpeed's engine the GRPO loop uses, over a plain torch optimizer: the forward
    (`engine(...)`), `backward`,
    `step` (optimizer + scheduler at the accumulation boundary, then zero_grad), `get_lr`,
    `get_global_grad_norm`, `zero_optimization_partition_weights`, `module`."""

    def __init__(self, module, optimizer, *, accumulation: int = 1, max_grad_norm: float = 0.0, scheduler=None):
        self.module, self.optimizer, self.scheduler = module, optimizer, scheduler
        self.accumulation, self.max_grad_norm = accumulation, max_grad_norm
        self.micro_steps = 0
        self.grad_norm: float | None = None

    def __call__(self, *args, **kwargs):
        return self.module(*args, **kwargs)

    def backward(self, loss: torch.Tensor, scale_wrt_gas: bool = True) -> None:
        (loss / self.accumulation if scale_wrt_gas else loss).backward()

    def step(self) -> None:
        self.micro_steps += 1
        if self.micro_steps % self.accumulation:
            return
        params = [p for g in self.optimizer.param_groups for p in g["params"] if p.grad is not None]
        norm = torch.nn.utils.clip_grad_norm_(params, self.max_grad_norm or float("inf"))
        self.grad_norm = float(norm)
        self.optimizer.step()
        if self.scheduler is not None:
            self.scheduler.step()
        self.optimizer.zero_grad(set_to_none=True)

    @property
    def device(self) -> torch.device:
        return next(self.module.parameters()).device

    def get_lr(self) -> list[float]:
        return [g["lr"] for g in self.optimizer.param_groups]

    def get_global_grad_norm(self) -> float | None:
        return self.grad_norm

    def zero_optimization_partition_weights(self) -> bool:
        return False  # parameters are whole: nothing to gather for generation


def old_logprobs(model, rollouts: Rollouts, grpo, suppress_token_ids: tuple[int, ...]) -> torch.Tensor | None:
    """Log-probs `[N, T]` of the generating policy, kept across the num_iterations updates; None
    when num_iterations = 1 (the ratio is then exp(logp - logp.detach()) = 1, as TRL)."""
    if grpo.num_iterations == 1:
        return None
    logp, _ = rollout_logprobs(
        model, rollouts, temperature=grpo.temperature, batch_size=grpo.logprob_batch_size,
        suppress_token_ids=suppress_token_ids, shared_prefix=grpo.shared_prefix,
    )  # fmt: skip
    return logp


def reference_logprobs(
    ref_model, batch: PromptBatch, rollouts: Rollouts, grpo, suppress_token_ids: tuple[int, ...]
) -> torch.Tensor | None:
    """Log-probs `[N, T]` under the frozen reference (its own encoders, once per prompt); None
    when beta = 0 (no reference is loaded)."""
    if grpo.beta == 0.0:
        return None
    if grpo.shared_prefix and rollouts.frozen is not None:  # the policy's frozen encoders are the reference's
        with torch.no_grad():
            ref_embeds = ref_model.fuse_frozen(rollouts.frozen)  # [B tokens, H]: its own merger and connector
    else:
        ref_embeds = encode_prompts(ref_model, batch)  # [B tokens, H]
    logp, _ = rollout_logprobs(
        ref_model, rollouts, temperature=grpo.temperature, batch_size=grpo.logprob_batch_size,
        suppress_token_ids=suppress_token_ids, video_embeds=ref_embeds, shared_prefix=grpo.shared_prefix,
    )  # fmt: skip
    return logp


def policy_step(
    engine,
    batch: PromptBatch,
    rollouts: Rollouts,
    advantages: torch.Tensor,
    old_logp: torch.Tensor | None,
    ref_logp: torch.Tensor | None,
    grpo,
    suppress_token_ids: tuple[int, ...] = (),
    *,
    keep: torch.Tensor | None = None,
    num_processes: int = 1,
    global_tokens: float | None = None,
) -> dict[str, float]:
    """`grpo.num_iterations` optimizer updates on one batch of rollouts; returns this rank's means
    of loss, kl, entropy, clip ratios over every micro-batch, plus grad_norm of the last update.

    advantages `[N]`; old_logp / ref_logp `[N, T]` or None; keep `[N]` bool (default all).
    `global_tokens`: active kept completion tokens of all ranks (dapo's normaliser); default this
    rank's.
    """
    G, mb = rollouts.group_size, grpo.micro_batch_prompts
    mask = rollouts.completion_mask if keep is None else rollouts.completion_mask * keep[:, None].long()  # [N, T]
    live = sum(bool(mask[p0 * G : (p0 + mb) * G].any()) for p0 in range(0, len(batch), mb))
    scale = 1.0 if grpo.loss_type == "dapo" else 1.0 / max(1, live)
    tokens = float(mask.sum()) if global_tokens is None else global_tokens
    sums: dict[str, float] = defaultdict(float)
    count = 0
    for _ in range(grpo.num_iterations):
        for p0 in range(0, len(batch), mb):
            rows = slice(p0 * G, (p0 + mb) * G)
            loss, metrics = micro_batch_loss(
                engine, batch.select(p0, p0 + mb), rollouts, rows, mask[rows], advantages, old_logp, ref_logp,
                grpo, suppress_token_ids, num_processes=num_processes, global_tokens=tokens,
            )  # fmt: skip
            engine.backward(loss * scale, scale_wrt_gas=False)
            engine.step()
            if mask[rows].any():
                for k, v in metrics.items():
                    sums[k] += float(v)
                count += 1
    out = {k: v / max(1, count) for k, v in sums.items()}
    norm = engine.get_global_grad_norm()
    out["grad_norm"] = float(norm) if norm is not None else float("nan")
    return out


def micro_batch_loss(
    engine,
    sub: PromptBatch,
    rollouts: Rollouts,
    rows: slice,
    mask: torch.Tensor,
    advantages: torch.Tensor,
    old_logp: torch.Tensor | None,
    ref_logp: torch.Tensor | None,
    grpo,
    suppress_token_ids: tuple[int, ...],
    *,
    num_processes: int,
    global_tokens: float,
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Loss of rollouts `rows` (the groups of the prompts in `sub`; `mask` `[n, T]` their kept
    tokens): one `engine(...)` forward that encodes each prompt's video once, with grad, and
    computes each prompt once (shared_prefix) or repeats it over its G rollouts."""
    x = sub.inputs
    common = dict(temperature=grpo.temperature, suppress_token_ids=suppress_token_ids, with_entropy=True)
    media = dict(pixel_values_videos=x["pixel_values_videos"], spatial_pixel_values=x["spatial_pixel_values"],
                 video_grid_thw=x["video_grid_thw"])  # fmt: skip
    if grpo.shared_prefix:
        G = rollouts.group_size
        first = rows.start // G
        prompts = rollout_prompts(engine.module.config, rollouts, slice(first, first + len(sub)))
        if rollouts.frozen is not None:  # generation's frozen encoder outputs, fused here with grad
            media = {"frozen_video": rollouts.frozen.select(list(range(first, first + len(sub)))),
                     "video_grid_thw": x["video_grid_thw"]}  # fmt: skip
        logp, entropy = shared_prefix_logprobs(
            engine, **prompts, completion_ids=rollouts.completion_ids[rows],
            completion_mask=rollouts.completion_mask[rows], dtype=engine.module.lm_head.weight.dtype, **common,
            **media,
        )  # fmt: skip
    else:
        timing = {}  # each video's spacing, repeated like its embeddings over its G rollouts
        if "second_per_grid_ts" in x:
            timing["second_per_grid_ts"] = x["second_per_grid_ts"].repeat_interleave(rollouts.group_size)  # [b*G]
        logp, entropy = forward_logprobs(
            engine, rollouts.prompt_ids[rows], rollouts.prompt_mask[rows], rollouts.completion_ids[rows],
            rollouts.completion_mask[rows], video_repeats=rollouts.group_size, **common, **media, **timing,
        )  # fmt: skip
    loss, metrics = rl_math.policy_loss(
        logp,
        None if old_logp is None else old_logp[rows],
        advantages[rows],
        mask,
        loss_type=grpo.loss_type,
        epsilon=grpo.epsilon,
        epsilon_high=grpo.upper_epsilon,
        beta=grpo.beta,
        ref_logp=None if ref_logp is None else ref_logp[rows],
        max_completion_length=grpo.max_completion_length,
        num_items_in_batch=global_tokens,
        num_processes=num_processes,
    )
    active = mask.sum().clamp(min=1)
    metrics = {**metrics, "loss": loss.detach(), "entropy": (entropy * mask).sum() / active}
    return loss, metrics
