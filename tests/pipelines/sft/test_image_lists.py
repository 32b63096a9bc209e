"""data.mixture.image_lists: a Qwen-VL record with a list of images trained as one video (ours) or
as one block per image with VGGT over all of them as one sequence (the authors' loader)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import modeling
from modeling.connector import group_spatial_tokens
from modeling.preprocess import unpatchify
from modeling.rope import qwen_position_ids
from pipelines import media, prompting
from pipelines.config import build_config
from pipelines.sft.samples import collate, encode_sample
from pipelines.train.data import DataError
from pipelines.train.sources import read_mixture


@pytest.fixture(scope="module")
def image_record(tmp_path_factory) -> Path:
    """root/train.jsonl: one record showing three 56x56 images, one <image> tag each."""
    root = tmp_path_factory.mktemp("image_lists")
    rng = np.random.default_rng(0)
    for i in range(3):
        Image.fromarray(rng.integers(0, 256, (56, 56, 3), dtype=np.uint8)).save(root / f"view{i}.png")
    record = {"id": "views", "image": ["view0.png", "view1.png", "view2.png"],
              "conversations": [{"from": "human", "value": "<image>\n<image>\n<image>\nHow many chairs are there?"},
                                {"from": "gpt", "value": "3"}]}  # fmt: skip
    (root / "train.jsonl").write_text(json.dumps(record) + "\n")
    return root


def read(root: Path, rule: str) -> dict:
    tree = {"run_dir": str(root / "run"), "data": {"mixture": {"image_lists": rule, "sources": [
        {"name": "views", "format": "qwen_vl", "annotation": str(root / "train.jsonl")}]}}}  # fmt: skip
    cfg = build_config(json.dumps(tree))
    (record,) = read_mixture(cfg, "train").table.to_pylist()
    return record


def sample(record: dict, processor):
    clip = prompting.record_clip(record, sampling="uniform", rule=media.FrameRule(16))
    return encode_sample(processor, record, clip.frames, think=False, max_length=4096, fps=clip.fps)[0], clip.frames


def test_one_video_by_default(image_record):
    processor = modeling.load_processor("tiny")
    record = read(image_record, "video")
    assert json.loads(record["turns"])[0]["user"].count(prompting.VIDEO_TAG) == 1
    arrays, _ = sample(record, processor)
    assert arrays["video_grid_thw"].tolist() == [[2, 4, 4]]  # 3 images padded to 4 frames: 2 pairs
    assert "videos_per_sample" not in collate([arrays], processor)


def test_one_block_per_image_and_vggt_over_all_of_them(image_record):
    model, processor = modeling.load("tiny", seed=0)
    record = read(image_record, "images")
    assert json.loads(record["turns"])[0]["user"].count(prompting.VIDEO_TAG) == 3
    arrays, frames = sample(record, processor)
    assert arrays["video_grid_thw"].tolist() == [[1, 4, 4]] * 3  # each image: one pair (itself twice)
    batch = collate([arrays], processor)
    assert batch["videos_per_sample"].tolist() == [3]

    # Positions: each block of 4 merged tokens at one temporal position, the block's start (an image's rule).
    pos, _ = qwen_position_ids(batch["mm_token_type_ids"], spatial_merge=2, tokens_per_second=2,
                               video_grid_thw=batch["video_grid_thw"], attention_mask=batch["attention_mask"])  # fmt: skip
    video = (batch["mm_token_type_ids"][0] == 2).nonzero().flatten()
    blocks = pos[:, 0, video].view(3, 3, 4)  # [axis, block, token]
    assert all(len(set(blocks[0, b].tolist())) == 1 for b in range(3))
    assert blocks[0, 1, 0] > blocks[0, 0, 0] and blocks[1, 0].tolist() == [blocks[0, 0, 0].item() + d for d in (0, 0, 1, 1)]

    # VGGT once, over the 6 frames (each image twice) as one sequence; its tokens split per image.
    calls = []
    hook = model.spatial_encoder.register_forward_pre_hook(lambda *_: calls.append(1))  # selected_layers bypasses it
    original = model.spatial_encoder.selected_layers
    model.spatial_encoder.selected_layers = lambda images, keep: calls.append(images.shape) or original(images, keep)
    try:
        with torch.no_grad():
            fused = model.model.spatial_video_features(batch["spatial_pixel_values"], batch["video_grid_thw"],
                                                       batch["videos_per_sample"])  # fmt: skip
            model(**batch)
    finally:
        hook.remove()
        del model.spatial_encoder.selected_layers
    assert calls == [torch.Size([1, 6, 3, 56, 56])] * 2  # the check, then the forward: one call each
    with torch.no_grad():
        rows = batch["video_grid_thw"].prod(-1).tolist()
        joint = torch.cat([unpatchify(c, (1, 4, 4), 14, 2, 2) for c in torch.split(batch["spatial_pixel_values"], rows)])
        layer = model.spatial_encoder.config.depth - 1
        tokens = model.spatial_encoder.selected_layers(joint[None], [layer])[layer][:, :, 5:]  # [1, 6, 16, C]
        expected = [model.connector(group_spatial_tokens(part, 4, 4)) for part in torch.split(tokens, 2, dim=1)]
        alone = model.model.spatial_video_features(batch["spatial_pixel_values"], batch["video_grid_thw"])
    for got, want in zip(fused, expected, strict=True):
        torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)
    assert not torch.allclose(fused[1], alone[1])  # seeing the other images changes VGGT's tokens
    assert len(frames) == 3


def test_grpo_refuses_image_blocks(image_record):
    from pipelines.grpo.stage import prepare

    tree = {"run_dir": str(image_record / "run"), "data": {"mixture": {"image_lists": "images", "sources": [
        {"name": "views", "format": "qwen_vl", "annotation": str(image_record / "train.jsonl")}]}}}  # fmt: skip
    with pytest.raises(DataError, match="image_lists=images .* is for SFT"):
        prepare(build_config(json.dumps(tree)), log=lambda _: None)
