"""VSI-Bench's meta_info format: written from scans, read back, and questions built from it alone."""

from __future__ import annotations

import json

import numpy as np
import pytest

from data_gen.qa.config import QAConfig
from data_gen.qa.meta_info import (
    MetaInfoError,
    read_meta_info,
    scene_entry,
    scene_from_entry,
    write_meta_info,
)
from data_gen.qa.scene_records import metadata_records, scene_qa
from data_gen.schema import CAMERA_MOTION_TYPES
from tests.data_gen.qa import vsibench_fixtures
from tests.data_gen.qa.qa_scenes import furnished_room

CFG = QAConfig(max_per_type={t: -1 for t in QAConfig().max_per_type})


def test_scans_to_meta_info_to_questions_equals_scans_to_questions(tmp_path):
    records, meta = scene_qa(furnished_room(), CFG, seed=5)
    path = tmp_path / "meta_info.json"
    write_meta_info(path, [meta])
    entry = read_meta_info(path)[meta.scene_name]
    again = metadata_records(scene_from_entry(meta.scene_name, entry), CFG, seed=5, video=meta.scene_name)
    without_frames = [  # no appearance order and no camera motion: meta_info has neither times nor poses
        {**r, "frame_indices": [], "uniform_indices": []} for r in records
        if r["question_type"] != "obj_appearance_order" and r["question_type"] not in CAMERA_MOTION_TYPES
    ]  # fmt: skip
    assert len(without_frames) > 10
    assert again == without_frames  # same ids, questions, options, answers, rationales


def test_entry_in_vsibench_layout(tmp_path):
    _, meta = scene_qa(furnished_room(num_frames=2), CFG, seed=0)
    entry = json.loads(json.dumps(scene_entry(meta)))
    assert set(entry) >= {"room_size", "room_center", "object_counts", "object_bbox"}
    assert entry["object_counts"] == {"chair": 2, "closet": 1, "lamp": 1, "sofa": 1, "table": 1}
    table = entry["object_bbox"]["table"][0]
    assert set(table) >= {"centroid", "axesLengths", "normalizedAxes", "min", "max"}
    assert len(table["normalizedAxes"]) == 9
    np.testing.assert_allclose(sorted(table["axesLengths"]), [0.75, 0.8, 1.6], atol=1e-6)
    np.testing.assert_allclose(table["min"], [1.7, 1.6, 0.0], atol=1e-6)  # the axis-aligned bounds
    np.testing.assert_allclose(table["max"], [3.3, 2.4, 0.75], atol=1e-6)
    assert entry["room_size"] == pytest.approx(meta.room_area)


def test_a_vsibench_entry_without_our_extra_keys():
    """VSI-Bench's own entries carry no object ids, dataset or fps: ids follow the file order."""

    def box(lo, hi):
        lo, hi = np.asarray(lo, float), np.asarray(hi, float)
        return {"centroid": ((lo + hi) / 2).tolist(), "axesLengths": (hi - lo).tolist(),
                "normalizedAxes": np.eye(3).ravel().tolist(), "min": lo.tolist(), "max": hi.tolist()}  # fmt: skip

    entry = {
        "room_size": 20.04, "room_center": [0, 0, 0], "object_counts": {"chair": 2, "sofa": 1, "door": 1},
        "object_bbox": {
            "chair": [box((0, 0, 0), (0.5, 0.5, 0.9)), box((3, 0, 0), (3.5, 0.5, 0.9))],
            "door": [box((-0.05, 2, 0), (0.05, 2.9, 2.0))],
            "sofa": [box((1, 3, 0), (3, 3.9, 0.8))],
        },
    }  # fmt: skip
    meta = scene_from_entry("scene0011_00", entry)
    assert [(o.object_id, o.category) for o in meta.objects] == [(0, "chair"), (1, "chair"), (2, "door"), (3, "sofa")]
    assert meta.dataset == "scannet" and meta.first_appearance == {}
    recs = metadata_records(meta, CFG, seed=0, video="scene0011_00")
    by_type = {r["question_type"] for r in recs}
    assert {"object_counting", "room_size_estimation", "object_size_estimation", "object_abs_distance"} <= by_type
    assert "obj_appearance_order" not in by_type
    room = next(r for r in recs if r["question_type"] == "room_size_estimation")
    assert room["ground_truth"] == "20.0"
    size = {json.loads(r["meta"])["category"]: r["ground_truth"] for r in recs if r["question_type"] == "object_size_estimation"}
    assert size == {"door": "200", "sofa": "200"}


def test_bad_files_and_entries_are_named(tmp_path):
    with pytest.raises(MetaInfoError, match="no such meta_info file"):
        read_meta_info(tmp_path / "missing.json")
    bad = tmp_path / "bad.json"
    bad.write_text("[1, 2]")
    with pytest.raises(MetaInfoError, match="bad.json: expected an object"):
        read_meta_info(bad)
    bad.write_text(json.dumps({"scene0000_00": {"room_size": 3}}))
    with pytest.raises(MetaInfoError, match=r"scene\(s\) \['scene0000_00'\] lack room_size or object_bbox"):
        read_meta_info(bad)
    wrong = {"room_size": 3.0, "object_bbox": {"chair": [{"centroid": [0, 0, 0], "axesLengths": [1, 1]}]}}
    with pytest.raises(MetaInfoError, match="scene0001_00"):
        scene_from_entry("scene0001_00", wrong)


def _aligned(lo, hi) -> dict:
    lo, hi = np.asarray(lo, float), np.asarray(hi, float)
    return {"centroid": ((lo + hi) / 2).tolist(), "axesLengths": (hi - lo).tolist(),
            "normalizedAxes": np.eye(3).ravel().tolist()}  # fmt: skip


