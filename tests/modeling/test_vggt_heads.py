"""VGGT with heads: the released names and shapes, strict loading, the forward contract, and the
heads' arithmetic on hand-set weights."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

import modeling
from modeling.vggt_heads import ResidualConvUnit, uv_position_embedding
from modeling.vggt_model import check_vggt_checkpoint

# VGGT-1B's released state dict, names and shapes only (facebook/VGGT-1B model.pt, as listed in the
# project's shared reference), so these tests need no 5 GB download.
SHAPES = Path(__file__).resolve().parent / "fixtures" / "vggt_1b_state_dict_shapes.json"
UNUSED = ("point_head.", "track_head.")


@pytest.fixture(scope="module")
def released_shapes() -> dict[str, list[int]]:
    return json.loads(SHAPES.read_text())


@pytest.fixture
def tiny() -> modeling.VGGT:
    return modeling.load_vggt("tiny", seed=0)


def test_vggt_1b_has_the_released_names_and_shapes(released_shapes):
    with torch.device("meta"):
        model = modeling.build_vggt("vggt-1b")
    ours = {k: list(v.shape) for k, v in model.state_dict().items()}
    released = {k: v for k, v in released_shapes.items() if not k.startswith(UNUSED)}
    assert ours == released
    assert sum(1 for k in released if k.startswith(("camera_head.", "depth_head."))) == 131


def test_a_released_layout_checkpoint_loads_with_nothing_missing_or_unexpected(released_shapes, tmp_path):
    """Every tensor of VGGT-1B's release by name and shape (random values; each tensor one random
    number broadcast to its shape, so the 5 GB model costs a few kB), point/track heads included."""
    gen = torch.Generator().manual_seed(0)
    state = {k: torch.randn(1, generator=gen).expand(shape) for k, shape in released_shapes.items()}
    folder = tmp_path / "VGGT-1B"
    folder.mkdir()
    torch.save(state, folder / "model.pt")
    check_vggt_checkpoint("vggt-1b", folder)  # names and shapes, the file memory-mapped
    model = modeling.load_vggt("vggt-1b", path=folder)  # built on the meta device, tensors assigned
    loaded = model.state_dict()
    assert set(loaded) == {k for k in released_shapes if not k.startswith(UNUSED)}
    assert all(v.device.type == "cpu" for v in loaded.values())
    for name in ("aggregator.camera_token", "camera_head.poseLN_modulation.1.weight",
                 "depth_head.scratch.output_conv2.2.bias", "depth_head.resize_layers.3.weight"):  # fmt: skip
        assert torch.equal(loaded[name], state[name]), name


def test_tiny_checkpoint_round_trip_gives_the_same_predictions(tiny, tmp_path):
    state = {f"{k}": v.clone().contiguous() for k, v in tiny.state_dict().items()}
    state["point_head.norm.weight"] = torch.ones(3)  # released extras are skipped by name
    state["track_head.fnet.x"] = torch.zeros(2)
    (tmp_path / "w").mkdir()
    save_file(state, tmp_path / "w" / "model.safetensors")
    loaded = modeling.load_vggt("tiny", path=tmp_path / "w")
    images = torch.rand(1, 3, 3, 42, 56)
    with torch.no_grad():
        a, b = tiny(images), loaded(images)
    for key in ("pose_enc", "depth", "depth_conf"):
        torch.testing.assert_close(a[key], b[key], rtol=0, atol=0)


def test_mismatched_checkpoints_are_refused_listing_every_problem(tiny, tmp_path):
    state = {k: v.clone() for k, v in tiny.state_dict().items()}
    del state["camera_head.empty_pose_tokens"]
    state["depth_head.extra.weight"] = torch.zeros(1)
    state["camera_head.embed_pose.bias"] = torch.zeros(7)
    save_file(state, tmp_path / "bad.safetensors")
    for attempt in (lambda: modeling.load_vggt("tiny", path=tmp_path / "bad.safetensors"),
                    lambda: check_vggt_checkpoint("tiny", tmp_path / "bad.safetensors")):  # fmt: skip
        with pytest.raises(ValueError) as err:
            attempt()
        for part in ("missing (1): camera_head.empty_pose_tokens", "unexpected (1): depth_head.extra.weight",
                     "camera_head.embed_pose.bias (7,) vs (128,)"):  # fmt: skip
            assert part in str(err.value)
    with pytest.raises(ValueError, match="unknown VGGT preset"):
        modeling.build_vggt("huge")


def test_forward_contract(tiny):
    images = torch.rand(2, 5, 3, 42, 56)  # [B, S, 3, H, W] in [0, 1]
    with torch.no_grad():
        out = tiny(images)
        chunked = tiny(images, frames_chunk=2)
    assert out["pose_enc"].shape == (2, 5, 9)
    assert out["depth"].shape == (2, 5, 42, 56, 1)
    assert out["depth_conf"].shape == (2, 5, 42, 56)
    assert (out["depth"] > 0).all() and (out["depth_conf"] > 1).all()  # exp and 1 + exp
    assert (out["pose_enc"][..., 7:] >= 0).all()  # fields of view through a ReLU
    for key in out:  # the depth head's frame chunks change memory, not results
        torch.testing.assert_close(out[key], chunked[key])


def test_camera_head_adds_each_pass_delta_to_the_estimate(tiny):
    """Trunk switched off (LayerScale 0) and a constant delta b from the pose branch: after the 4
    passes the estimate is 4 b, the field of view through a ReLU."""
    head = tiny.camera_head
    b = torch.tensor([0.5, -1.0, 2.0, 0.1, 0.2, 0.3, 0.4, 0.25, -0.25])
    with torch.no_grad():
        for block in head.trunk:
            block.ls1.gamma.zero_()
            block.ls2.gamma.zero_()
        head.pose_branch.fc2.weight.zero_()
        head.pose_branch.fc2.bias.copy_(b)
        passes = head(torch.rand(1, 3, 10, 128))
    assert len(passes) == 4
    expected = [torch.cat([(i + 1) * b[:7], torch.relu((i + 1) * b[7:])]) for i in range(4)]
    for got, want in zip(passes, expected, strict=True):
        torch.testing.assert_close(got, want.expand(1, 3, 9))


def test_residual_unit_skips_with_the_activated_input():
    """VGGT's ReLU runs in place, so the skip carries relu(x): with zero convolutions the unit
    returns relu(x), not x."""
    unit = ResidualConvUnit(2)
    with torch.no_grad():
        for conv in (unit.conv1, unit.conv2):
            conv.weight.zero_()
            conv.bias.zero_()
    x = torch.tensor([[[[-1.0, 2.0]], [[3.0, -4.0]]]])  # [1, 2, 1, 2]
    torch.testing.assert_close(unit(x), torch.tensor([[[[0.0, 2.0]], [[3.0, 0.0]]]]))


def test_dpt_position_embedding_by_hand():
    """4 channels on a 1x2 grid of a square image: u = +-span_x/2, span_x = 1/sqrt(2), v = 0;
    channels (sin u, cos u, sin v, cos v) at frequency 1."""
    emb = uv_position_embedding(4, 1, 2, 1.0, torch.float32, "cpu")  # [4, 1, 2]
    u = 0.5 / math.sqrt(2)
    want = torch.tensor([[[-math.sin(u), math.sin(u)]], [[math.cos(u), math.cos(u)]], [[0.0, 0.0]], [[1.0, 1.0]]])
    torch.testing.assert_close(emb, want)


def test_only_the_layers_the_heads_read_are_kept(tiny):
    assert tiny.needed_layers() == [0, 1]  # tiny: dpt_layers (0, 0, 1, 1), last layer 1
    with torch.device("meta"):
        assert modeling.build_vggt("vggt-1b").needed_layers() == [4, 11, 17, 23]
    images = torch.rand(1, 2, 3, 28, 28)
    with torch.no_grad():
        kept = tiny.aggregate(images)
        layers, _ = tiny.aggregator(images)
    assert sorted(kept) == [0, 1]
    torch.testing.assert_close(kept[1], layers[1], rtol=0, atol=0)
