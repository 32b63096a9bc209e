"""ScanNet++'s layout (iPhone stream): a scene written by hand in the published format (segments
as segment ids of `segIndices`, `aligned_pose` not `pose`, depth in millimetres at its own size),
and synthetic scenes written in that layout read back against the generator's own truth."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from data_gen.qa.config import QAConfig
from data_gen.qa.labels import VSIBENCH_VOCABULARY
from data_gen.qa.scene_records import scene_qa
from data_gen.scans.codecs import encode_png16
from data_gen.scans.ply import write_ply
from data_gen.scans.scan import ScanError
from data_gen.scans.scannet import color_frame_ids, read_color_frames, read_scan
from data_gen.synthetic.scenes import generate_scene, run_scene_type, scene_seed, synthesize_scans


def hand_written_scene(root):
    scene = root / "0a5c013435"
    for sub in ("scans", "iphone/rgb", "iphone/depth"):
        (scene / sub).mkdir(parents=True)
    vertices = np.array([[0, 0, 0], [1, 0, 0], [0, 1, 0], [1, 1, 1], [3, 3, 0], [3, 4, 0], [4, 3, 1]], float)
    write_ply(scene / "scans/mesh_aligned_0.05.ply", vertices, np.zeros((7, 3)), np.array([[0, 1, 2], [4, 5, 6]]))
    # An older release: segIndices are over-segment ids, not vertex ids. Segment 7 = vertices 0-3.
    (scene / "scans/segments.json").write_text(json.dumps({"segIndices": [7, 7, 7, 7, 9, 9, 9]}))
    (scene / "scans/segments_anno.json").write_text(json.dumps({"segGroups": [
        {"id": 1, "objectId": 1, "label": "trash can", "segments": [7]},
        {"id": 2, "objectId": 2, "label": "office chair", "segments": [9]},
    ]}))  # fmt: skip
    k = [[100.0, 0, 40.0], [0, 100.0, 30.0], [0, 0, 1]]
    entries = {}
    for i in range(3):
        Image.fromarray(np.full((60, 80, 3), 20 * i, np.uint8)).save(scene / f"iphone/rgb/frame_{i:06d}.jpg", quality=95)
        (scene / f"iphone/depth/frame_{i:06d}.png").write_bytes(encode_png16(np.full((15, 20), 2000, np.uint16)))
        aligned = np.eye(4)
        aligned[:3, 3] = [i, 0, 1.5]
        entries[f"frame_{i:06d}"] = {"timestamp": 5.0 + i / 30, "intrinsic": k, "aligned_pose": aligned.tolist(),
                                     "pose": np.full((4, 4), 9.0).tolist()}  # fmt: skip
    del entries["frame_000002"]["aligned_pose"]
    (scene / "iphone/pose_intrinsic_imu.json").write_text(json.dumps(entries))
    return scene


def test_a_hand_written_scene_reads_as_published(tmp_path):
    scene = hand_written_scene(tmp_path)
    scan = read_scan(scene, max_bad_frame_fraction=0.5)
    assert scan.dataset == "scannetpp" and scan.color_size == (80, 60) and scan.depth_size == (20, 15)
    assert {i.label: sorted(i.vertex_ids.tolist()) for i in scan.instances} == {"trash can": [0, 1, 2, 3],
                                                                                 "office chair": [4, 5, 6]}  # fmt: skip
    np.testing.assert_allclose(scan.intrinsic_color[:3, :3], [[100, 0, 40], [0, 100, 30], [0, 0, 1]])
    np.testing.assert_allclose(scan.intrinsic_depth[:3, :3], [[25, 0, 10], [0, 25, 7.5], [0, 0, 1]])  # scaled by 1/4
    assert scan.frames.ids == [0, 1] and "aligned_pose" in scan.frames.skipped[2]
    np.testing.assert_allclose(scan.frames.pose(1)[:3, 3], [1, 0, 1.5])  # aligned_pose, never `pose`
    np.testing.assert_allclose(scan.frames.depth(0), 2.0)
    assert scan.fps == pytest.approx(30.0)
    assert color_frame_ids(scene) == [0, 1, 2] and read_color_frames(scene, [1])[0].shape == (60, 80, 3)
    # Categories in ScanNet++'s vocabulary: its own `trash can`, and `office chair` folded into chair.
    from data_gen.qa.labels import LabelMapping

    labels = LabelMapping.load(QAConfig())
    assert [labels.category(i.label, "scannetpp") for i in scan.instances] == ["trash can", "chair"]


def test_a_pose_file_that_is_not_json_is_named(tmp_path):
    scene = hand_written_scene(tmp_path)
    (scene / "iphone/pose_intrinsic_imu.json").write_text("[")
    with pytest.raises(ScanError, match="pose_intrinsic_imu.json: not valid JSON"):
        read_scan(scene)


def test_synthetic_scenes_in_the_scannetpp_layout_read_back_true(tmp_path):
    (path,) = synthesize_scans(tmp_path, 1, seed=4, num_frames=24, width=64, height=48, layout="scannetpp")
    scan = read_scan(path)
    truth, _ = generate_scene(path.name, scene_seed(4, 0), num_frames=24, width=64, height=48,
                              scene_type=run_scene_type(4, 0))  # fmt: skip
    assert scan.frames.ids == truth.frames.ids
    for i in (0, 23):
        np.testing.assert_allclose(scan.frames.pose(i), truth.frames.pose(i), atol=1e-9)
        np.testing.assert_allclose(scan.frames.depth(i), truth.frames.depth(i), atol=0.0006)
    assert np.array_equal(scan.vertices, truth.vertices)
    assert {i.object_id: i.vertex_ids.tolist() for i in scan.instances} == {
        i.object_id: np.unique(i.vertex_ids).tolist() for i in truth.instances if i.object_id in {j.object_id for j in scan.instances}}
    records, meta = scene_qa(scan, QAConfig(), 0)
    assert records and {o.category for o in meta.objects} <= VSIBENCH_VOCABULARY["scannetpp"]


def test_colmap_poses_are_used_when_present(tmp_path):
    """With iphone/colmap/ (COLMAP's text model), the frames it registered are the scan's, posed by
    it: images.txt holds world-to-camera as QW QX QY QZ TX TY TZ (here 90 degrees about z, then a
    shift), each image line followed by a 2D-points line; cameras.txt the pinhole."""
    scene = hand_written_scene(tmp_path)
    colmap = scene / "iphone/colmap"
    colmap.mkdir()
    h = np.sqrt(0.5)
    (colmap / "images.txt").write_text(
        "# Image list with two lines of data per image:\n"
        f"1 {h} 0 0 {h} 1 2 3 1 frame_000002.jpg\n\n"
        "2 1 0 0 0 0 0 0 1 video/frame_000000.jpg\n1.0 2.0 -1\n")  # fmt: skip
    (colmap / "cameras.txt").write_text("# Camera list\n1 PINHOLE 80 60 90 91 41 31\n")
    scan = read_scan(scene)
    assert scan.frames.ids == [0, 2] and not scan.frames.skipped  # frame 1 is not registered: not listed
    world_to_camera = np.eye(4)
    world_to_camera[:3, :3] = [[0, -1, 0], [1, 0, 0], [0, 0, 1]]  # 90 degrees about z
    world_to_camera[:3, 3] = [1, 2, 3]
    np.testing.assert_allclose(scan.frames.pose(2), np.linalg.inv(world_to_camera), atol=1e-12)
    np.testing.assert_allclose(scan.frames.pose(0), np.eye(4))
    np.testing.assert_allclose(scan.intrinsic_color[[0, 1, 0, 1], [0, 1, 2, 2]], [90, 91, 41, 31])
