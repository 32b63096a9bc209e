"""Rollouts and log-probs: one encoding per prompt reused everywhere, masks ending at eos."""

from __future__ import annotations

import torch

from pipelines.grpo.logprobs import rollout_logprobs
from pipelines.grpo.rollout import Sampling, completion_mask, generate
from tests.pipelines.grpo.conftest import prompt_batch

G = 3


def _sampling(processor, max_new_tokens: int = 12) -> Sampling:
    tok = processor.tokenizer
    return Sampling(
        num_generations=G,
        max_new_tokens=max_new_tokens,
        temperature=0.7,
        eos_token_id=tok.convert_tokens_to_ids("<|im_end|>"),
        pad_token_id=tok.pad_token_id,
        suppress_token_ids=(tok.convert_tokens_to_ids("<|video_pad|>"), tok.convert_tokens_to_ids("<|image_pad|>")),
    )


def test_completion_mask_stops_at_first_eos():
    eos = 9
    ids = torch.tensor([[1, 2, eos, 4, eos], [1, 2, 3, 4, 5], [eos, 0, 0, 0, 0]])
    assert completion_mask(ids, eos).tolist() == [[1, 1, 1, 0, 0], [1, 1, 1, 1, 1], [1, 0, 0, 0, 0]]


def test_rollouts_shapes_groups_and_encoders_run_once(tiny):
    model, processor = tiny
    batch = prompt_batch(processor, 2)
    calls = []
    hook = model.model.visual.register_forward_pre_hook(lambda *_: calls.append(1))
    torch.manual_seed(0)
    try:
        rollouts = generate(model, batch, _sampling(processor))
    finally:
        hook.remove()
    assert len(calls) == 1  # both videos in one encoder call, none during generation
    assert rollouts.frozen is not None and rollouts.frozen.merge_units.shape[0] == 2 * 32  # kept for the step
    N, T = rollouts.completion_ids.shape
    assert N == 2 * G and T <= 12
    assert torch.equal(rollouts.prompt_ids[:G], batch.inputs["input_ids"][0].expand(G, -1))
    assert rollouts.video_embeds.shape[0] == 2 * 32  # one copy per prompt, not per rollout
    # after the first eos only padding follows, and the mask ends right at it
    eos, pad = _sampling(processor).eos_token_id, processor.tokenizer.pad_token_id
    for row, mask in zip(rollouts.completion_ids, rollouts.completion_mask, strict=True):
        n = int(mask.sum())
        hits = (row == eos).nonzero()
        if len(hits):
            assert n == int(hits[0]) + 1 and (row[n:] == pad).all()
        else:
            assert n == T


def test_logprobs_from_reused_embeds_equal_pixels_and_sampler(tiny):
    model, processor = tiny
    batch = prompt_batch(processor, 2)
    sampling = _sampling(processor)
    x = batch.inputs
    text = {k: x[k] for k in ("input_ids", "attention_mask", "mm_token_type_ids", "video_grid_thw")}
    with torch.no_grad():
        torch.manual_seed(1)
        embeds = model.encode_videos(x["pixel_values_videos"], x["video_grid_thw"], x["spatial_pixel_values"])
        out = model.generate(
            **text, video_embeds=embeds, do_sample=True, temperature=sampling.temperature,
            max_new_tokens=12, num_return_sequences=G, top_k=0, eos_token_id=sampling.eos_token_id,
            pad_token_id=sampling.pad_token_id, suppress_tokens=list(sampling.suppress_token_ids),
            output_scores=True, return_dict_in_generate=True,
        )  # fmt: skip
        torch.manual_seed(1)
        rollouts = generate(model, batch, sampling)
    assert torch.equal(rollouts.completion_ids, out.sequences[:, x["input_ids"].shape[1] :])

    reused, entropy = rollout_logprobs(
        model, rollouts, temperature=sampling.temperature, batch_size=4,
        suppress_token_ids=sampling.suppress_token_ids, with_entropy=True,
    )  # fmt: skip
    # the same completions scored from pixels, every rollout encoding its own copy of the video
    rows = x["video_grid_thw"].prod(-1).tolist()
    px = [torch.split(x[k], rows) for k in ("pixel_values_videos", "spatial_pixel_values")]
    with torch.no_grad():
        logits = model(
            input_ids=torch.cat([rollouts.prompt_ids, rollouts.completion_ids], 1),
            attention_mask=torch.cat([rollouts.prompt_mask, rollouts.completion_mask], 1),
            pixel_values_videos=torch.cat([px[0][i // G] for i in range(2 * G)]),
            spatial_pixel_values=torch.cat([px[1][i // G] for i in range(2 * G)]),
            video_grid_thw=x["video_grid_thw"].repeat_interleave(G, 0),
        ).logits[:, rollouts.prompt_ids.shape[1] - 1 : -1]
    logits = (logits / sampling.temperature).index_fill(-1, torch.tensor(sampling.suppress_token_ids), float("-inf"))
    direct = logits.log_softmax(-1).gather(-1, rollouts.completion_ids.unsqueeze(-1)).squeeze(-1)
    mask = rollouts.completion_mask.bool()
    torch.testing.assert_close(reused[mask], direct[mask], atol=1e-5, rtol=1e-5)
    # and they are the log-probs of the distribution the sampler drew from
    scores = torch.stack(out.scores, 1).log_softmax(-1)  # [N, T, V] after suppression and temperature
    sampler = scores.gather(-1, rollouts.completion_ids.unsqueeze(-1)).squeeze(-1)
    torch.testing.assert_close(reused[mask], sampler[mask], atol=1e-4, rtol=1e-4)
    assert entropy.shape == reused.shape and (entropy[mask] > 0).all()
