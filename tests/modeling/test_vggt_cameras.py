"""VGGT's camera conventions on hand-made cameras, the input resize, anchored chunks and the memory
estimate."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

import modeling
from modeling.vggt_model import (
    anchored_chunks,
    memory_estimate,
    merge_anchored,
    resize_for_vggt,
    vggt_input_size,
)


def test_pose_encoding_to_matrices_by_hand():
    """90 degrees about z as the quaternion (0, 0, sin 45, cos 45) scaled by 3 (length does not
    matter), t = (1, 2, 3); on a 100x200 (HxW) image fov_w = 90 degrees gives fx = 100 and
    fov_h = 2 atan(1/4) gives fy = 50 / (1/4) = 200."""
    s = math.sin(math.pi / 4)
    pose_enc = torch.tensor([[[1.0, 2.0, 3.0, 0.0, 0.0, 3 * s, 3 * s, 2 * math.atan(0.25), math.pi / 2]]])
    extrinsics, intrinsics = modeling.pose_encoding_to_cameras(pose_enc, (100, 200))
    want_e = torch.tensor([[0.0, -1.0, 0.0, 1.0], [1.0, 0.0, 0.0, 2.0], [0.0, 0.0, 1.0, 3.0]])
    want_k = torch.tensor([[100.0, 0.0, 100.0], [0.0, 200.0, 50.0], [0.0, 0.0, 1.0]])
    torch.testing.assert_close(extrinsics[0, 0], want_e, atol=1e-6, rtol=0)
    torch.testing.assert_close(intrinsics[0, 0], want_k, atol=1e-4, rtol=1e-6)
    with pytest.raises(ValueError, match="9"):
        modeling.pose_encoding_to_cameras(torch.zeros(1, 1, 8), (10, 10))


def test_a_camera_looking_along_x_at_a_wall_sees_the_wall():
    """Camera at (0, 0, 1) looking along world +x (image right = world -y, image down = world -z)
    in front of the wall x = 4: depth 4 everywhere. Its centre pixel lands on (4, 0, 1); the pixel
    fx / 4 to the right on (4, -1, 1), the one fy / 4 below on (4, 0, 0)."""
    rotation = torch.tensor([[0.0, -1.0, 0.0], [0.0, 0.0, -1.0], [1.0, 0.0, 0.0]])  # rows: camera axes in world
    centre = torch.tensor([0.0, 0.0, 1.0])
    extrinsics = torch.cat([rotation, (-rotation @ centre)[:, None]], dim=1)[None, None]  # [1, 1, 3, 4]
    fx, fy, cx, cy = 20.0, 16.0, 10.0, 8.0
    intrinsics = torch.tensor([[fx, 0.0, cx], [0.0, fy, cy], [0.0, 0.0, 1.0]])[None, None]
    depth = torch.full((1, 1, 16, 20, 1), 4.0)
    points = modeling.depth_to_world_points(depth, extrinsics, intrinsics)[0, 0]  # [16, 20, 3]
    torch.testing.assert_close(points[8, 10], torch.tensor([4.0, 0.0, 1.0]))
    torch.testing.assert_close(points[8, 15], torch.tensor([4.0, -1.0, 1.0]))
    torch.testing.assert_close(points[12, 10], torch.tensor([4.0, 0.0, 0.0]))
    torch.testing.assert_close(points[..., 0], torch.full((16, 20), 4.0))


def test_identity_camera_unprojects_a_plane_through_its_intrinsics():
    """At the origin, looking along +z: pixel (u, v) at depth 2 is ((u - cx) 2 / fx, (v - cy) 2 / fy, 2);
    a [B, S, H, W] depth works like [B, S, H, W, 1]."""
    extrinsics = torch.eye(3, 4)[None, None]
    intrinsics = torch.tensor([[4.0, 0.0, 2.0], [0.0, 2.0, 1.0], [0.0, 0.0, 1.0]])[None, None]
    points = modeling.depth_to_world_points(torch.full((1, 1, 3, 5), 2.0), extrinsics, intrinsics)[0, 0]
    u, v = torch.meshgrid(torch.arange(5.0), torch.arange(3.0), indexing="xy")
    torch.testing.assert_close(points, torch.stack([(u - 2) * 2 / 4, (v - 1) * 2 / 2, torch.full((3, 5), 2.0)], -1))


def test_vggt_input_sizes():
    assert vggt_input_size(480, 640) == (392, 392, 518)  # 480 * 518 / 640 = 388.5 -> 28 patches
    assert vggt_input_size(640, 480) == (686, 518, 518)  # portrait: centre-cropped to 518
    assert vggt_input_size(1440, 1920, 56) == (42, 42, 56)
    frames = [np.zeros((640, 480, 3), np.uint8)]
    frames[0][320:, :] = 255  # bottom half white: the crop keeps the middle rows
    out = resize_for_vggt(frames, 518)
    assert out.shape == (1, 518, 518, 3) and out.dtype == np.uint8
    assert out[0, 0].max() == 0 and out[0, -1].min() == 255


def test_anchored_chunks_share_frame_zero():
    assert anchored_chunks(10, 0) == [list(range(10))]
    assert anchored_chunks(10, 10) == [list(range(10))]
    assert anchored_chunks(10, 4) == [[0, 1, 4, 7], [0, 2, 5, 8], [0, 3, 6, 9]]  # frames dealt in turn
    assert anchored_chunks(10, 5) == [[0, 1, 4, 7], [0, 2, 5, 8], [0, 3, 6, 9]]  # 9 others need 3 chunks of <= 4
    chunks = anchored_chunks(128, 64)
    assert len(chunks) == 3 and max(map(len, chunks)) <= 64
    assert sorted(f for c in chunks for f in c[1:]) == list(range(1, 128))
    with pytest.raises(ValueError):
        anchored_chunks(10, 1)


def test_merged_chunks_come_back_at_the_first_chunks_scale():
    """Frames 0..4 with depth d_f = f + 1 and translation (f, 0, 0); chunk [0, 2, 4] was predicted at
    twice the scale (depth and translation doubled): the merge halves it back."""
    def truth(frames, scale):
        pose = torch.zeros(1, len(frames), 9)
        pose[0, :, 0] = torch.tensor([float(f) for f in frames]) * scale
        pose[0, :, 3:7] = torch.tensor([0.0, 0.0, 0.0, 1.0])
        pose[0, :, 7:] = 1.0
        depth = torch.stack([torch.full((2, 3, 1), (f + 1.0) * scale) for f in frames])[None]
        return {"pose_enc": pose, "depth": depth, "depth_conf": torch.full((1, len(frames), 2, 3), 2.0)}

    chunks = [[0, 1, 3], [0, 2, 4]]
    merged = merge_anchored(chunks, [truth(chunks[0], 1.0), truth(chunks[1], 2.0)])
    want = truth(range(5), 1.0)
    for key in want:
        torch.testing.assert_close(merged[key], want[key])


def test_memory_estimate_keeps_the_4_tapped_layers():
    """The kept-layer term by hand: 4 layers x 128 frames x (28 x 37 + 5) tokens x 2048 x 4 bytes."""
    est = memory_estimate("vggt-1b", 128, (392, 518))
    assert est["kept_layers"] == pytest.approx(4 * 128 * (28 * 37 + 5) * 2048 * 4 / 2**30)
    assert est["weights"] == pytest.approx(1_157_941_492 * 4 / 2**30)
    assert est["peak"] < 20  # the default (128 candidates, one forward) on a 24 GB card
    assert memory_estimate("vggt-1b", 128, (392, 518), kept_layers=24)["peak"] > 24  # VGGT keeping all 24
    assert memory_estimate("vggt-1b", 64, (392, 518))["peak"] < est["peak"]
