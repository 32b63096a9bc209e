"""save_pretrained/load round trips, other directory layouts, strict errors. The authors'
releases, written from their own tensor listings, are tested in test_releases.py."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import save_file

import modeling
from modeling.loading import map_name
from tests.modeling.helpers import random_video, video_prompt
from tests.modeling.releases import write_release


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


def test_new_transformers_names_load_too(tmp_path, tiny_batch):
    """transformers >= 4.52 writes Qwen2.5-VL as `model.language_model.*` / `model.visual.*`: this
    model's own names."""
    qwen, processor = modeling.load("tiny", seed=1, spatial_encoder="none")
    state = {k: v.detach().clone().contiguous() for k, v in qwen.state_dict().items() if k != "lm_head.weight"}
    directory = write_release(tmp_path / "qwen-new-names", qwen, processor, state=state)
    loaded, _ = modeling.load(directory)
    batch = {k: v for k, v in tiny_batch.items() if k != "spatial_pixel_values"}
    torch.testing.assert_close(_logits(loaded, batch), _logits(qwen, batch), rtol=0, atol=0)


def test_qwen_directory_plus_vggt_weights_starts_spatial_mllm(tmp_path, tiny_batch):
    """The paper's SFT start: Qwen2.5-VL weights + VGGT aggregator weights + a fresh connector."""
    qwen, processor = modeling.load("tiny", seed=1, spatial_encoder="none")
    directory = write_release(tmp_path / "qwen", qwen, processor)
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
    directory = write_release(tmp_path / "broken", model, processor)
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
        modeling.load("tiny", path=directory)
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
