"""grpo.shared_prefix: each prompt computed once for its G completions gives the samples,
log-probs and update of the repeated-prompt path (transformers' generate with
num_return_sequences, every pass over [B*G, P+T]). Under DeepSpeed ZeRO 1/2/3 and two ranks the
same comparison runs in tests/pipelines/test_update_reference.py and test_zero3_two_ranks.py."""

from __future__ import annotations

import copy

import pytest
import torch

import modeling
from pipelines import rl_math
from pipelines.config.grpo import GRPOConfig
from pipelines.grpo.logprobs import rollout_logprobs
from pipelines.grpo.rollout import PromptBatch, Sampling, generate
from pipelines.grpo.step import TorchEngine, old_logprobs, policy_step, reference_logprobs
from tests.modeling.helpers import random_video, video_prompt

G = 4


def timed_batch(processor, dtype=torch.float32) -> PromptBatch:
    """Two left-padded prompts of different lengths; videos of two frame shapes at 4 and 8 s per
    frame pair (temporal positions beyond the spatial ones)."""
    questions = ["How many chairs are in this room?", "Which is closer to the bed, the sofa or the lamp? Think."]
    inputs = dict(processor(text=[video_prompt(processor, q) for q in questions], padding_side="left",
                            videos=[random_video(0, 4), random_video(1, 4, 84, 168)], fps=[0.5, 0.25]))  # fmt: skip
    for key in ("pixel_values_videos", "spatial_pixel_values"):
        inputs[key] = inputs[key].to(dtype)
    return PromptBatch(inputs, [{"id": str(i), "question": q} for i, q in enumerate(questions)])


def sampling(processor, *, max_new_tokens=16, temperature=1.0, top_p=1.0, top_k=0) -> Sampling:
    tok = processor.tokenizer
    media = tuple(tok.convert_tokens_to_ids(t) for t in ("<|video_pad|>", "<|image_pad|>"))
    return Sampling(G, max_new_tokens, temperature, tok.convert_tokens_to_ids("<|im_end|>"), tok.pad_token_id,
                    suppress_token_ids=media, top_p=top_p, top_k=top_k)  # fmt: skip


@pytest.mark.parametrize("settings", [{}, {"temperature": 0.7, "top_p": 0.9, "top_k": 40}])
def test_shared_generation_samples_the_repeated_samples(tiny, settings):
    """Same RNG state, same tokens: the prefill once per prompt changes no logit that matters and
    no random draw. Rows that reach eos continue with padding; others stop at max_new_tokens."""
    model, processor = tiny
    batch, s = timed_batch(processor), sampling(processor, **settings)
    calls = []
    hook = model.model.language_model.register_forward_pre_hook(lambda _m, _a, kw: calls.append(kw["inputs_embeds"].shape),
                                                                 with_kwargs=True)  # fmt: skip
    ended_early = 0
    try:
        for seed in range(3):
            torch.manual_seed(seed)
            calls.clear()
            shared = generate(model, batch, s)
            prefill, *decoding = calls
            torch.manual_seed(seed)
            repeated = generate(model, batch, s, shared_prefix=False)
            assert torch.equal(shared.completion_ids, repeated.completion_ids)
            assert torch.equal(shared.completion_mask, repeated.completion_mask)
            assert shared.completion_ids.shape[1] <= s.max_new_tokens
            ended_early += int((shared.lengths < shared.completion_ids.shape[1]).sum())
            assert prefill[:2] == batch.inputs["input_ids"].shape  # [B, P]: each prompt once, not [B*G, P]
            assert decoding and all(c[:2] == (2, G) for c in decoding)  # then one token per completion per step
    finally:
        hook.remove()
    assert ended_early  # eos and the padding after it were exercised


def _engine(model, accumulation):
    groups = modeling.trainable_parameter_groups(model, lr_llm=1e-3, lr_connector=1e-3, weight_decay=0.1)
    return TorchEngine(model, torch.optim.AdamW(groups, eps=1e-6, foreach=False), accumulation=accumulation,
                       max_grad_norm=1.0)  # fmt: skip


