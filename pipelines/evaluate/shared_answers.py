"""The questions of one video answered from one prefill of what their prompts share.

The prompts of a video's questions agree token for token up to the end of the video (system
turn, the video's ~3,000 placeholder tokens); only the question text after it differs. That
common part is computed once per video; each batch of questions then continues from its KV
cache, the questions packed one after another in a single row under a block mask
(`modeling.shared_prefix`), and decodes greedily one token per question per step.

The answers are those of `model.generate` on the full, left-padded prompts (eval.shared_prefix
false): the same positions (Qwen's rule), the same logits processors (the model's
generation_config included), the same argmax or draw, up to float summation order in the logits.
"""

from __future__ import annotations

import torch


def common_prefix_length(rows: list[list[int]]) -> int:
    """Tokens all rows share at their start, leaving every row at least one token of its own (the
    first answer token is predicted from a row's own last token)."""
    shortest = min(len(r) for r in rows)
    n = 0
    while n < shortest - 1 and all(r[n] == rows[0][n] for r in rows):
        n += 1
    return n


def shared_prefix_answers(
    model,
    tokenizer,
    texts: list[str],
    video_embeds: torch.Tensor,
    video_grid_thw: torch.Tensor,
    second_per_grid_ts: torch.Tensor | None,
    *,
    batch_size: int,
    generation: dict,
) -> list[torch.Tensor] | None:
    """Answer tokens (one `[T]` tensor per text, eos and padding after it included) for prompts
    `texts` whose video placeholders are expanded, all showing the one video of `video_embeds`
    `[tokens, hidden]`; `batch_size` questions decode together, with `generation` (generate's
    settings: greedy, or the authors' sampling, and max_new_tokens). None when the
    texts' media tokens are not all in their common part (e.g. a verbatim turn with text before
    the video): the caller then answers them one prompt each."""
    from transformers import GenerationConfig

    from modeling.shared_prefix import BranchDecoder, decode_branches, generation_rules

    device = video_embeds.device
    rows = [tokenizer(t)["input_ids"] for t in texts]
    shared = common_prefix_length(rows)
    media = {model.config.video_token_id, model.config.image_token_id}
    if any(token in media for row in rows for token in row[shared:]):
        return None
    prefix = torch.tensor([rows[0][:shared]], device=device)  # [1, C]
    mask = torch.ones_like(prefix)
    positions = model.prompt_positions(prefix, mask, video_grid_thw, second_per_grid_ts)  # [3, 1, C]
    decoder = BranchDecoder(model, dtype=model.lm_head.weight.dtype)
    decoder.prefill(prefix, mask, positions, video_grid_thw=video_grid_thw, video_embeds=video_embeds)
    answers: list[torch.Tensor] = []
    for start in range(0, len(texts), batch_size):
        chunk = list(range(start, min(start + batch_size, len(texts))))
        # What generate would be given: the same left-padded rows (logits processors read them).
        padded = tokenizer([texts[i] for i in chunk], padding=True, padding_side="left", return_tensors="pt")
        history = padded["input_ids"].to(device)  # [k, L]
        processors, eos, pad, do_sample = generation_rules(model, GenerationConfig(**generation), history.shape[1])
        decoder.begin(len(chunk))
        suffix = [tok for i in chunk for tok in rows[i][shared:]]
        branch = [g + 1 for g, i in enumerate(chunk) for _ in rows[i][shared:]]
        first = decoder.extend(torch.tensor([suffix], device=device), torch.tensor([branch], device=device))
        tokens = decode_branches(decoder, first, history, processors=processors, eos_token_ids=eos,
                                 pad_token_id=pad, do_sample=do_sample, max_new_tokens=generation["max_new_tokens"])  # fmt: skip
        answers += list(tokens)
    return answers
