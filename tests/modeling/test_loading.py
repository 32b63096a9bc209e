"""save_pretrained/load round trips, and released directory layouts mapped onto this model.

The fake release directories use the real parameter names (Spatial-MLLM v1.1: Qwen's pre-4.52
names `model.layers.*` / `visual.*`, `spatial_encoder.vggt_model.aggregator.*` with VGGT's heads,
`connector.*`; Qwen2.5-VL-3B-Instruct: the same Qwen names, tied `lm_head`) with tiny shapes.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

import modeling
from modeling.loading import map_name
from tests.modeling.helpers import random_video, video_prompt


def _release_name(name: str) -> str:
    """This model's parameter name as the v1.1 release (transformers 4.49 layout) writes it."""
    for ours, theirs in (
        ("model.language_model.", "model."),
        ("model.visual.", "visual."),
        ("model.spatial_encoder.", "spatial_encoder.vggt_model.aggregator."),
        ("model.connector.", "connector."),
    ):
        if name.startswith(ours):
            return theirs + name.removeprefix(ours)
    return name


def _release_config(model, *, spatial: bool) -> dict:
    """A flat pre-v5 config.json like the released ones, with the tiny sizes."""
    text = model.config.text_config
    vision = model.config.vision_config
    config = {
        "architectures": ["Qwen2_5_VLForConditionalGeneration"],
        "model_type": "qwen2_5_vl",
        "attention_dropout": 0.0,
        "hidden_act": "silu",
        "hidden_size": text.hidden_size,
        "initializer_range": 0.02,
        "intermediate_size": text.intermediate_size,
        "max_position_embeddings": text.max_position_embeddings,
        "max_window_layers": 70,
        "num_attention_heads": text.num_attention_heads,
        "num_hidden_layers": text.num_hidden_layers,
        "num_key_value_heads": text.num_key_value_heads,
        "rms_norm_eps": text.rms_norm_eps,
        "rope_theta": 1000000.0,
        "rope_scaling": {"type": "mrope", "mrope_section": list(text.rope_parameters["mrope_section"])},
        "sliding_window": 32768,
        "use_sliding_window": False,
        "use_cache": True,
        "tie_word_embeddings": True,
        "torch_dtype": "bfloat16",
        "transformers_version": "4.49.0",
        "vocab_size": text.vocab_size,
        "bos_token_id": text.bos_token_id,
        "eos_token_id": text.eos_token_id,
        "vision_start_token_id": model.config.vision_start_token_id,
        "vision_end_token_id": model.config.vision_end_token_id,
        "vision_token_id": model.config.vision_start_token_id + 2,
        "image_token_id": model.config.image_token_id,
        "video_token_id": model.config.video_token_id,
        "vision_config": {
            "depth": vision.depth,
            "hidden_act": "silu",
            "hidden_size": vision.hidden_size,
            "intermediate_size": vision.intermediate_size,
            "num_heads": vision.num_heads,
            "in_chans": 3,
            "out_hidden_size": vision.out_hidden_size,
            "patch_size": 14,
            "spatial_merge_size": 2,
            "spatial_patch_size": 14,
            "window_size": vision.window_size,
            "fullatt_block_indexes": list(vision.fullatt_block_indexes),
            "tokens_per_second": vision.tokens_per_second,
            "temporal_patch_size": 2,
        },
    }
    if spatial:
        vggt = dataclasses.asdict(model.config.vggt)
        config.update(
            architectures=["SpatialMLLMForConditionalGeneration"],
            model_type="spatial-mllm",
            spatial_config={"model_type": "vggt_spatial_encoder", **vggt},
            connector_config={"connector_type": "mlp_add", "spatial_embeds_layer_idx": -1},
        )
    return config


