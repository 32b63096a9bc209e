"""Shared prefixes: the block mask and packed layout by hand, and a packed forward / a branch
decoder against the same continuations each run after its own copy of the prompt."""

from __future__ import annotations

import torch

from modeling.model import videos_for_rows
from modeling.shared_prefix import PADDING, BranchDecoder, block_mask, pack_branches
from tests.modeling.helpers import random_video, video_prompt


def allowed(mask: torch.Tensor) -> list[list[int]]:
    return (mask[0, 0] == 0).int().tolist()


def test_block_mask_by_hand():
    """Packed row: pad, prompt x2, then branches 1 and 2 interleaved (as decoding appends them)."""
    branch = torch.tensor([[PADDING, 0, 0, 1, 2, 1, 2]])
    assert allowed(block_mask(branch, branch, torch.float32)) == [
        [1, 0, 0, 0, 0, 0, 0],  # padding sees only itself
        [0, 1, 0, 0, 0, 0, 0],
        [0, 1, 1, 0, 0, 0, 0],
        [0, 1, 1, 1, 0, 0, 0],  # branch 1: the prompt and itself
        [0, 1, 1, 0, 1, 0, 0],  # branch 2: not branch 1
        [0, 1, 1, 1, 0, 1, 0],
        [0, 1, 1, 0, 1, 0, 1],
    ]
    # the last two tokens as queries over all seven keys: the same rows
    assert allowed(block_mask(branch, branch[:, -2:], torch.float32)) == [[0, 1, 1, 1, 0, 1, 0], [0, 1, 1, 0, 1, 0, 1]]
    assert block_mask(branch, branch, torch.bfloat16).min() == torch.finfo(torch.bfloat16).min


def test_pack_branches_by_hand():
    """One prompt of 3 tokens after a pad, largest position 7; G = 2 completions of 2 tokens, the
    second ended after its first (eos)."""
    packed = pack_branches(
        torch.tensor([[0, 11, 12, 13]]), torch.tensor([[0, 1, 1, 1]]),
        torch.tensor([[[0, 0, 7, 5]], [[0, 0, 3, 5]], [[0, 0, 2, 5]]]),
        torch.tensor([[21, 22], [31, 32]]), torch.tensor([[1, 1], [1, 0]]),
    )  # fmt: skip
    assert packed.input_ids.tolist() == [[0, 11, 12, 13, 21, 22, 31, 32]]
    assert packed.branch.tolist() == [[PADDING, 0, 0, 0, 1, 1, 2, PADDING]]
    assert packed.position_ids[:, 0, 4:].tolist() == [[8, 9, 8, 9]] * 3  # largest + 1 + index, per branch
    assert packed.logit_index.tolist() == [3, 4, 3, 6]  # t = 0 from the prompt's last token
    logits = torch.arange(4.0).view(1, 4, 1)
    assert packed.per_branch(logits).view(2, 2).tolist() == [[0.0, 1.0], [2.0, 3.0]]


def timed_prompts(model, processor):
    """Two left-padded prompts of different lengths, videos at 4 and 8 s per frame pair."""
    batch = processor(
        text=[video_prompt(processor), video_prompt(processor, "Which is closer to the bed, the sofa or the lamp?")],
        videos=[random_video(0, 4), random_video(1, 4, 84, 168)], padding_side="left", fps=[0.5, 0.25],
    )  # fmt: skip
    with torch.no_grad():
        embeds = model.encode_videos(batch["pixel_values_videos"], batch["video_grid_thw"], batch["spatial_pixel_values"])
    return batch, embeds


