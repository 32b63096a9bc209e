"""One SFT sample from a real built record: the answer-only label mask, token by token; truncation;
collate; and the model's loss counting exactly the answer tokens."""

from __future__ import annotations

import numpy as np
import pyarrow.parquet as pq
import pytest
import torch

import modeling
from pipelines import media, prompting
from pipelines.sft.samples import IGNORE, collate, encode_sample, pack, unpack


@pytest.fixture(scope="module")
def processor():
    return modeling.load_processor("tiny")


@pytest.fixture(scope="module")
def record_and_frames(sft_data):
    records = pq.read_table(sft_data / "dataset" / "train").to_pylist()
    record = next(r for r in records if r["problem_type"] == "multiple_choice")
    scan = {**record, "media_kind": "scan", "media_paths": [str(sft_data / "scans" / record["video"])]}
    frames = prompting.record_clip(scan, sampling="space_aware", rule=media.FrameRule(4)).frames
    return record, frames


@pytest.mark.parametrize("think", [False, True])
def test_label_mask_token_by_token(processor, record_and_frames, think):
    record, frames = record_and_frames
    arrays, truncated = encode_sample(processor, record, frames, think=think, max_length=4096)
    assert not truncated
    ids, labels = arrays["input_ids"].tolist(), arrays["labels"].tolist()
    tok = processor.tokenizer
    end = tok.convert_tokens_to_ids("<|im_end|>")

    # The prompt alone, as generation sees it, is the first P tokens.
    prompt = prompting.prompt_text(processor, record, think=think)
    prompt_ids = processor(text=[prompt], videos=[frames], return_tensors="np")["input_ids"][0].tolist()
    n = len(prompt_ids)
    assert ids[:n] == prompt_ids
    assert tok.decode(ids[n:]) == prompting.target_text(record, think=think) + "<|im_end|>\n"

    # Token by token: nothing of system/user/assistant header is trained; every answer token and
    # <|im_end|> is; the newline after <|im_end|> is not.
    expected = [IGNORE] * n + ids[n:-1] + [IGNORE]
    for i, (got, want) in enumerate(zip(labels, expected, strict=True)):
        assert got == want, f"token {i} ({tok.decode([ids[i]])!r}): label {got}, expected {want}"
    assert ids[-2] == end and tok.decode([ids[-1]]) == "\n"
    trained = [t for t, lab in zip(ids, labels, strict=True) if lab != IGNORE]
    assert tok.decode(trained) == prompting.target_text(record, think=think) + "<|im_end|>"
    assert not any(t == processor.video_token_id for t in trained)
    assert arrays["mm_token_type_ids"].tolist() == [2 if t == processor.video_token_id else 0 for t in ids]


def test_the_turn_end_newline_is_trained_on_request(processor, record_and_frames):
    """sft.train_turn_end_newline (the authors' loader): the newline after <|im_end|> is labelled too."""
    record, frames = record_and_frames
    plain, _ = encode_sample(processor, record, frames, think=False, max_length=4096)
    theirs, _ = encode_sample(processor, record, frames, think=False, max_length=4096, train_newline=True)
    assert theirs["input_ids"].tolist() == plain["input_ids"].tolist()
    changed = np.flatnonzero(theirs["labels"] != plain["labels"]).tolist()
    assert changed == [len(plain["labels"]) - 1]  # only the last token, the newline
    assert processor.tokenizer.decode([int(theirs["labels"][-1])]) == "\n"


def test_sft_pixel_bounds_size_the_frames(record_and_frames):
    """sft.min_pixels / sft.max_pixels reach the SFT processor (the authors train every frame at
    ~306k pixels); null keeps the model's bounds."""
    from pipelines.sft.data import _processor

    record, frames = record_and_frames
    default = encode_sample(_processor("tiny", None), record, frames, think=False, max_length=4096)[0]
    small = encode_sample(_processor("tiny", None, 56 * 56, 56 * 56), record, frames, think=False, max_length=4096)[0]
    assert default["video_grid_thw"][0, 1:].prod() > small["video_grid_thw"][0, 1:].prod()
    assert small["video_grid_thw"][0, 1:].tolist() == [4, 4]  # 56x56 pixels: 4x4 patches


def test_truncation_keeps_the_video_and_refuses_when_it_cannot(processor, record_and_frames):
    record, frames = record_and_frames
    full, _ = encode_sample(processor, record, frames, think=True, max_length=4096)
    cut, truncated = encode_sample(processor, record, frames, think=True, max_length=len(full["input_ids"]) - 5)
    assert truncated
    assert cut["input_ids"].tolist() == full["input_ids"][:-5].tolist()
    assert cut["labels"].tolist() == full["labels"][:-5].tolist()
    with pytest.raises(prompting.RecordError, match="sft.max_length=20"):
        encode_sample(processor, record, frames, think=False, max_length=20)


def test_pack_roundtrip_and_collate_pads_right(processor, record_and_frames):
    record, frames = record_and_frames
    a, _ = encode_sample(processor, record, frames, think=False, max_length=4096)
    b, _ = encode_sample(processor, record, frames, think=True, max_length=4096)
    b = unpack(pack(b))
    batch = collate([a, b], processor)
    la, lb = len(a["input_ids"]), len(b["input_ids"])
    assert lb > la and batch["input_ids"].shape == (2, lb)
    assert batch["attention_mask"][0].tolist() == [1] * la + [0] * (lb - la)
    assert batch["labels"][0, la:].eq(IGNORE).all() and batch["input_ids"][0, la:].eq(processor.tokenizer.pad_token_id).all()
    assert batch["video_grid_thw"].shape == (2, 3)
    assert batch["pixel_values_videos"].shape[0] == 2 * a["video_pixel_rows"].shape[0]


def test_sample_ships_uint8_rows_and_collate_gives_the_processors_pixels(processor, record_and_frames):
    """The sample carries the frames as uint8 patch rows; the micro-batch's float tensors equal,
    bit for bit, what the processor gives for the same prompt and frames."""
    record, frames = record_and_frames
    arrays, _ = encode_sample(processor, record, frames, think=False, max_length=4096)
    assert arrays["video_pixel_rows"].dtype == np.uint8
    assert "pixel_values_videos" not in arrays and "spatial_pixel_values" not in arrays
    batch = collate([unpack(pack(arrays))], processor)
    prompt = prompting.prompt_text(processor, record, think=False)
    reference = processor(text=[prompt], videos=[frames], return_tensors="pt")
    for key in ("pixel_values_videos", "spatial_pixel_values", "video_grid_thw"):
        assert batch[key].dtype == reference[key].dtype
        assert torch.equal(batch[key], reference[key]), key
    floats = 2 * reference["pixel_values_videos"].numel() * 4
    assert len(pack(arrays)) < floats / 7  # the uint8 rows are 1/8 of the two float tensors, plus the ids


def test_model_loss_counts_only_answer_tokens(processor, record_and_frames):
    record, frames = record_and_frames
    arrays, _ = encode_sample(processor, record, frames, think=True, max_length=4096)
    batch = collate([arrays], processor)
    model, _ = modeling.load("tiny", seed=0)
    with torch.no_grad():
        out = model(**batch)
    logits = out.logits[0, :-1]  # [L-1, V]: position t predicts token t+1
    targets = batch["labels"][0, 1:]  # [L-1]
    keep = targets != IGNORE
    manual = torch.nn.functional.cross_entropy(logits[keep], targets[keep])
    assert keep.sum() == np.sum(arrays["labels"] != IGNORE)
    torch.testing.assert_close(out.loss, manual)
