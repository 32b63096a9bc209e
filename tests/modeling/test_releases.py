"""The authors' releases by their own listings (tests/modeling/fixtures): v1.1 and v1.0 at 3B size
on the meta device, and directories written from the listings at tiny size (releases.py)."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import save_file

import modeling
from modeling.config import build_config
from modeling.connector import EmbeddingMergerConnector, group_spatial_tokens, group_spatial_tokens_v10
from modeling.loading import config_from_dir, map_name
from modeling.vggt import is_head_tensor
from tests.modeling.releases import FIXTURES, listing, release_config, release_state, write_release

HEADS = 587  # VGGT-1B's camera, depth, point and track head tensors, in both releases


def mapped(version: str, config) -> dict:
    """A release listing mapped onto a meta-built model of `config`: what is skipped, missing,
    unexpected and mis-shaped."""
    with torch.device("meta"):
        model = modeling.SpatialMLLMForConditionalGeneration(config)
    expected = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    got, skipped = {}, []
    for name, shape in listing(version).items():
        target = map_name(name)
        if target is None:
            skipped.append(name)
        else:
            got[target] = tuple(shape)
    return {
        "skipped": skipped,
        "missing": set(expected) - set(got),
        "unexpected": set(got) - set(expected),
        "wrong": {k for k in set(got) & set(expected) if got[k] != expected[k]},
    }


@pytest.mark.parametrize("version, connector", [("v1.1", "mlp_add"), ("v1.0", "embedding_merger")])
def test_every_released_name_maps_onto_the_3b_model(version, connector):
    config = build_config("spatial-mllm-3b")
    config.connector_type = connector
    result = mapped(version, config)
    assert len(result["skipped"]) == HEADS and all(is_head_tensor(n) for n in result["skipped"])
    assert result["missing"] <= {"lm_head.weight"}  # tied to the embedding when a file leaves it out
    assert result["unexpected"] == set() and result["wrong"] == set()


def test_v11_config_is_the_preset(tmp_path):
    (tmp_path / "config.json").write_text((FIXTURES / "v1.1_config.json").read_text())
    loaded, preset = config_from_dir(tmp_path).to_dict(), build_config("spatial-mllm-3b").to_dict()
    informational = {"preset", "dtype"}  # the preset's name; the file's torch_dtype

    def differences(ours: dict, theirs: dict, where: str = "") -> list[str]:
        out = []
        for key, value in ours.items():
            if key in informational:
                continue
            if isinstance(value, dict) and isinstance(theirs.get(key), dict):
                out += differences(value, theirs[key], f"{where}{key}.")
            elif theirs.get(key) != value:
                out.append(f"{where}{key}: preset {value!r}, release {theirs.get(key)!r}")
        return out

    assert differences(preset, loaded) == []
    assert loaded["connector_type"] == "mlp_add" and loaded["spatial_layer"] == -1


@pytest.mark.parametrize("with_lm_head", [True, False])
def test_a_v11_release_loads_and_ties_its_head(tiny, tiny_batch, tmp_path, with_lm_head):
    model, processor = tiny
    directory = write_release(tmp_path / "v1.1", model, processor, lm_head=with_lm_head)
    loaded, loaded_processor = modeling.load("tiny", path=directory)
    assert loaded.lm_head.weight is loaded.model.language_model.embed_tokens.weight
    with torch.no_grad():
        torch.testing.assert_close(loaded(**tiny_batch).logits, model(**tiny_batch).logits, rtol=0, atol=0)
    assert loaded_processor.frames == modeling.FRAME_PRESETS["tiny"]
    # a directory alone (no preset): VGGT's other sizes are VGGT-1B's, so only the tiny preset fits
    with pytest.raises(ValueError, match="shape mismatch"):
        modeling.load(directory)


def test_a_plain_qwen_release_is_plain_qwen(tmp_path, tiny_batch):
    qwen, processor = modeling.load("tiny", seed=1, spatial_encoder="none")
    directory = write_release(tmp_path / "Qwen2.5-VL-3B-Instruct", qwen, processor)
    loaded, _ = modeling.load(directory)
    assert loaded.spatial_encoder is None
    batch = {k: v for k, v in tiny_batch.items() if k != "spatial_pixel_values"}
    with torch.no_grad():
        torch.testing.assert_close(loaded(**batch).logits, qwen(**batch).logits, rtol=0, atol=0)


def test_heads_are_never_read(tiny, tmp_path):
    """The release's VGGT heads and a tied lm_head are skipped without reading them: placeholders of
    the wrong shape (and a poisoned lm_head) load fine."""
    model, processor = tiny
    state = release_state(model, "v1.1")
    state["lm_head.weight"] = torch.full((3, 3), float("nan"))
    loaded, _ = modeling.load("tiny", path=write_release(tmp_path / "r", model, processor, state=state))
    assert torch.isfinite(loaded.lm_head.weight).all()


def test_weights_are_read_in_the_target_dtype(tiny, tmp_path):
    model, processor = tiny
    state = {k: v.to(torch.bfloat16) if v.is_floating_point() else v for k, v in release_state(model, "v1.1").items()}
    loaded, _ = modeling.load("tiny", path=write_release(tmp_path / "bf16", model, processor, state=state),
                              dtype="bf16")  # fmt: skip
    assert {p.dtype for p in loaded.parameters()} == {torch.bfloat16}
    assert loaded.model.language_model.rotary_emb.inv_freq.dtype == torch.float32  # computed, not read


def test_unsupported_connector_settings_stop_the_load_naming_them(tiny, tmp_path):
    model, processor = tiny
    base = write_release(tmp_path / "ok", model, processor)
    config = json.loads((base / "config.json").read_text())
    for i, (settings, message) in enumerate([
        ({"connector_type": "cross_attention", "spatial_embeds_layer_idx": -1}, "connector_type='cross_attention'"),
        ({"connector_type": "mlp_add", "spatial_embeds_layer_idx": 7}, "spatial_embeds_layer_idx"),
    ]):  # fmt: skip
        directory = write_release(tmp_path / f"bad{i}", model, processor, config={**config, "connector_config": settings})
        with pytest.raises(ValueError, match=message):
            modeling.load("tiny", path=directory)


def test_another_spatial_layer_is_honoured(tiny, tiny_batch, tmp_path):
    """spatial_embeds_layer_idx 0 of the tiny 2-layer encoder: the connector reads layer 0's patch
    tokens (checked against the aggregator's own layer list), and the release says so."""
    model, processor = tiny
    config = release_config(model, "v1.1")
    config["connector_config"]["spatial_embeds_layer_idx"] = 0
    directory = write_release(tmp_path / "layer0", model, processor, config=config)
    loaded, _ = modeling.load("tiny", path=directory)
    assert loaded.config.spatial_layer == 0
    x = tiny_batch
    with torch.no_grad():
        fused = loaded.encode_videos(x["pixel_values_videos"], x["video_grid_thw"], x["spatial_pixel_values"])
        qwen = loaded.model.visual(x["pixel_values_videos"], grid_thw=x["video_grid_thw"]).pooler_output
        frames = modeling.preprocess.unpatchify(x["spatial_pixel_values"], tuple(x["video_grid_thw"][0].tolist()), 14, 2, 2)
        layers, start = loaded.spatial_encoder(frames[None])
        patches = layers[0][:, :, start:]
        expected = qwen + loaded.connector(group_spatial_tokens(patches, 8, 8))
        last = model.encode_videos(x["pixel_values_videos"], x["video_grid_thw"], x["spatial_pixel_values"])
    torch.testing.assert_close(fused, expected, rtol=1e-5, atol=1e-5)
    assert not torch.allclose(fused, last)


def test_v10_grouping_order_by_hand():
    """One frame pair of 2x2 patches, 2 channels: token value = 1000 f + 100 r + 10 c + channel.
    v1.0 flattens (frame, row, column, channel); v1.1 (row, column, channel, frame)."""
    values = torch.tensor([[[[1000 * f + 100 * r + 10 * c + ch for ch in range(2)] for r in range(2) for c in range(2)]
                            for f in range(2)]], dtype=torch.float32)  # [1, S=2, P=4, C=2]  # fmt: skip
    assert group_spatial_tokens_v10(values, 2, 2).tolist() == [[
        0, 1, 10, 11, 100, 101, 110, 111, 1000, 1001, 1010, 1011, 1100, 1101, 1110, 1111,
    ]]  # fmt: skip
    assert group_spatial_tokens(values, 2, 2).tolist() == [[
        0, 1000, 1, 1001, 10, 1010, 11, 1011, 100, 1100, 101, 1101, 110, 1110, 111, 1111,
    ]]  # fmt: skip


def test_v10_connector_by_hand():
    """spatial width 1 (in = 8), hidden 2: each stage is RMSNorm -> Linear -> GELU -> Linear,
    written out here with the weights set by hand."""
    connector = EmbeddingMergerConnector(spatial_dim=1, out_dim=2)
    with torch.no_grad():
        connector.token_merge_ln_q.weight.copy_(torch.arange(1.0, 9.0) / 4)
        connector.token_merge_mlp[0].weight.copy_(torch.eye(8) * 0.5)
        connector.token_merge_mlp[0].bias.fill_(0.1)
        connector.token_merge_mlp[2].weight.copy_(torch.tensor([[1.0] * 4 + [0.0] * 4, [0.0] * 4 + [1.0] * 4]))
        connector.token_merge_mlp[2].bias.copy_(torch.tensor([0.0, 1.0]))
        connector.vgg_to_language_ln_q.weight.copy_(torch.tensor([2.0, 3.0]))
        connector.vgg_to_language_mlp[0].weight.copy_(torch.tensor([[1.0, -1.0], [0.5, 0.5]]))
        connector.vgg_to_language_mlp[0].bias.zero_()
        connector.vgg_to_language_mlp[2].weight.copy_(torch.eye(2))
        connector.vgg_to_language_mlp[2].bias.copy_(torch.tensor([0.25, -0.25]))
    x = torch.tensor([[1.0, -2.0, 3.0, 0.5, 0.0, 1.0, -1.0, 2.0]])
    gelu = torch.nn.functional.gelu
    h = x / torch.sqrt((x**2).mean() + 1e-6) * (torch.arange(1.0, 9.0) / 4)
    h = gelu(0.5 * h + 0.1)
    h = torch.stack([h[0, :4].sum(), h[0, 4:].sum() + 1.0])[None]
    h = h / torch.sqrt((h**2).mean() + 1e-6) * torch.tensor([2.0, 3.0])
    h = gelu(torch.stack([h[0, 0] - h[0, 1], 0.5 * (h[0, 0] + h[0, 1])])[None]) + torch.tensor([0.25, -0.25])
    torch.testing.assert_close(connector(x), h)


def test_a_v10_release_loads_with_its_own_connector(tiny_batch, tmp_path):
    """The connector variant comes from the checkpoint's names; the model computes v1.0's
    grouping and two stages (compared with the module run by hand on the aggregator's tokens)."""
    config = build_config("tiny")
    config.connector_type = "embedding_merger"
    torch.manual_seed(0)
    v10 = modeling.SpatialMLLMForConditionalGeneration(config).eval()
    _, processor = modeling.load("tiny", seed=0)
    state = release_state(v10, "v1.0")
    assert {n.split(".")[0] for n in state} == {"visual", "model", "lm_head", "vggt", "vggt_embedding_merger"}
    loaded, _ = modeling.load("tiny", path=write_release(tmp_path / "v1.0", v10, processor, "v1.0", state=state))
    assert loaded.config.connector_type == "embedding_merger"
    x = tiny_batch
    with torch.no_grad():
        torch.testing.assert_close(loaded(**x).logits, v10(**x).logits, rtol=0, atol=0)
        fused = loaded.encode_videos(x["pixel_values_videos"], x["video_grid_thw"], x["spatial_pixel_values"])
        qwen = loaded.model.visual(x["pixel_values_videos"], grid_thw=x["video_grid_thw"]).pooler_output
        frames = modeling.preprocess.unpatchify(x["spatial_pixel_values"], tuple(x["video_grid_thw"][0].tolist()), 14, 2, 2)
        layers, start = loaded.spatial_encoder(frames[None], only_last=True)
        expected = qwen + loaded.connector(group_spatial_tokens_v10(layers[-1][:, :, start:], 8, 8))
    torch.testing.assert_close(fused, expected, rtol=1e-5, atol=1e-5)


def test_spatial_weights_may_be_the_vggt_folder(tmp_path, tiny_batch):
    """The paper's SFT start from Qwen2.5-VL + VGGT-1B, the VGGT-1B folder given as it is downloaded."""
    qwen, processor = modeling.load("tiny", seed=1, spatial_encoder="none")
    directory = write_release(tmp_path / "qwen", qwen, processor)
    vggt = modeling.build_spatial_encoder("tiny")
    folder = tmp_path / "VGGT-1B"
    folder.mkdir()
    save_file({f"aggregator.{k}": v.contiguous() for k, v in vggt.state_dict().items()}
              | {"track_head.x": torch.zeros(1)}, folder / "model.safetensors")  # fmt: skip
    model, _ = modeling.load("tiny", path=directory, spatial_weights=folder)
    for name, tensor in vggt.state_dict().items():
        torch.testing.assert_close(model.spatial_encoder.state_dict()[name], tensor)
    with torch.no_grad():
        assert torch.isfinite(model(**tiny_batch).logits).all()