def _write_release(model, processor, directory: Path, *, spatial: bool, new_names: bool = False) -> Path:
    """Write `model` as a released checkpoint directory: two safetensors shards + index, tokenizer,
    Qwen-style preprocessor and chat template files."""
    directory.mkdir(parents=True)
    state = {
        k: v.detach().clone().contiguous() for k, v in model.state_dict().items() if k != "lm_head.weight"
    }
    if not new_names:
        state = {_release_name(k): v for k, v in state.items()}
    if spatial:  # VGGT's heads are in the release file; fusion does not use them
        state["spatial_encoder.vggt_model.camera_head.trunk.0.attn.qkv.weight"] = torch.zeros(3, 3)
        state["spatial_encoder.vggt_model.depth_head.scratch.output_conv2.0.bias"] = torch.zeros(2)
    names = sorted(state)
    shards = {"model-00001-of-00002.safetensors": names[::2], "model-00002-of-00002.safetensors": names[1::2]}
    weight_map = {}
    for file, keys in shards.items():
        save_file({k: state[k] for k in keys}, directory / file)
        weight_map.update(dict.fromkeys(keys, file))
    (directory / "model.safetensors.index.json").write_text(json.dumps({"weight_map": weight_map}))
    (directory / "config.json").write_text(json.dumps(_release_config(model, spatial=spatial)))
    processor.tokenizer.save_pretrained(directory)
    (directory / "chat_template.jinja").unlink(missing_ok=True)
    (directory / "chat_template.json").write_text(json.dumps({"chat_template": processor.chat_template}))
    qwen_preprocessor = {
        "min_pixels": 3136, "max_pixels": 12845056, "patch_size": 14, "temporal_patch_size": 2, "merge_size": 2,
        "image_mean": [0.48145466, 0.4578275, 0.40821073], "image_std": [0.26862954, 0.26130258, 0.27577711],
        "image_processor_type": "Qwen2VLImageProcessor", "processor_class": "Qwen2_5_VLProcessor",
    }  # fmt: skip
    (directory / "preprocessor_config.json").write_text(json.dumps(qwen_preprocessor))
    return directory


def _logits(model, batch) -> torch.Tensor:
    with torch.no_grad():
        return model(**batch).logits


def test_save_pretrained_then_load_gives_identical_logits(tiny, tiny_batch, tmp_path):
    model, processor = tiny
    model.save_pretrained(tmp_path)
    processor.save_pretrained(tmp_path)
    loaded, loaded_processor = modeling.load(tmp_path)
    assert loaded.config.spatial_encoder == "vggt" and loaded.config.preset == "tiny"
    assert loaded.lm_head.weight is loaded.model.language_model.embed_tokens.weight
    torch.testing.assert_close(_logits(loaded, tiny_batch), _logits(model, tiny_batch), rtol=0, atol=0)
    assert loaded_processor.frames == processor.frames
    assert loaded_processor.chat_template == processor.chat_template
    again = loaded_processor(text=[video_prompt(loaded_processor)], videos=[random_video(0, 4)])
    assert all(torch.equal(again[k], tiny_batch[k]) for k in tiny_batch)
    assert loaded.generation_config.eos_token_id == model.generation_config.eos_token_id


def test_load_bf16_from_directory(tiny, tiny_batch, tmp_path):
    model, processor = tiny
    model.save_pretrained(tmp_path)
    processor.save_pretrained(tmp_path)
    loaded, _ = modeling.load(tmp_path, dtype="bfloat16")
    assert {p.dtype for p in loaded.parameters()} == {torch.bfloat16}
    assert torch.isfinite(_logits(loaded, tiny_batch).float()).all()


def test_released_spatial_mllm_directory(tiny, tiny_batch, tmp_path):
    model, processor = tiny
    directory = _write_release(model, processor, tmp_path / "Spatial-MLLM-v1.1", spatial=True)
    loaded, loaded_processor = modeling.load(directory)
    assert loaded.config.spatial_encoder == "vggt" and loaded.config.vggt == model.config.vggt
    torch.testing.assert_close(_logits(loaded, tiny_batch), _logits(model, tiny_batch), rtol=0, atol=0)
    # A release's preprocessor bounds are for images; video frames use the preset's bounds.
    assert loaded_processor.frames == modeling.FrameSpec()
    with_preset, preset_processor = modeling.load("tiny", path=directory)
    assert preset_processor.frames == modeling.FRAME_PRESETS["tiny"]
    assert preset_processor.apply_chat_template(
        [{"role": "user", "content": "hi"}]
    ) == processor.apply_chat_template([{"role": "user", "content": "hi"}])
    torch.testing.assert_close(_logits(with_preset, tiny_batch), _logits(model, tiny_batch), rtol=0, atol=0)


def test_released_qwen_directory_is_plain_qwen(tmp_path, tiny_batch):
    qwen, processor = modeling.load("tiny", seed=1, spatial_encoder="none")
    directory = _write_release(qwen, processor, tmp_path / "Qwen2.5-VL-3B-Instruct", spatial=False)
    loaded, _ = modeling.load(directory)
    assert loaded.spatial_encoder is None
    batch = {k: v for k, v in tiny_batch.items() if k != "spatial_pixel_values"}
    torch.testing.assert_close(_logits(loaded, batch), _logits(qwen, batch), rtol=0, atol=0)


