"""3D RoPE positions by Qwen's original rule: hand-computed cases, an independent per-token
reference, the model's forward and generation wired to it."""

from __future__ import annotations

import torch

from modeling.rope import qwen_position_ids
from tests.modeling.helpers import random_video, video_prompt

T, IMG, V = 0, 1, 2  # token types: text, image, video


def positions(types, **kwargs):
    kwargs.setdefault("spatial_merge", 2)
    kwargs.setdefault("tokens_per_second", 2)
    return qwen_position_ids(torch.tensor(types), **kwargs)


def test_text_after_a_timed_video_starts_after_its_largest_temporal_position():
    """2 text tokens, a video of 2 frame pairs x 2x2 merged tokens at 3 s per pair, 3 text tokens;
    two left pads. Temporal positions: pair 0 -> 2 + 0, pair 1 -> 2 + int(1 * 3.0 * 2) = 8. The
    text after it starts at 9 (transformers 5.24 would start it at 2 + max(2, 2) = 4)."""
    pos, delta = positions(
        [[T, T, T, T, V, V, V, V, V, V, V, V, T, T, T]],
        video_grid_thw=torch.tensor([[2, 4, 4]]),
        second_per_grid_ts=torch.tensor([3.0]),
        attention_mask=torch.tensor([[0, 0] + [1] * 13]),
    )
    expected = torch.tensor([
        [0, 0, 0, 1, 2, 2, 2, 2, 8, 8, 8, 8, 9, 10, 11],
        [0, 0, 0, 1, 2, 2, 3, 3, 2, 2, 3, 3, 9, 10, 11],
        [0, 0, 0, 1, 2, 3, 2, 3, 2, 3, 2, 3, 9, 10, 11],
    ])  # fmt: skip
    assert torch.equal(pos[:, 0], expected)
    assert delta.tolist() == [[12 - 13]]  # largest + 1 - unpadded length


def test_an_image_has_temporal_zero_and_text_follows_its_grid():
    """1 text token, an image of 2x3 merged tokens (grid 1x4x6), 2 text tokens."""
    pos, delta = positions([[T, IMG, IMG, IMG, IMG, IMG, IMG, T, T]], image_grid_thw=torch.tensor([[1, 4, 6]]))
    assert pos[:, 0].tolist() == [
        [0, 1, 1, 1, 1, 1, 1, 4, 5],
        [0, 1, 1, 1, 2, 2, 2, 4, 5],
        [0, 1, 2, 3, 1, 2, 3, 4, 5],
    ]
    assert delta.tolist() == [[6 - 9]]


def test_fractional_spacing_is_truncated_in_the_reference_order():
    """0.7 s per pair x 2 tokens/s: pairs 0..3 -> int(0, 1.4, 2.8, 4.2) = 0, 1, 2, 4; one merged token each."""
    pos, _ = positions([[V, V, V, V, T]], video_grid_thw=torch.tensor([[4, 2, 2]]), second_per_grid_ts=torch.tensor([0.7]))
    assert pos[0, 0].tolist() == [0, 1, 2, 4, 5]


def reference_positions(types: list[int], grids: list[list[int]], seconds: list[float], tps: float, merge: int):
    """Token by token: a medium's token k sits at (pair, row, column) = divmod of k; text one past the
    largest position so far. `grids`/`seconds`: this row's media in order (seconds 0 = image)."""
    out, largest, medium, k, base = [], -1, -1, 0, 0
    for kind in types:
        if kind == T:
            largest += 1
            out.append((largest,) * 3)
            continue
        if k == 0:  # a new medium starts
            medium, base = medium + 1, largest + 1
        t, h, w = grids[medium]
        h, w = h // merge, w // merge
        pair, rest = divmod(k, h * w)
        row, col = divmod(rest, w)
        p = (base + int(pair * seconds[medium] * tps), base + row, base + col)
        out.append(p)
        k = (k + 1) % (t * h * w)
        largest = max(largest, *p)
    return out


def test_batch_with_padding_two_videos_and_an_image_matches_the_per_token_reference():
    video_a, video_b, image = [4, 4, 6], [6, 2, 4], [1, 2, 2]
    n = lambda g: g[0] * g[1] * g[2] // 4  # noqa: E731 - merged tokens
    row0 = [T] * 3 + [V] * n(video_a) + [T] * 4 + [IMG] * n(image) + [T] * 2
    row1 = [T] * 5 + [V] * n(video_b) + [T] * 6
    L = max(len(row0), len(row1))
    types = [[T] * (L - len(r)) + r for r in (row0, row1)]
    mask = [[0] * (L - len(r)) + [1] * len(r) for r in (row0, row1)]
    pos, delta = positions(
        types, video_grid_thw=torch.tensor([video_a, video_b]), image_grid_thw=torch.tensor([image]),
        second_per_grid_ts=torch.tensor([2.5, 12.0]), attention_mask=torch.tensor(mask),
    )  # fmt: skip
    for b, (row, grids, seconds) in enumerate([(row0, [video_a, image], [2.5, 0]), (row1, [video_b], [12.0])]):
        want = reference_positions(row, grids, seconds, 2, 2)
        got = pos[:, b, L - len(row) :].T.tolist()
        assert got == [list(p) for p in want]
        assert delta[b, 0] == max(max(p) for p in want) + 1 - len(row)
    assert int(pos[:, 1].max()) == 5 + 5 * 24 + 6  # video b: 6 pairs at 12 s -> temporal 0..120


def test_forward_and_generation_use_qwen_positions(tiny):
    """A 4-frame video at 8 s per frame pair: temporal extent 16 > spatial 4. The model's forward
    equals a forward fed this rule's positions, and each decoded token sits at the prompt's
    largest position + 1 + k."""
    model, processor = tiny
    batch = processor(
        text=[video_prompt(processor), video_prompt(processor, "Which is closer, the sofa or the bed?")],
        videos=[random_video(0, 4), random_video(1, 4)], padding_side="left", fps=[0.25, 0.25],
    )  # fmt: skip
    assert batch["second_per_grid_ts"].tolist() == [8.0, 8.0]
    expected, _ = positions(
        batch["mm_token_type_ids"].tolist(), video_grid_thw=batch["video_grid_thw"],
        second_per_grid_ts=batch["second_per_grid_ts"], attention_mask=batch["attention_mask"],
    )  # fmt: skip
    seen = []
    hook = model.model.language_model.register_forward_pre_hook(
        lambda _m, _a, kw: seen.append(kw["position_ids"].clone()), with_kwargs=True
    )
    try:
        with torch.no_grad():
            logits = model(**batch).logits
            explicit = model(**batch, position_ids=expected).logits
            model.generate(**batch, max_new_tokens=4, do_sample=False)
    finally:
        hook.remove()
    assert torch.equal(seen[0], expected)
    torch.testing.assert_close(logits, explicit, rtol=0, atol=0)
    prompt, *decode = seen[2:]
    assert torch.equal(prompt[-3:], expected)  # generation's [4, B, L]: text row, then t, h, w
    largest = expected.amax(dim=(0, 2))  # [B]
    assert int(largest.min()) >= 16  # the video's temporal extent is the largest position
    for k, step in enumerate(decode):
        assert step.shape[-1] == 1
        for b in range(2):
            assert step[-3:, b, 0].tolist() == [int(largest[b]) + 1 + k] * 3
