"""One SFT sample: a record's prompt + target as token ids with the answer-only label mask, its
frames resized and patchified (uint8); and the collate that pads samples into a micro-batch and
scales the pixels for both encoders there, in the training worker (an eighth of the bytes the two
float tensors would take through Ray Data).

The prompt (system + user turn + the assistant header) is tokenised on its own, exactly as at
generation time, and the assistant's turn (`{target}<|im_end|>\n`) after it. Labels are -100 on
the prompt and on the newline after `<|im_end|>`; the target tokens and `<|im_end|>` (so the model
learns to stop) are trained.
"""

from __future__ import annotations

import io
from typing import Any

import numpy as np

from pipelines import prompting

IGNORE = -100
END_OF_TURN = "<|im_end|>"
# Arrays of one sample, in the order they are stored.
SAMPLE_KEYS = ("input_ids", "labels", "mm_token_type_ids", "video_pixel_rows", "video_grid_thw")


def encode_sample(
    processor,
    record: dict[str, Any],
    frames: list[np.ndarray],
    *,
    think: bool,
    max_length: int,
    style: str = prompting.DEFAULT_STYLE,
) -> tuple[dict[str, np.ndarray], bool]:
    """(arrays, truncated): `input_ids`, `labels`, `mm_token_type_ids` `[L]` int64,
    `video_pixel_rows` `[t*h*w, 1176]` uint8, `video_grid_thw` `[1, 3]`.

    A sample longer than max_length loses its tail (truncated=True); one whose video tokens do not
    fit raises RecordError.
    """
    prompt = prompting.prompt_text(processor, record, think=think, style=style)  # sft.prompt_style
    target = prompting.target_text(record, think=think)
    conversation = prompting.messages(record, think=think, style=style) + [{"role": "assistant", "content": target}]
    full = processor.apply_chat_template(conversation)
    if not full.startswith(prompt):
        raise ValueError("the chat template renders the prompt differently with an assistant turn")
    suffix = full[len(prompt) :]  # "{target}<|im_end|>\n"
    enc = processor(text=[prompt], videos=[frames], return_tensors="np", pixel_rows=True)
    prompt_ids = enc["input_ids"][0].astype(np.int64)  # [P]
    suffix_ids = np.asarray(processor.tokenizer(suffix, add_special_tokens=False)["input_ids"], dtype=np.int64)
    suffix_labels = suffix_ids.copy()
    end = processor.tokenizer.convert_tokens_to_ids(END_OF_TURN)
    ends = np.flatnonzero(suffix_ids == end)
    if len(ends):
        suffix_labels[ends[-1] + 1 :] = IGNORE  # the template's newline after <|im_end|>
    input_ids = np.concatenate([prompt_ids, suffix_ids])  # [L]
    labels = np.concatenate([np.full_like(prompt_ids, IGNORE), suffix_labels])  # [L]
    types = np.concatenate([enc["mm_token_type_ids"][0].astype(np.int64), np.zeros_like(suffix_ids)])  # [L]
    truncated = len(input_ids) > max_length
    if truncated:
        last_video = int(np.flatnonzero(types)[-1]) if types.any() else -1
        if last_video >= max_length:
            raise prompting.RecordError(
                f"record {record['id']}: its video alone needs {last_video + 1} tokens, more than "
                f"sft.max_length={max_length} (use fewer frames or a larger max_length)"
            )
        input_ids, labels, types = input_ids[:max_length], labels[:max_length], types[:max_length]
    arrays = {
        "input_ids": input_ids,
        "labels": labels,
        "mm_token_type_ids": types,
        "video_pixel_rows": enc["video_pixel_rows"],
        "video_grid_thw": enc["video_grid_thw"].astype(np.int64),
    }
    return arrays, truncated


def pack(arrays: dict[str, np.ndarray]) -> bytes:
    """One sample as bytes (an uncompressed .npz), so Ray Data moves it as a plain binary value."""
    buf = io.BytesIO()
    np.savez(buf, **{k: arrays[k] for k in SAMPLE_KEYS})
    return buf.getvalue()


def unpack(blob: bytes) -> dict[str, np.ndarray]:
    with np.load(io.BytesIO(blob), allow_pickle=False) as f:
        return {k: f[k] for k in SAMPLE_KEYS}


def collate(samples: list[dict[str, np.ndarray]], processor) -> dict:
    """Right-pad samples into one micro-batch of torch tensors: `input_ids`, `attention_mask`,
    `mm_token_type_ids`, `labels` `[B, L]`; `pixel_values_videos`, `spatial_pixel_values`
    `[sum t*h*w, 1176]` float32 (the processor's scaling of the uint8 rows); `video_grid_thw` `[B, 3]`."""
    import torch

    pad_token_id = processor.tokenizer.pad_token_id
    pixels = processor.pixel_values(np.concatenate([s["video_pixel_rows"] for s in samples]))
    width = max(len(s["input_ids"]) for s in samples)

    def padded(key: str, value: int) -> torch.Tensor:
        out = np.full((len(samples), width), value, dtype=np.int64)  # [B, L]
        for row, s in enumerate(samples):
            out[row, : len(s[key])] = s[key]
        return torch.from_numpy(out)

    mask = np.zeros((len(samples), width), dtype=np.int64)  # [B, L]
    for row, s in enumerate(samples):
        mask[row, : len(s["input_ids"])] = 1
    return {
        "input_ids": padded("input_ids", pad_token_id),
        "attention_mask": torch.from_numpy(mask),
        "mm_token_type_ids": padded("mm_token_type_ids", 0),
        "labels": padded("labels", IGNORE),
        **{k: torch.from_numpy(v) for k, v in pixels.items()},
        "video_grid_thw": torch.from_numpy(np.concatenate([s["video_grid_thw"] for s in samples])),  # [B, 3]
    }