def test_new_transformers_names_load_too(tmp_path, tiny_batch):
    qwen, processor = modeling.load("tiny", seed=1, spatial_encoder="none")
    directory = _write_release(qwen, processor, tmp_path / "qwen-new-names", spatial=False, new_names=True)
    loaded, _ = modeling.load(directory)
    batch = {k: v for k, v in tiny_batch.items() if k != "spatial_pixel_values"}
    torch.testing.assert_close(_logits(loaded, batch), _logits(qwen, batch), rtol=0, atol=0)


def test_qwen_directory_plus_vggt_weights_starts_spatial_mllm(tmp_path, tiny_batch):
    """The paper's SFT start: Qwen2.5-VL weights + VGGT aggregator weights + a fresh connector."""
    qwen, processor = modeling.load("tiny", seed=1, spatial_encoder="none")
    directory = _write_release(qwen, processor, tmp_path / "qwen", spatial=False)
    with pytest.raises(ValueError, match="spatial_weights"):
        modeling.load("tiny", path=directory)
    vggt = modeling.build_spatial_encoder("tiny")
    vggt_file = tmp_path / "vggt.safetensors"
    save_file(
        {f"aggregator.{k}": v.contiguous() for k, v in vggt.state_dict().items()}
        | {"track_head.x": torch.zeros(1)},
        vggt_file,
    )
    model, _ = modeling.load("tiny", path=directory, spatial_weights=vggt_file)
    for name, tensor in vggt.state_dict().items():
        torch.testing.assert_close(model.spatial_encoder.state_dict()[name], tensor)
    assert torch.equal(model.connector.ln_q.weight, torch.ones_like(model.connector.ln_q.weight))
    assert model.connector.mlp[0].weight.std() > 0
    torch.testing.assert_close(
        model.model.language_model.embed_tokens.weight, qwen.model.language_model.embed_tokens.weight
    )
    assert torch.isfinite(_logits(model, tiny_batch)).all()


def test_strict_errors_list_missing_and_unexpected(tiny, tmp_path):
    model, processor = tiny
    directory = _write_release(model, processor, tmp_path / "broken", spatial=True)
    index = json.loads((directory / "model.safetensors.index.json").read_text())
    from safetensors.torch import load_file

    shard = directory / "model-00001-of-00002.safetensors"
    tensors = load_file(shard)
    dropped = next(k for k in tensors if k.startswith("visual.blocks.0."))
    del tensors[dropped]
    tensors["visual.blocks.7.attn.qkv.weight"] = torch.zeros(1)
    save_file(tensors, shard)
    assert index  # the index only documents the shards; every shard is read
    with pytest.raises(ValueError) as err:
        modeling.load(directory)
    message = str(err.value)
    assert "missing (1)" in message and "model.visual.blocks.0." in message
    assert "unexpected (1)" in message and "model.visual.blocks.7.attn.qkv.weight" in message


def test_name_mapping_table():
    assert map_name("model.layers.3.mlp.up_proj.weight") == "model.language_model.layers.3.mlp.up_proj.weight"
    assert map_name("model.embed_tokens.weight") == "model.language_model.embed_tokens.weight"
    assert map_name("visual.merger.mlp.0.weight") == "model.visual.merger.mlp.0.weight"
    assert map_name("model.visual.blocks.0.norm1.weight") == "model.visual.blocks.0.norm1.weight"
    assert (
        map_name("spatial_encoder.vggt_model.aggregator.camera_token") == "model.spatial_encoder.camera_token"
    )
    assert map_name("spatial_encoder.vggt_model.point_head.x.weight") is None
    assert map_name("connector.mlp.0.weight") == "model.connector.mlp.0.weight"
    assert map_name("lm_head.weight") == "lm_head.weight"
    assert map_name("model.language_model.norm.weight") == "model.language_model.norm.weight"


def test_real_presets_need_a_path():
    with pytest.raises(ValueError, match="model.path"):
        modeling.load("spatial-mllm-3b")
    with pytest.raises(ValueError, match="neither a preset"):
        modeling.load("no-such-preset-or-dir")


def test_directory_without_tokenizer_says_so(tiny, tmp_path):
    model, _ = tiny
    model.save_pretrained(tmp_path)
    with pytest.raises(FileNotFoundError, match="processor.save_pretrained"):
        modeling.load(tmp_path)
