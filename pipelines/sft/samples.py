"""One SFT sample: a record's conversation as token ids with the assistant-only label mask, its
frames resized and patchified (uint8); and the collate that pads samples into a micro-batch and
scales the pixels for both encoders there, in the training worker (an eighth of the bytes the two
float tensors would take through Ray Data).

The conversation (`prompting.chat`: system, then one user and assistant turn, or a file record's
several) is cut where each assistant answer starts and ends: the prompt up to the first answer
(system + user turn + the assistant header) is tokenised on its own, exactly as at generation time,
then each answer (`{answer}<|im_end|>\n`) and each later user turn with the next assistant header.
Labels are -100 on everything but the answers: system and user turns, assistant headers and the
newline after each `<|im_end|>` (trained too with sft.train_turn_end_newline, as the authors'
loader does); the answer tokens and `<|im_end|>` (so the model learns to stop) are trained. A video's `second_per_grid_ts` (temporal_patch_size / fps of its sampled frames) goes
with the sample; NaN when the frames have no timing (scans, folders, images).
"""

from __future__ import annotations

import io
from typing import Any

import numpy as np

from pipelines import prompting

IGNORE = -100
END_OF_TURN = "<|im_end|>"
# Arrays of one sample, in the order they are stored.
SAMPLE_KEYS = ("input_ids", "labels", "mm_token_type_ids", "video_pixel_rows", "video_grid_thw", "second_per_grid_ts")


def segments(processor, record: dict[str, Any], *, think: bool, style: str) -> list[tuple[str, bool]]:
    """The rendered conversation cut into (text, trained) pieces: untrained pieces end with an
    assistant header, trained pieces are one answer each (`{answer}<|im_end|>\n`)."""
    conversation = prompting.chat(record, think=think, style=style)
    out: list[tuple[str, bool]] = []
    done = ""
    for k, message in enumerate(conversation):
        if message["role"] != "assistant":
            continue
        prefix = processor.apply_chat_template(conversation[:k], add_generation_prompt=True)
        full = processor.apply_chat_template(conversation[: k + 1])
        if not (prefix.startswith(done) and full.startswith(prefix)):
            raise ValueError("the chat template renders a conversation's start differently with more turns")
        out += [(prefix[len(done) :], False), (full[len(prefix) :], True)]
        done = full
    return out


def encode_sample(
    processor,
    record: dict[str, Any],
    frames: list[np.ndarray],
    *,
    think: bool,
    max_length: int,
    style: str = prompting.DEFAULT_STYLE,
    fps: float | None = None,
    train_newline: bool = False,
) -> tuple[dict[str, np.ndarray], bool]:
    """(arrays, truncated): `input_ids`, `labels`, `mm_token_type_ids` `[L]` int64,
    `video_pixel_rows` `[t*h*w, 1176]` uint8, `video_grid_thw` `[n, 3]`, `second_per_grid_ts`
    `[n]` float32 (from `fps`, the sampled frames' rate; NaN when None): n = 1 video, or one
    block per image when the conversation shows each of `frames` (data.mixture.image_lists=images).

    A sample longer than max_length loses its tail (truncated=True); one whose video tokens do not
    fit, or whose conversation does not show the video exactly once, raises RecordError.
    `train_newline`: also label the newline after each answer's <|im_end|> (sft.train_turn_end_newline).
    """
    pieces = segments(processor, record, think=think, style=style)  # sft.prompt_style
    with_video = [i for i, (text, _) in enumerate(pieces) if processor.video_token in text]
    shown = sum(text.count(processor.video_token) for text, _ in pieces)
    if len(with_video) != 1 or shown == 0:
        raise prompting.RecordError(f"record {record['id']}: its conversation must show its video in one user turn")
    if shown == 1:
        videos = [frames]
    elif shown == len(frames):  # data.mixture.image_lists=images: each image its own block
        videos = [[frame] for frame in frames]
    else:
        raise prompting.RecordError(
            f"record {record['id']}: its conversation shows {shown} images but {len(frames)} were read "
            "(an image list is thinned to sft.num_frames: raise it to at least the list's length)"
        )
    end = processor.tokenizer.convert_tokens_to_ids(END_OF_TURN)
    ids_parts, label_parts, type_parts = [], [], []
    for i, (text, trained) in enumerate(pieces):
        if i == with_video[0]:
            enc = processor(text=[text], videos=videos, return_tensors="np", pixel_rows=True, fps=fps)
            ids = enc["input_ids"][0].astype(np.int64)  # [P]
            types = enc["mm_token_type_ids"][0].astype(np.int64)  # [P]
        else:
            ids = np.asarray(processor.tokenizer(text, add_special_tokens=False)["input_ids"], dtype=np.int64)
            types = np.zeros_like(ids)
        labels = np.full_like(ids, IGNORE)
        if trained:
            labels = ids.copy()
            ends = np.flatnonzero(ids == end)
            if len(ends) and not train_newline:
                labels[ends[-1] + 1 :] = IGNORE  # the template's newline after <|im_end|>
        ids_parts.append(ids)
        label_parts.append(labels)
        type_parts.append(types)
    input_ids = np.concatenate(ids_parts)  # [L]
    labels = np.concatenate(label_parts)  # [L]
    types = np.concatenate(type_parts)  # [L]
    truncated = len(input_ids) > max_length
    if truncated:
        last_video = int(np.flatnonzero(types)[-1]) if types.any() else -1
        if last_video >= max_length:
            raise prompting.RecordError(
                f"record {record['id']}: its video alone needs {last_video + 1} tokens, more than "
                f"sft.max_length={max_length} (use fewer frames or a larger max_length)"
            )
        input_ids, labels, types = input_ids[:max_length], labels[:max_length], types[:max_length]
    seconds = enc["second_per_grid_ts"] if fps is not None else np.full(len(videos), np.nan)
    arrays = {
        "input_ids": input_ids,
        "labels": labels,
        "mm_token_type_ids": types,
        "video_pixel_rows": enc["video_pixel_rows"],
        "video_grid_thw": enc["video_grid_thw"].astype(np.int64),
        "second_per_grid_ts": np.asarray(seconds, dtype=np.float32),
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
    `[sum t*h*w, 1176]` float32 (the processor's scaling of the uint8 rows); `video_grid_thw`
    `[videos, 3]`; `second_per_grid_ts` `[videos]` when any sample's video has a frame rate (1.0,
    the model's default, for those without), else left out; `videos_per_sample` `[B]` when a
    sample shows several image blocks."""
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
    batch = {
        "input_ids": padded("input_ids", pad_token_id),
        "attention_mask": torch.from_numpy(mask),
        "mm_token_type_ids": padded("mm_token_type_ids", 0),
        "labels": padded("labels", IGNORE),
        **{k: torch.from_numpy(v) for k, v in pixels.items()},
        "video_grid_thw": torch.from_numpy(np.concatenate([s["video_grid_thw"] for s in samples])),  # [videos, 3]
    }
    seconds = np.concatenate([s["second_per_grid_ts"] for s in samples])  # [videos]
    if not np.isnan(seconds).all():
        batch["second_per_grid_ts"] = torch.from_numpy(np.nan_to_num(seconds, nan=1.0))
    counts = [len(s["video_grid_thw"]) for s in samples]
    if max(counts) > 1:  # image blocks: the spatial encoder sees each sample's images as one sequence
        batch["videos_per_sample"] = torch.tensor(counts)
    return batch
