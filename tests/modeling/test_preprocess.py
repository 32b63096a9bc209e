"""Frame preprocessing and the processor: equal to transformers' Qwen2-VL image processor on images."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image
from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import Qwen2VLImageProcessorPil

import modeling
from modeling.preprocess import FrameSpec, patchify, preprocess_video, smart_resize, unpatchify
from tests.modeling.helpers import random_video, video_prompt


@pytest.mark.parametrize(
    ("height", "width", "min_pixels", "max_pixels"),
    [
        (50, 70, 56 * 56, 12845056),  # upscaled to the minimum
        (480, 640, 56 * 56, 12845056),  # kept (rounded to multiples of 28)
        (300, 1000, 56 * 56, 200_000),  # downscaled to the maximum
        (123, 77, 128 * 28 * 28, 768 * 28 * 28),  # video bounds
    ],
)
def test_single_image_equals_qwen_image_processor(height, width, min_pixels, max_pixels):
    """An image is a 2-frame still video: the same patches and grid as Qwen's image processor."""
    image = np.random.default_rng(height).integers(0, 256, (height, width, 3), dtype=np.uint8)
    ref = Qwen2VLImageProcessorPil(min_pixels=min_pixels, max_pixels=max_pixels)(
        images=[image], return_tensors="np"
    )
    ours = preprocess_video([image], FrameSpec(min_pixels=min_pixels, max_pixels=max_pixels))
    np.testing.assert_array_equal(ours["video_grid_thw"], ref["image_grid_thw"][0])
    np.testing.assert_array_equal(ours["pixel_values_videos"], ref["pixel_values"])
    assert ours["pixel_values_videos"].dtype == np.float32


def test_pil_image_input_is_accepted():
    image = np.random.default_rng(0).integers(0, 256, (64, 90, 3), dtype=np.uint8)
    a = preprocess_video([Image.fromarray(image)], FrameSpec(min_pixels=3136, max_pixels=12544))
    b = preprocess_video(image, FrameSpec(min_pixels=3136, max_pixels=12544))
    np.testing.assert_array_equal(a["pixel_values_videos"], b["pixel_values_videos"])


def test_worked_size_example():
    """640x480 at 16 frames -> 476x644 -> 34x46 patches; 8x17x23 = 3128 LLM tokens."""
    assert smart_resize(480, 640, 28, 128 * 28 * 28, 768 * 28 * 28) == (476, 644)
    spec = modeling.FRAME_PRESETS["spatial-mllm-3b"]
    video = np.zeros((16, 480, 640, 3), dtype=np.uint8)
    out = preprocess_video(video, spec)
    assert tuple(out["video_grid_thw"]) == (8, 34, 46)
    assert out["pixel_values_videos"].shape == (8 * 34 * 46, 1176)
    assert out["spatial_pixel_values"].shape == (8 * 34 * 46, 1176)


def test_odd_frame_count_repeats_the_last_frame():
    spec = FrameSpec(min_pixels=3136, max_pixels=12544)
    frames = random_video(1, 3, 56, 56)
    odd = preprocess_video(frames, spec)
    even = preprocess_video([*frames, frames[-1]], spec)
    assert tuple(odd["video_grid_thw"]) == (2, 4, 4)
    np.testing.assert_array_equal(odd["pixel_values_videos"], even["pixel_values_videos"])


def test_spatial_pixels_are_the_unnormalised_frames():
    spec = FrameSpec(min_pixels=3136, max_pixels=12544)
    frames = random_video(2, 2, 56, 84)
    out = preprocess_video(frames, spec)
    images = unpatchify(torch.from_numpy(out["spatial_pixel_values"]), tuple(out["video_grid_thw"]), 14, 2, 2)
    expected = torch.from_numpy(np.stack(frames)).permute(0, 3, 1, 2).float() / 255  # [S, 3, H, W]
    torch.testing.assert_close(images, expected)
    mean = torch.tensor(spec.image_mean).view(1, 3, 1, 1)
    std = torch.tensor(spec.image_std).view(1, 3, 1, 1)
    qwen = unpatchify(torch.from_numpy(out["pixel_values_videos"]), tuple(out["video_grid_thw"]), 14, 2, 2)
    torch.testing.assert_close(qwen * std + mean, expected, atol=1e-6, rtol=1e-5)