@pytest.mark.parametrize("micro_batch_prompts", [1, 2])  # accumulation 2 and 1
def test_shared_update_equals_repeated_update(micro_batch_prompts):
    """Two optimizer updates (num_iterations 2) with old-policy ratios, a KL to the reference and
    gradient checkpointing on: the weights, losses and statistics of both paths agree to fp32
    summation order."""
    model, processor = modeling.load("tiny", seed=0)
    batch, s = timed_batch(processor), sampling(processor)
    torch.manual_seed(0)
    rollouts = generate(model, batch, s)
    advantages = rl_math.group_advantages(torch.tensor([0.0, 1, 2, 0.5, 2, 0, 1, 1.5]), G)
    reference = copy.deepcopy(model).eval().requires_grad_(False)
    results, encoder_calls = {}, []
    reference.model.visual.register_forward_pre_hook(lambda *_: encoder_calls.append("reference"))
    for shared in (True, False):
        encoder_calls.clear()
        policy = copy.deepcopy(model).train()
        policy.model.visual.register_forward_pre_hook(lambda *_: encoder_calls.append("policy"))
        policy.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})  # as training
        grpo = GRPOConfig(num_generations=G, max_completion_length=16, prompts_per_step=2, num_iterations=2,
                          micro_batch_prompts=micro_batch_prompts, beta=0.04, shared_prefix=shared)  # fmt: skip
        old = old_logprobs(policy, rollouts, grpo, s.suppress_token_ids)
        ref = reference_logprobs(reference, batch, rollouts, grpo, s.suppress_token_ids)
        stats = policy_step(_engine(policy, grpo.accumulation), batch, rollouts, advantages, old, ref, grpo,
                            s.suppress_token_ids)  # fmt: skip
        weights = {n: p.detach() for n, p in policy.named_parameters() if p.requires_grad}
        results[shared] = old, ref, stats, weights
        # shared: the frozen encoders ran at generation only; repeated: the reference and each update re-encode
        updates = grpo.num_iterations * grpo.accumulation  # micro-batch forwards of the update
        assert encoder_calls == ([] if shared else ["reference"] + ["policy"] * updates)
    (old_s, ref_s, stats_s, w_s), (old_r, ref_r, stats_r, w_r) = results[True], results[False]
    mask = rollouts.completion_mask.bool()
    torch.testing.assert_close(old_s[mask], old_r[mask], rtol=0, atol=1e-5)
    torch.testing.assert_close(ref_s[mask], ref_r[mask], rtol=0, atol=1e-5)
    for key in ("loss", "kl", "entropy", "grad_norm"):
        assert stats_s[key] == pytest.approx(stats_r[key], rel=1e-4, abs=1e-6), key
    moved = max(float((w_r[k] - p.detach()).abs().max()) for k, p in model.named_parameters() if k in w_r)
    assert moved > 1e-3
    assert max(float((w_s[k] - w_r[k]).abs().max()) for k in w_s) < 1e-5


def test_bf16_logprobs_of_shared_and_repeated_prompts_agree_to_bf16_precision():
    """bf16 keeps 8 bits of mantissa: logits near 5 are resolved to ~0.02, and summing the prompt's
    keys in another order moves a log-prob by up to ~2e-3 here. Stated tolerance: 1e-2."""
    model, processor = modeling.load("tiny", seed=0, dtype="bf16")
    batch, s = timed_batch(processor, torch.bfloat16), sampling(processor, max_new_tokens=12)
    torch.manual_seed(0)
    shared = generate(model, batch, s)
    torch.manual_seed(0)
    assert torch.equal(shared.completion_ids, generate(model, batch, s, shared_prefix=False).completion_ids)
    a, _ = rollout_logprobs(model, shared, temperature=1.0, batch_size=8, suppress_token_ids=s.suppress_token_ids)
    b, _ = rollout_logprobs(model, shared, temperature=1.0, batch_size=8, suppress_token_ids=s.suppress_token_ids,
                            shared_prefix=False)  # fmt: skip
    mask = shared.completion_mask.bool()
    assert float((a - b)[mask].abs().max()) < 1e-2