def test_an_entry_counts_as_its_object_counts_say():
    """VSI-Bench's ScanNet file lists every printer box twice and states some counts its boxes do
    not show; its questions follow object_counts (counting's answer, which objects are unique)."""
    printer = _aligned((0, 0, 0.7), (0.5, 0.4, 1.0))
    entry = {
        "room_size": 20.0,
        "object_counts": {"printer": 1, "chair": 3, "sofa": 1},
        "object_bbox": {"printer": [printer, dict(printer)],
                        "chair": [_aligned((2, 0, 0), (2.5, 0.5, 0.9)), _aligned((3, 0, 0), (3.5, 0.5, 0.9))],
                        "sofa": [_aligned((1, 3, 0), (3, 3.9, 0.8))]},
    }  # fmt: skip
    meta = scene_from_entry("scene0050_01", entry)
    assert [o.category for o in meta.objects] == ["chair", "chair", "printer", "sofa"]  # the repeat once
    assert meta.counts == {"chair": 3, "printer": 1, "sofa": 1}
    recs = metadata_records(meta, CFG, seed=0, video="scene0050_01")
    counting = [r for r in recs if r["question_type"] == "object_counting"]
    assert [(r["question"], r["ground_truth"]) for r in counting] == [("How many chair(s) are in this room?", "3")]
    sizes = {json.loads(r["meta"])["category"]: r["ground_truth"] for r in recs if r["question_type"] == "object_size_estimation"}
    assert sizes == {"printer": "50", "sofa": "200"}
    # Written back, the entry keeps its counts.
    assert scene_entry(meta)["object_counts"] == {"chair": 3, "printer": 1, "sofa": 1}


def test_an_entry_keeps_every_instance_whatever_qa_fragment_ratio_says():
    chairs = [_aligned((0, 0, 0), (0.5, 0.5, 0.9)), _aligned((2, 0, 0), (2.5, 0.5, 0.9)), _aligned((4, 0, 0), (4.2, 0.1, 0.1))]
    entry = {"room_size": 20.0, "object_counts": {"chair": 3}, "object_bbox": {"chair": chairs}}
    strict = QAConfig(max_per_type=CFG.max_per_type, fragment_ratio=1 / 3)  # the 0.22 m chair is a fragment in a scan
    counting = [r for r in metadata_records(scene_from_entry("s", entry), strict, seed=0, video="s")
                if r["question_type"] == "object_counting"]  # fmt: skip
    assert [r["ground_truth"] for r in counting] == ["3"]


OBJECT_TYPES = ("object_counting", "object_size_estimation", "object_abs_distance", "object_rel_distance",
                "object_rel_direction_easy", "object_rel_direction_medium", "object_rel_direction_hard")  # fmt: skip
FACES = np.array([[0, 1, 3], [0, 3, 2], [4, 6, 7], [4, 7, 5], [0, 4, 5], [0, 5, 1],
                  [2, 3, 7], [2, 7, 6], [0, 2, 6], [0, 6, 4], [1, 5, 7], [1, 7, 3]])  # fmt: skip


def scan_from_entry(name: str, entry: dict):
    """A raw scan holding an entry's boxes: each instance is its box's 8 corners and 12 triangles,
    with the box itself as the scan's own annotation; a floor under everything."""
    from data_gen.qa.obb import Box3D
    from data_gen.scans.scan import AnnotatedBox, Instance
    from tests.data_gen.qa.qa_scenes import MeshBuilder, intrinsic, make_scan

    mesh = MeshBuilder()
    boxes = [(c, Box3D.from_meta_info(b)) for c, bs in sorted(entry["object_bbox"].items()) for b in bs]
    lo = np.min([b.bounds()[0] for _, b in boxes], 0) - 0.5
    hi = np.max([b.bounds()[1] for _, b in boxes], 0) + 0.5
    mesh.add([((lo[0], lo[1], lo[2] + 0.5), (hi[0] - lo[0], 0, 0), (0, hi[1] - lo[1], 0))], "floor", 0)
    for k, (category, box) in enumerate(boxes):
        start = mesh.count
        mesh.vertices.append(box.corners())
        mesh.faces.append(FACES + start)
        mesh.count += 8
        annotated = AnnotatedBox(np.asarray(box.center), np.asarray(box.axes), np.asarray(box.extents))
        mesh.instances.append(Instance(k + 1, category, np.arange(start, start + 8), annotated))
    k = intrinsic(32, 24, 60.0)
    return make_scan(name, mesh, np.eye(4)[None], [np.zeros((24, 32), np.float32)], k, dataset="scannet")


@pytest.mark.parametrize("scene", ["scene0353_00", "scene0307_02", "scene0354_00"])
def test_a_scan_with_an_entrys_boxes_asks_what_the_entry_asks(scene):
    """VSI-Bench's own entries (counts equal to their boxes): a raw scan carrying the same boxes asks
    the same object questions, word for word and answer for answer."""
    from data_gen.qa.metadata import scene_metadata

    entry = vsibench_fixtures.read("scannet_meta_info_val")[scene]
    from_entry = metadata_records(scene_from_entry(scene, entry), CFG, seed=3, video=scene)
    from_scan = metadata_records(scene_metadata(scan_from_entry(scene, entry), CFG), CFG, seed=3, video=scene)

    def asked(records):
        return [(r["question_type"], r["question"], r["options"], r["ground_truth"]) for r in records
                if r["question_type"] in OBJECT_TYPES]  # fmt: skip

    assert len(asked(from_entry)) > 100
    assert asked(from_scan) == asked(from_entry)
