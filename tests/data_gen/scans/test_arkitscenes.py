"""ARKitScenes' 3DOD layout: a scene written by hand in the published format (boxes as rows of
normalizedAxes, world-to-camera axis-angle trajectory, .pincam order, depth in millimetres), and
synthetic scenes written in that layout read back against the generator's own truth."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from PIL import Image
from scipy.spatial.transform import Rotation

from data_gen.qa.config import QAConfig
from data_gen.qa.labels import VSIBENCH_VOCABULARY
from data_gen.qa.scene_records import scene_qa
from data_gen.scans.arkitscenes import is_arkit_scene
from data_gen.scans.codecs import encode_png16
from data_gen.scans.ply import write_ply
from data_gen.scans.scan import ScanError
from data_gen.scans.scannet import color_frame_ids, read_color_frames, read_scan
from data_gen.synthetic.scenes import (
    ARKIT_LABELS,
    ARKIT_TAXONOMY,
    generate_scene,
    run_scene_type,
    scene_seed,
    synthesize_scans,
)

VID = "41069025"


def cube(center, size) -> tuple[np.ndarray, np.ndarray]:
    """Vertices [8, 3] and faces [12, 3] of an axis-aligned box."""
    c, h = np.asarray(center, float), np.asarray(size, float) / 2
    v = np.array([[x, y, z] for x in (-1, 1) for y in (-1, 1) for z in (-1, 1)], float) * h + c
    f = np.array([[0, 1, 3], [0, 3, 2], [4, 6, 7], [4, 7, 5], [0, 4, 5], [0, 5, 1], [2, 3, 7], [2, 7, 6],
                  [0, 2, 6], [0, 6, 4], [1, 5, 7], [1, 7, 3]])  # fmt: skip
    return v, f


def hand_written_scene(root, frame_times=(100.0, 100.1, 100.2), traj_times=(100.0, 100.1, 100.22)):
    """A 3DOD folder written as ARKitScenes publishes it: one table (rotated 30 degrees about z) and
    one cabinet-labelled object, a camera at (1, 2, 1.5) looking along +x (upright)."""
    scene = root / VID
    frames = scene / f"{VID}_frames"
    for sub in ("lowres_wide", "lowres_depth", "lowres_wide_intrinsics"):
        (frames / sub).mkdir(parents=True)
    a = math.radians(30)
    table_v, table_f = cube((3, 2, 0.4), (1.2, 0.6, 0.8))
    rot = np.array([[math.cos(a), -math.sin(a), 0], [math.sin(a), math.cos(a), 0], [0, 0, 1]])
    table_v = (table_v - [3, 2, 0.4]) @ rot.T + [3, 2, 0.4]
    sofa_v, sofa_f = cube((0, 0, 0.4), (2.0, 0.9, 0.8))
    write_ply(scene / f"{VID}_3dod_mesh.ply", np.concatenate([table_v, sofa_v]), np.full((16, 3), 128),
              np.concatenate([table_f, sofa_f + 8]))  # fmt: skip
    axes_rows = [math.cos(a), math.sin(a), 0.0, -math.sin(a), math.cos(a), 0.0, 0.0, 0.0, 1.0]  # rows = box axes
    doc = {"data": [
        {"uid": "a", "label": "table", "segments": {"obbAligned": {"centroid": [3, 2, 0.4], "axesLengths": [1.2, 0.6, 0.8],
                                                                   "normalizedAxes": axes_rows}}},
        {"uid": "b", "label": "sofa", "segments": {"obbAligned": {"centroid": [0, 0, 0.4], "axesLengths": [2.0, 0.9, 0.8],
                                                                  "normalizedAxes": [1, 0, 0, 0, 1, 0, 0, 0, 1]}}},
        {"uid": "c", "label": "stairs", "segments": {}},
    ], "skipped": False, "stats": {}}  # fmt: skip
    (scene / f"{VID}_3dod_annotation.json").write_text(json.dumps(doc))
    # Camera-to-world: at (1, 2, 1.5); camera z (forward) = world +x, camera x (right) = world -y,
    # camera y (down) = world -z. The file holds its inverse, world-to-camera, as axis-angle.
    cam_to_world = np.eye(4)
    cam_to_world[:3, :3] = np.stack([[0, -1, 0], [0, 0, -1], [1, 0, 0]], axis=1)  # columns: camera x, y, z
    cam_to_world[:3, 3] = [1, 2, 1.5]
    world_to_cam = np.linalg.inv(cam_to_world)
    rotvec = Rotation.from_matrix(world_to_cam[:3, :3]).as_rotvec()
    (frames / "lowres_wide.traj").write_text("".join(
        f"{t:.5f} {rotvec[0]} {rotvec[1]} {rotvec[2]} {world_to_cam[0, 3]} {world_to_cam[1, 3]} {world_to_cam[2, 3]}\n"
        for t in traj_times))  # fmt: skip
    for k, t in enumerate(frame_times):
        stem = f"{VID}_{t:.3f}"
        Image.fromarray(np.full((6, 8, 3), 10 * k, np.uint8)).save(frames / "lowres_wide" / f"{stem}.png")
        (frames / "lowres_depth" / f"{stem}.png").write_bytes(encode_png16(np.full((6, 8), 1500 + k, np.uint16)))
        (frames / "lowres_wide_intrinsics" / f"{stem}.pincam").write_text("8 6 7.5 7.25 3.9 2.95\n")
    return scene, cam_to_world


def test_a_hand_written_scene_reads_as_published(tmp_path):
    scene, cam_to_world = hand_written_scene(tmp_path)
    assert is_arkit_scene(scene)
    scan = read_scan(scene, max_bad_frame_fraction=0.5)
    assert scan.name == VID and scan.dataset == "arkitscenes" and scan.color_size == (8, 6) == scan.depth_size
    np.testing.assert_allclose(scan.intrinsic_color[[0, 1, 0, 1], [0, 1, 2, 2]], [7.5, 7.25, 3.9, 2.95])
    # Frames 0 and 1 match trajectory lines; frame 2 (100.2 s) is 20 ms from the nearest: skipped.
    assert scan.frames.ids == [0, 1] and "no pose within 5 ms" in scan.frames.skipped[2]
    np.testing.assert_allclose(scan.frames.pose(0), cam_to_world, atol=1e-9)
    np.testing.assert_allclose(scan.frames.depth(1), 1.501)  # millimetres -> metres
    assert scan.frames.color(1)[0, 0].tolist() == [10, 10, 10]
    assert scan.fps == pytest.approx(10.0)
    # Boxes: the annotation's own, axes = rows of normalizedAxes; the box without obbAligned is skipped.
    table = next(i for i in scan.instances if i.label == "table")
    np.testing.assert_allclose(table.box.axes[0], [math.cos(math.radians(30)), math.sin(math.radians(30)), 0])
    np.testing.assert_allclose(table.box.extents, [1.2, 0.6, 0.8])
    assert sorted(table.vertex_ids.tolist()) == list(range(8))  # the table's own vertices are inside its box
    assert [s.label for s in scan.skipped_instances] == ["stairs"]
    # Frames by id, as workers read them.
    assert color_frame_ids(scene) == [0, 1, 2]
    assert read_color_frames(scene, [1])[0][0, 0].tolist() == [10, 10, 10]


def test_bad_annotations_are_named(tmp_path):
    scene, _ = hand_written_scene(tmp_path)
    path = scene / f"{VID}_3dod_annotation.json"
    path.write_text(json.dumps({"data": [], "skipped": True}))
    with pytest.raises(ScanError, match="marks this scene as skipped"):
        read_scan(scene)
    path.write_text("{not json")
    with pytest.raises(ScanError, match=f"{VID}_3dod_annotation.json: not valid JSON"):
        read_scan(scene)


def test_synthetic_scenes_in_the_arkit_layout_read_back_true(tmp_path):
    (path,) = synthesize_scans(tmp_path, 1, seed=3, num_frames=24, width=64, height=48, layout="arkitscenes")
    scan = read_scan(path)
    truth, objects = generate_scene(path.name, scene_seed(3, 0), num_frames=24, width=64, height=48,
                                    scene_type=run_scene_type(3, 0))
    assert scan.frames.ids == truth.frames.ids
    for i in (0, 11, 23):
        np.testing.assert_allclose(scan.frames.pose(i), truth.frames.pose(i), atol=1e-6)
        assert np.array_equal(scan.frames.color(i), truth.frames.color(i))  # PNG: lossless
        np.testing.assert_allclose(scan.frames.depth(i), truth.frames.depth(i), atol=0.0006)  # millimetres
    # Every object of ARKitScenes' taxonomy is annotated with its exact box (ids are ours: file order).
    annotated = [o for o in objects if ARKIT_LABELS.get(o.label, o.label) in ARKIT_TAXONOMY]
    assert len(scan.instances) == len(annotated) > 0
    for inst, o in zip(scan.instances, sorted(annotated, key=lambda o: o.object_id), strict=True):
        assert inst.label == ARKIT_LABELS.get(o.label, o.label)
        np.testing.assert_allclose(inst.box.center, o.center, atol=1e-9)
        np.testing.assert_allclose(inst.box.extents, o.size, atol=1e-9)
    # Questions come out in ARKitScenes' vocabulary only.
    records, meta = scene_qa(scan, QAConfig(), 0)
    assert records and {o.category for o in meta.objects} <= VSIBENCH_VOCABULARY["arkitscenes"]
    assert all(r["dataset"] == "arkitscenes" for r in records)
