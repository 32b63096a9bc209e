"""Presets: sizes, parameter counts, and the real sizes' names and shapes (meta device only)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

import modeling
from modeling.config import VGGT_PRESETS

MANIFEST = Path(__file__).resolve().parent / "fixtures" / "vggt_1b_state_dict_shapes.json"


def _count(module) -> int:
    return sum(p.numel() for p in module.parameters())


def test_presets_and_overrides():
    assert modeling.PRESETS == ("tiny", "small", "spatial-mllm-3b", "qwen2.5-vl-3b")
    assert modeling.build_config("spatial-mllm-3b").spatial_encoder == "vggt"
    assert modeling.build_config("qwen2.5-vl-3b").spatial_encoder == "none"
    assert modeling.build_config("tiny", spatial_encoder="none").spatial_config is None
    with pytest.raises(ValueError, match="unknown model preset"):
        modeling.build_config("7b")
    with pytest.raises(ValueError, match="spatial_encoder"):
        modeling.build_config("tiny", spatial_encoder="dust3r")


def test_toy_sizes():
    with torch.device("meta"):
        tiny = modeling.SpatialMLLMForConditionalGeneration(modeling.build_config("tiny"))
        small = modeling.SpatialMLLMForConditionalGeneration(modeling.build_config("small"))
    assert 1_000_000 < _count(tiny) < 5_000_000
    assert 20_000_000 < _count(small) < 60_000_000
    assert tiny.config.text_config.hidden_size == 64 and tiny.config.text_config.num_hidden_layers == 2
    assert tiny.config.text_config.vocab_size == 264  # bytes + Qwen's special tokens


def test_3b_presets_on_meta():
    with torch.device("meta"):
        spatial = modeling.SpatialMLLMForConditionalGeneration(modeling.build_config("spatial-mllm-3b"))
        qwen = modeling.SpatialMLLMForConditionalGeneration(modeling.build_config("qwen2.5-vl-3b"))
    assert qwen.spatial_encoder is None and qwen.connector is None
    assert _count(qwen) == 3_754_622_976  # Qwen2.5-VL-3B-Instruct (tied embeddings counted once)
    assert _count(spatial.connector) == 302_024_704
    assert _count(spatial.spatial_encoder) == 909_112_320
    assert _count(spatial) == _count(qwen) + 302_024_704 + 909_112_320
    assert tuple(spatial.connector.mlp[0].weight.shape) == (16384, 16384)
    assert tuple(spatial.connector.mlp[2].weight.shape) == (2048, 16384)
    assert {n.split(".")[0] for n, _ in spatial.connector.named_parameters()} == {"ln_q", "mlp"}


def test_1b_spatial_encoder_matches_released_names_and_shapes():
    manifest = json.loads(MANIFEST.read_text())
    expected = {k.removeprefix("aggregator."): v for k, v in manifest.items() if k.startswith("aggregator.")}
    with torch.device("meta"):
        encoder = modeling.build_spatial_encoder("spatial-mllm-3b")
    got = {k: list(v.shape) for k, v in encoder.state_dict().items()}
    assert len(expected) == 1210
    assert got == expected
    assert _count(encoder) == 909_112_320


def test_build_spatial_encoder_presets():
    encoder = modeling.build_spatial_encoder("tiny")
    assert encoder.config == VGGT_PRESETS["tiny"]
    with pytest.raises(ValueError, match="no spatial encoder"):
        modeling.build_spatial_encoder("qwen2.5-vl-3b")
