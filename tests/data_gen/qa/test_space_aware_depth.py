"""Space-aware selection from depth maps and cameras: the one path both a scan's true geometry and
VGGT's predicted geometry go through."""

from __future__ import annotations

import numpy as np
import pytest

from data_gen.qa.config import QAConfig
from data_gen.qa.frame_selection import (
    camera_to_world,
    space_aware_positions,
    uniform_indices,
    unproject_depths,
)
from data_gen.qa.scene_records import scene_frames
from data_gen.synthetic.scenes import generate_scene


@pytest.fixture(scope="module")
def scene():
    scan, _ = generate_scene("scene0000_00", 3, num_frames=96)
    return scan


@pytest.mark.parametrize("pad", [True, False])
def test_true_depth_and_poses_choose_what_the_scan_path_chooses(scene, pad):
    """The scene's in-memory depth maps and camera-to-world poses, as a video's predictions would
    come in (arrays, per-frame intrinsics, confidences), pick the frames scene_frames picks."""
    config = QAConfig(pad_frames=pad)
    want, _ = scene_frames(scene, config)
    candidates = uniform_indices(scene.frames.ids, config.num_candidates)
    depths = np.stack([scene.frames.depth(i) for i in candidates])  # [F, H, W] metres, 0 = none
    poses = np.stack([scene.frames.pose(i) for i in candidates])  # [F, 4, 4] camera-to-world
    intrinsics = np.broadcast_to(np.asarray(scene.intrinsic_depth)[:3, :3], (len(candidates), 3, 3))
    settings = dict(num_frames=config.num_frames, depth_stride=config.depth_stride,
                    conf_threshold=config.conf_threshold, voxel_divisions=config.voxel_divisions, pad=pad)  # fmt: skip
    for confidences in (None, np.ones_like(depths)):  # true geometry, or uniform "predicted" confidence
        positions = space_aware_positions(depths, poses, intrinsics, confidences, **settings)
        assert [candidates[p] for p in positions] == want
    assert len(want) == config.num_frames if pad else len(want) >= 1


def test_unprojection_by_hand_with_per_frame_intrinsics_and_confidences():
    """Frame 0: camera at the origin looking along +z, fx = fy = 2, c = (1, 1), a 2x2 depth sampled
    every 2nd pixel (so pixel (1, 1) of the sample is (2, 2) of the image), one pixel without depth.
    Frame 1: another size and intrinsics, moved to (10, 0, 0). Points and confidences stay paired."""
    d0 = np.array([[1.0, 2.0], [0.0, 4.0]], np.float32)
    d1 = np.array([[3.0, 3.0, 3.0]], np.float32)
    pose1 = np.eye(4)
    pose1[0, 3] = 10.0
    k = np.array([[[2.0, 0, 1], [0, 2.0, 1], [0, 0, 1]], [[3.0, 0, 0], [0, 3.0, 0], [0, 0, 1]]])
    conf = [np.array([[0.5, 0.6], [0.7, 0.8]], np.float32), np.array([[0.1, 0.2, 0.3]], np.float32)]
    xyz, bounds, c = unproject_depths([d0, d1], [np.eye(4), pose1], k, depth_stride=2, confidences=conf)
    want = np.array([
        [-0.5, -0.5, 1.0],  # (u, v) = (0, 0): ((0 - 1) * 1 / 2, (0 - 1) * 1 / 2, 1)
        [1.0, -1.0, 2.0],  # (2, 0) at depth 2
        [2.0, 2.0, 4.0],  # (2, 2) at depth 4; (0, 2) had no depth
        [10.0, 0.0, 3.0], [12.0, 0.0, 3.0], [14.0, 0.0, 3.0],  # frame 1: u = 0, 2, 4 at depth 3, fx 3
    ])  # fmt: skip
    np.testing.assert_allclose(xyz.T, want, atol=1e-6)
    assert bounds.tolist() == [0, 3, 6]
    np.testing.assert_allclose(c, [0.5, 0.6, 0.8, 0.1, 0.2, 0.3])


def test_camera_to_world_inverts_vggt_extrinsics():
    rotation = np.array([[0.0, -1.0, 0.0], [0.0, 0.0, -1.0], [1.0, 0.0, 0.0]])
    centre = np.array([1.0, 2.0, 3.0])
    extrinsics = np.concatenate([rotation, (-rotation @ centre)[:, None]], axis=1)  # world-to-camera
    pose = camera_to_world(extrinsics[None])[0]
    np.testing.assert_allclose(pose[:3, 3], centre)  # the camera sits at its centre
    np.testing.assert_allclose(pose[:3, :3], rotation.T)
    np.testing.assert_allclose(pose[3], [0, 0, 0, 1])


def test_low_confidence_frames_are_not_chosen():
    """Three cameras each seeing their own wall patch; frame 1's confidences sit below the median,
    so its points are dropped and it is never picked (with pad off)."""
    depths = np.full((3, 8, 8), 2.0, np.float32)
    poses = np.stack([np.eye(4)] * 3)
    poses[:, 0, 3] = [0.0, 5.0, 10.0]  # side by side: disjoint patches
    k = np.array([[4.0, 0, 4], [0, 4.0, 4], [0, 0, 1]])
    conf = np.ones_like(depths) * 3.0
    conf[1] = 1.5
    assert space_aware_positions(depths, poses, k, conf, num_frames=3, depth_stride=1, pad=False) == [0, 2]
    assert space_aware_positions(depths, poses, k, None, num_frames=3, depth_stride=1, pad=False) == [0, 1, 2]
