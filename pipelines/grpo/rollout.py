"""Rollouts: G sampled completions per prompt, with each prompt's video encoded once.

    batch = prompts.prompt_batch(processor, records, videos, think=True)  # B prompts, left-padded
    rollouts = generate(model, batch, sampling)               # B*G completions, group by group

Both encoders (Qwen's vision tower + merger and the spatial encoder + connector) run once per
prompt under `torch.no_grad()`; the fused `video_embeds` fill the `<|video_pad|>` positions of all
G rollouts in `generate` and are kept on the Rollouts for the no-grad log-prob passes (old policy),
so no rollout or log-prob pass encodes a video again. The update pass re-encodes once per prompt
with grad, so the connector and merger learn (see step.py).

Media placeholder tokens (`<|video_pad|>`, `<|image_pad|>`) are never sampled: a completion that
contained one would be taken for a placeholder by the next forward. `logprobs.py` masks the same
tokens, so log-probs are those of the distribution actually sampled from (top_p / top_k
truncation aside, as in TRL: leave them off for exact importance ratios).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from transformers import GenerationConfig

from modeling.video_features import FrozenVideoFeatures

TEXT_KEYS = ("input_ids", "attention_mask", "mm_token_type_ids")
PIXEL_KEYS = ("pixel_values_videos", "spatial_pixel_values")
PER_VIDEO_KEYS = ("video_grid_thw", "second_per_grid_ts")
MEDIA_TOKENS = ("<|video_pad|>", "<|image_pad|>")


@dataclass(frozen=True)
class Sampling:
    """How completions are sampled (from GRPOConfig, plus the tokenizer's ids)."""

    num_generations: int
    max_new_tokens: int
    temperature: float
    eos_token_id: int
    pad_token_id: int
    suppress_token_ids: tuple[int, ...] = ()
    top_p: float = 1.0
    top_k: int = 0


def sampling_from_config(grpo, tokenizer) -> Sampling:
    """Sampling settings of `grpo` (a GRPOConfig); eos = `<|im_end|>`, media tokens suppressed."""
    return Sampling(
        num_generations=grpo.num_generations,
        max_new_tokens=grpo.max_completion_length,
        temperature=grpo.temperature,
        eos_token_id=tokenizer.convert_tokens_to_ids("<|im_end|>"),
        pad_token_id=tokenizer.pad_token_id,
        suppress_token_ids=tuple(tokenizer.convert_tokens_to_ids(t) for t in MEDIA_TOKENS),
        top_p=grpo.top_p,
        top_k=grpo.top_k,
    )


@dataclass
class PromptBatch:
    """B prompts as one processor batch: `input_ids`, `attention_mask`, `mm_token_type_ids` `[B, P]`
    (left-padded), `pixel_values_videos`, `spatial_pixel_values` `[sum t*h*w, 1176]`,
    `video_grid_thw` `[B, 3]` (one video per prompt), and `second_per_grid_ts` `[B]` when a video
    has a frame rate; `records` are the B QA records."""

    inputs: dict[str, torch.Tensor]
    records: list[dict]

    def __len__(self) -> int:
        return len(self.records)

    def to(self, device) -> PromptBatch:
        return PromptBatch({k: v.to(device) for k, v in self.inputs.items()}, self.records)

    def select(self, start: int, stop: int) -> PromptBatch:
        """Prompts [start, stop) (their pixel rows included)."""
        rows = self.inputs["video_grid_thw"].prod(-1).tolist()
        lo, hi = sum(rows[:start]), sum(rows[:stop])
        inputs = {k: self.inputs[k][start:stop] for k in (*TEXT_KEYS, *PER_VIDEO_KEYS) if k in self.inputs}
        inputs.update({k: self.inputs[k][lo:hi] for k in PIXEL_KEYS})
        return PromptBatch(inputs, self.records[start:stop])


@dataclass
class Rollouts:
    """B*G completions ordered group by group (rollout i belongs to prompt i // G).

    prompt_ids, prompt_mask: `[N, P]` (left-padded), completion_ids, completion_mask: `[N, T]`
    (mask 1 up to and including the first eos), video_embeds: `[B video tokens, hidden]` encoded
    once per prompt (no grad), video_grid_thw: `[B, 3]`, second_per_grid_ts: `[B]` or None (each
    video's temporal RoPE spacing; None = the model's default for all), frozen: the frozen
    encoders' outputs that the reference and update passes fuse again (shared prefixes; else None).
    """

    prompt_ids: torch.Tensor
    prompt_mask: torch.Tensor
    completion_ids: torch.Tensor
    completion_mask: torch.Tensor
    video_embeds: torch.Tensor
    video_grid_thw: torch.Tensor
    group_size: int
    second_per_grid_ts: torch.Tensor | None = None
    frozen: FrozenVideoFeatures | None = None  # the prompts' frozen encoder outputs (shared prefixes)

    @property
    def num_rollouts(self) -> int:
        return self.completion_ids.shape[0]

    @property
    def lengths(self) -> torch.Tensor:
        """Completion tokens counted by the loss (eos included), `[N]`."""
        return self.completion_mask.sum(dim=1)

    def truncated(self, eos_token_id: int) -> torch.Tensor:
        """Completions that ended without eos (hit max_new_tokens), `[N]` bool."""
        return ~(self.completion_ids == eos_token_id).any(dim=1)


def completion_mask(completion_ids: torch.Tensor, eos_token_id: int) -> torch.Tensor:
    """1 up to and including the first eos of each row, 0 after; all 1 where there is none. `[N, T]`."""
    is_eos = completion_ids == eos_token_id  # [N, T]
    T = completion_ids.shape[1]
    first = torch.where(is_eos.any(dim=1), is_eos.int().argmax(dim=1), T)  # [N]
    return (torch.arange(T, device=completion_ids.device)[None, :] <= first[:, None]).long()  # [N, T]


@torch.no_grad()
def encode_prompts(model, batch: PromptBatch) -> torch.Tensor:
    """Both encoders once per prompt, without grad: `[B video tokens, hidden]`."""
    x = batch.inputs
    return model.encode_videos(x["pixel_values_videos"], x["video_grid_thw"], x["spatial_pixel_values"])


def generation_config(sampling: Sampling) -> GenerationConfig:
    """What rollouts are sampled with. Every knob the log-probs assume is set here explicitly:
    anything left unset would be filled from the model's generation_config.json (Qwen2.5-VL's sets
    repetition_penalty 1.05, which the log-prob passes do not apply)."""
    return GenerationConfig(
        do_sample=True,
        temperature=sampling.temperature,
        top_p=sampling.top_p,
        top_k=sampling.top_k,  # 0 = off; None would mean transformers' global default 50
        repetition_penalty=1.0,
        max_new_tokens=sampling.max_new_tokens,
        num_return_sequences=sampling.num_generations,
        eos_token_id=sampling.eos_token_id,
        pad_token_id=sampling.pad_token_id,
        suppress_tokens=list(sampling.suppress_token_ids) or None,
    )


@torch.no_grad()
def generate(model, batch: PromptBatch, sampling: Sampling, *, shared_prefix: bool = True) -> Rollouts:
    """Sample G completions per prompt from `model`, the video encoded once per prompt.

    shared_prefix: the frozen encoders' outputs are computed once and kept for the step's other
    passes, each prompt is prefilled once and its G completions decode from that one KV cache
    (`modeling.shared_prefix`); false: transformers' generate with num_return_sequences, which
    prefills every prompt G times. The same tokens come out of both for the same RNG state
    (the same logits processors, the same multinomial draw per step)."""
    x = batch.inputs
    frozen = None
    if shared_prefix:  # the frozen encoders once for the whole step (reference and update fuse them again)
        frozen = model.frozen_video_features(x["pixel_values_videos"], x["video_grid_thw"], x["spatial_pixel_values"])
        video_embeds = model.fuse_frozen(frozen)  # [B tokens, H], what encode_prompts gives
    else:
        video_embeds = encode_prompts(model, batch)  # [B tokens, H]
    G = sampling.num_generations
    timing = {"second_per_grid_ts": x["second_per_grid_ts"]} if "second_per_grid_ts" in x else {}
    if shared_prefix:
        completion_ids = _sample_shared(model, batch, video_embeds, sampling)
    else:
        sequences = model.generate(
            **{k: x[k] for k in TEXT_KEYS},
            video_grid_thw=x["video_grid_thw"],
            video_embeds=video_embeds,
            generation_config=generation_config(sampling),
            **timing,
        )  # [B*G, P + T], rows repeat_interleave'd per prompt (second_per_grid_ts too)
        completion_ids = sequences[:, x["input_ids"].shape[1] :]  # [B*G, T]
    return Rollouts(
        prompt_ids=x["input_ids"].repeat_interleave(G, dim=0),  # [B*G, P]
        prompt_mask=x["attention_mask"].repeat_interleave(G, dim=0),  # [B*G, P]
        completion_ids=completion_ids,
        completion_mask=completion_mask(completion_ids, sampling.eos_token_id),
        video_embeds=video_embeds,
        video_grid_thw=x["video_grid_thw"],
        group_size=G,
        second_per_grid_ts=x.get("second_per_grid_ts"),
        frozen=frozen,
    )


def _sample_shared(model, batch: PromptBatch, video_embeds: torch.Tensor, sampling: Sampling) -> torch.Tensor:
    """`[B*G, T]` completions: each prompt prefilled once, its G branches decoded together."""
    from modeling.shared_prefix import BranchDecoder, decode_branches, generation_rules

    x = batch.inputs
    G = sampling.num_generations
    positions = model.prompt_positions(
        x["input_ids"], x["attention_mask"], x["video_grid_thw"], x.get("second_per_grid_ts")
    )  # [3, B, P]
    decoder = BranchDecoder(model, dtype=model.lm_head.weight.dtype)
    first = decoder.prefill(x["input_ids"], x["attention_mask"], positions,
                            video_grid_thw=x["video_grid_thw"], video_embeds=video_embeds)  # [B, V]  # fmt: skip
    decoder.begin(G)
    processors, eos, pad, _ = generation_rules(model, generation_config(sampling), x["input_ids"].shape[1])
    return decode_branches(
        decoder, first[:, None].expand(-1, G, -1), x["input_ids"].repeat_interleave(G, dim=0),
        processors=processors, eos_token_ids=eos, pad_token_id=pad, do_sample=True,
        max_new_tokens=sampling.max_new_tokens,
    )  # fmt: skip
