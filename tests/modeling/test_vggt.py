"""The spatial encoder: VGGT's aggregator contract, frame handling, and strict weight loading."""

from __future__ import annotations

import pytest
import torch
from safetensors.torch import save_file

import modeling
from modeling.vggt import VGGTAggregator


def _last(encoder: VGGTAggregator, video: torch.Tensor) -> torch.Tensor:
    """Last-layer tokens of a single video: `[S, N, 2*dim]`."""
    layers, _ = encoder(video, only_last=True)
    return layers[0][0]


@pytest.fixture
def encoder() -> VGGTAggregator:
    torch.manual_seed(0)
    return modeling.build_spatial_encoder("tiny").eval()


def test_forward_contract(encoder):
    images = torch.rand(2, 3, 3, 56, 84)  # [B, S, 3, H, W] in [0, 1]
    with torch.no_grad():
        layers, start = encoder(images)
    width = encoder.config.embed_dim
    assert start == 5
    assert len(layers) == encoder.config.depth
    for layer in layers:
        assert layer.shape == (2, 3, 5 + 4 * 6, 2 * width)
    with torch.no_grad():
        last, start_last = encoder(images, only_last=True)
    assert start_last == 5 and len(last) == 1
    torch.testing.assert_close(last[0], layers[-1])


def test_rejects_sizes_that_are_not_patch_multiples(encoder):
    with pytest.raises(ValueError, match="multiples of 14"):
        encoder(torch.rand(1, 2, 3, 50, 56))


def test_frames_after_the_first_are_exchangeable(encoder):
    """Only frame 0 has its own camera/register tokens, so swapping frames 1 and 2 swaps their
    outputs (checks the frame <-> global reshapes keep tokens with their frame)."""
    with torch.no_grad():
        encoder.camera_token.normal_()  # released tokens differ clearly between the two versions
        encoder.register_token.normal_()
    images = torch.rand(1, 3, 3, 28, 28)
    with torch.no_grad():
        a = _last(encoder, images)
        b = _last(encoder, images[:, [0, 2, 1]])
        c = _last(encoder, images[:, [1, 0, 2]])
    torch.testing.assert_close(a[[0, 2, 1]], b, atol=1e-5, rtol=1e-5)
    assert not torch.allclose(a[0], c[1], atol=1e-3)  # a frame's features depend on being frame 0


def test_videos_in_a_batch_do_not_mix(encoder):
    v1, v2 = torch.rand(1, 2, 3, 28, 28), torch.rand(1, 2, 3, 28, 28)
    with torch.no_grad():
        both = encoder(torch.cat([v1, v2]), only_last=True)[0][0]  # [2, S, N, C]
        alone = encoder(v2, only_last=True)[0][0]
    torch.testing.assert_close(both[1], alone[0], atol=1e-5, rtol=1e-5)


def test_pos_embed_interpolates_for_non_square_grids(encoder):
    grid = encoder.patch_embed._pos_embed_for(3, 5, torch.float32)
    assert grid.shape == (1, 1 + 15, encoder.config.embed_dim)
    square = encoder.patch_embed._pos_embed_for(8, 8, torch.float32)  # img_size 112 -> stored 8x8 grid
    torch.testing.assert_close(square, encoder.patch_embed.pos_embed)


@pytest.mark.parametrize("suffix", [".safetensors", ".pt"])
def test_loads_vggt_checkpoint_with_prefix_and_heads(encoder, tmp_path, suffix):
    torch.manual_seed(1)
    source = modeling.build_spatial_encoder("tiny")
    state = {f"aggregator.{k}": v.clone() for k, v in source.state_dict().items()}
    state["camera_head.trunk.0.weight"] = torch.zeros(3)  # VGGT's heads ride along and are skipped
    state["depth_head.proj.bias"] = torch.zeros(2)
    file = tmp_path / f"vggt{suffix}"
    save_file(state, file) if suffix == ".safetensors" else torch.save(state, file)
    modeling.load_spatial_encoder_weights(encoder, file)
    for name, tensor in source.state_dict().items():
        torch.testing.assert_close(encoder.state_dict()[name], tensor)


def test_strict_load_lists_missing_and_unexpected(encoder, tmp_path):
    state = {k: v.clone() for k, v in encoder.state_dict().items()}
    del state["camera_token"]
    del state["frame_blocks.0.attn.q_norm.weight"]
    state["frame_blocks.9.attn.qkv.weight"] = torch.zeros(1)
    file = tmp_path / "bad.safetensors"
    save_file(state, file)
    with pytest.raises(ValueError) as err:
        modeling.load_spatial_encoder_weights(encoder, file)
    message = str(err.value)
    assert (
        "missing (2)" in message
        and "camera_token" in message
        and "frame_blocks.0.attn.q_norm.weight" in message
    )
    assert "unexpected (1)" in message and "frame_blocks.9.attn.qkv.weight" in message


def test_strict_load_reports_shape_mismatch(encoder, tmp_path):
    state = {k: v.clone() for k, v in encoder.state_dict().items()}
    state["camera_token"] = torch.zeros(1, 2, 1, 7)
    file = tmp_path / "shape.safetensors"
    save_file(state, file)
    with pytest.raises(ValueError, match="shape mismatch: camera_token"):
        modeling.load_spatial_encoder_weights(encoder, file)