def test_packed_forward_equals_each_completion_after_its_own_prompt(tiny):
    model, processor = tiny
    batch, embeds = timed_prompts(model, processor)
    G, T = 3, 5
    completions = torch.randint(0, 250, (2 * G, T), generator=torch.Generator().manual_seed(0))
    cmask = torch.ones_like(completions)
    cmask[1, 3:] = 0  # one completion ended early
    positions = model.prompt_positions(batch["input_ids"], batch["attention_mask"], batch["video_grid_thw"],
                                       batch["second_per_grid_ts"])  # fmt: skip
    packed = pack_branches(batch["input_ids"], batch["attention_mask"], positions, completions, cmask)
    with torch.no_grad():
        shared = model(input_ids=packed.input_ids, attention_mask=packed.attention_mask(torch.float32),
                       position_ids=packed.position_ids, logits_to_keep=packed.logit_index,
                       video_grid_thw=batch["video_grid_thw"], video_embeds=embeds).logits  # fmt: skip
        shared = packed.per_branch(shared)  # [2G, T, V]
        rows = [i // G for i in range(2 * G)]
        embeds_g, grid_g = videos_for_rows(embeds, batch["video_grid_thw"], rows)
        repeated = model(
            input_ids=torch.cat([batch["input_ids"][rows], completions], 1),
            attention_mask=torch.cat([batch["attention_mask"][rows], cmask], 1),
            video_grid_thw=grid_g, video_embeds=embeds_g, second_per_grid_ts=batch["second_per_grid_ts"][rows],
        ).logits[:, -T - 1 : -1]  # fmt: skip
    valid = cmask.bool()
    assert packed.input_ids.shape[1] == batch["input_ids"].shape[1] + G * T  # one copy of each prompt
    torch.testing.assert_close(shared[valid], repeated[valid], rtol=1e-5, atol=1e-5)


def test_branch_decoder_continues_questions_after_one_prefill(tiny):
    """Evaluation's use: a shared prefix (system turn + video) prefilled once, then three question
    suffixes of different lengths packed in one row, then two decoding steps: each branch's
    logits equal the same tokens run after their own full copy of the prompt."""
    model, processor = tiny
    questions = ["How many chairs?", "Which is closer to the bed, the sofa or the lamp?", "Room size?"]
    texts = [video_prompt(processor, q) for q in questions]
    batch = processor(text=texts, videos=[random_video(0, 4)] * 3, padding_side="left", fps=[0.25] * 3)
    rows = [r[m.bool()].tolist() for r, m in zip(batch["input_ids"], batch["attention_mask"], strict=True)]
    shared = next(i for i in range(len(rows[0])) if len({tuple(r[: i + 1]) for r in rows}) > 1)
    n = int(batch["video_grid_thw"][0].prod())  # the first video's patch rows
    with torch.no_grad():
        embeds = model.encode_videos(batch["pixel_values_videos"][:n], batch["video_grid_thw"][:1],
                                     batch["spatial_pixel_values"][:n])  # fmt: skip
        prefix = torch.tensor([rows[0][:shared]])
        positions = model.prompt_positions(prefix, torch.ones_like(prefix), batch["video_grid_thw"][:1],
                                           batch["second_per_grid_ts"][:1])  # fmt: skip
        decoder = BranchDecoder(model, torch.float32)
        decoder.prefill(prefix, torch.ones_like(prefix), positions, video_grid_thw=batch["video_grid_thw"][:1],
                        video_embeds=embeds)  # fmt: skip
        decoder.begin(3)
        suffix = [t for r in rows for t in r[shared:]]
        branch = [g + 1 for g, r in enumerate(rows) for _ in r[shared:]]
        steps = [decoder.extend(torch.tensor([suffix]), torch.tensor([branch]))[0]]  # [3, V]
        new = torch.tensor([[5, 6, 7], [8, 9, 10]])  # two more tokens per branch
        for tokens in new:
            steps.append(decoder.step(tokens[None])[0])
        full = model(
            input_ids=torch.cat([batch["input_ids"], new.T], 1),
            attention_mask=torch.cat([batch["attention_mask"], torch.ones(3, 2, dtype=torch.long)], 1),
            pixel_values_videos=batch["pixel_values_videos"], spatial_pixel_values=batch["spatial_pixel_values"],
            video_grid_thw=batch["video_grid_thw"], second_per_grid_ts=batch["second_per_grid_ts"],
        ).logits[:, -3:]  # [3 questions, 3 steps, V]  # fmt: skip
    assert shared > 32  # the video (32 tokens) is in the shared part
    torch.testing.assert_close(torch.stack(steps, 1), full, rtol=1e-5, atol=1e-5)
    decoder.begin(1)  # a new batch of branches after the same prefill: the cache is back to the prefix
    assert decoder.cache.get_seq_length() == shared and decoder.key_branch.shape[1] == shared