def test_patchify_round_trip():
    frames = np.random.default_rng(0).random((4, 3, 56, 112), dtype=np.float32)
    rows = patchify(frames, 14, 2, 2)
    assert rows.shape == (2 * 4 * 8, 3 * 2 * 14 * 14)
    back = unpatchify(torch.from_numpy(rows), (2, 4, 8), 14, 2, 2)
    np.testing.assert_array_equal(back.numpy(), frames)


def test_rejects_non_uint8_frames():
    with pytest.raises(ValueError, match="uint8"):
        preprocess_video([np.zeros((28, 28, 3), dtype=np.float32)], FrameSpec())


def test_chat_template_turns():
    processor = modeling.load("tiny", seed=0)[1]
    messages = [
        {"role": "system", "content": "Think first."},
        {"role": "user", "content": [{"type": "video"}, {"type": "text", "text": "How far?"}]},
        {"role": "assistant", "content": [{"type": "text", "text": "<answer>2.5</answer>"}]},
    ]
    text = processor.apply_chat_template(messages)
    assert text == (
        "<|im_start|>system\nThink first.<|im_end|>\n"
        "<|im_start|>user\n<|vision_start|><|video_pad|><|vision_end|>How far?<|im_end|>\n"
        "<|im_start|>assistant\n<answer>2.5</answer><|im_end|>\n"
    )
    prompt = processor.apply_chat_template(messages[1:2], add_generation_prompt=True)
    assert prompt.startswith("<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n")
    assert prompt.endswith("<|im_start|>assistant\n")
    single = processor.apply_chat_template(messages[1:2])
    assert processor.apply_chat_template([messages[1:2], messages]) == [single, text]


def test_processor_outputs_for_tiny():
    _, processor = modeling.load("tiny", seed=0)
    texts = [video_prompt(processor), video_prompt(processor, "Which is closer?")]
    batch = processor(
        text=texts, videos=[random_video(0, 4), random_video(1, 3, 100, 140)], padding_side="left"
    )
    assert set(batch) == {
        "input_ids", "attention_mask", "mm_token_type_ids", "pixel_values_videos", "spatial_pixel_values", "video_grid_thw",
    }  # fmt: skip
    assert batch["video_grid_thw"].tolist() == [[2, 8, 8], [2, 6, 8]]
    assert batch["pixel_values_videos"].shape == (128 + 96, 1176)
    assert batch["spatial_pixel_values"].shape == batch["pixel_values_videos"].shape
    video_id = processor.tokenizer.convert_tokens_to_ids("<|video_pad|>")
    assert (batch["input_ids"] == video_id).sum(-1).tolist() == [32, 24]
    assert torch.equal(batch["mm_token_type_ids"] == 2, batch["input_ids"] == video_id)
    assert batch["attention_mask"][1, 0] == 0  # left padding for generation
    with_fps = processor(text=texts[:1], videos=[random_video(0, 4)], fps=1.0)
    assert with_fps["second_per_grid_ts"].tolist() == [2.0]


def test_processor_placeholder_count_must_match_videos():
    _, processor = modeling.load("tiny", seed=0)
    with pytest.raises(ValueError, match="1 <\\|video_pad\\|> placeholders but 2 videos"):
        processor(text=[video_prompt(processor)], videos=[random_video(0, 2), random_video(1, 2)])


def test_tokenizer_is_a_real_transformers_tokenizer():
    from transformers import PreTrainedTokenizerFast

    tokenizer = modeling.build_byte_tokenizer()
    assert isinstance(tokenizer, PreTrainedTokenizerFast)
    assert tokenizer.eos_token == "<|im_end|>" and tokenizer.pad_token == "<|endoftext|>"
    text = "héllo <think>x</think><answer>B</answer>"
    assert tokenizer.decode(tokenizer(text)["input_ids"]) == text
    ids = tokenizer("<|im_start|><|vision_start|><|video_pad|><|image_pad|>")["input_ids"]
    assert ids == [257, 259, 263, 262]
