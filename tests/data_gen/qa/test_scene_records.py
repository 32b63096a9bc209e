"""scene_records end to end: schema, ids, frames, determinism and rejected scenes."""

from __future__ import annotations

import io
import json
from collections import Counter

import numpy as np
import pyarrow.parquet as pq
import pytest

from data_gen.qa.config import QAConfig
from data_gen.qa.frame_selection import uniform_indices
from data_gen.qa.labels import LabelMapping
from data_gen.qa.scene_records import scene_qa, scene_records
from data_gen.scans.scan import FrameError, ScanError
from data_gen.schema import (
    CAMERA_MOTION_TYPES,
    COLUMNS,
    RECORD_SCHEMA,
    record_id,
    records_to_table,
    validate_record,
)
from tests.data_gen.qa.qa_scenes import furnished_room, turning_scan

CFG = QAConfig()


@pytest.fixture(scope="module")
def records() -> list[dict]:
    return scene_records(furnished_room(), CFG, seed=7)


def test_records_match_the_schema(records):
    assert records
    for r in records:
        assert tuple(r) == COLUMNS
        validate_record(r)
        assert (r["dataset"], r["scene_name"], r["video"]) == ("synthetic", "scene0700_00", "scene0700_00")
        assert isinstance(json.loads(r["meta"])["params"], dict)
    table = records_to_table(records)
    assert table.schema == RECORD_SCHEMA
    assert table.num_rows == len(records)


def test_ids_are_unique_and_stable(records):
    ids = [r["id"] for r in records]
    assert len(set(ids)) == len(ids)
    r = next(r for r in records if r["question_type"] == "object_counting")
    assert r["id"] == record_id("scene0700_00", "object_counting", {"category": "chair"})
    assert len(r["id"]) == 16 and int(r["id"], 16) >= 0
    assert record_id("a", "b", {"x": 1, "y": 2}) == record_id("a", "b", {"y": 2, "x": 1})


def test_hand_computed_answers_survive_the_pipeline(records):
    by_type = Counter(r["question_type"] for r in records)
    assert by_type["object_counting"] == 1 and by_type["room_size_estimation"] == 1
    assert by_type["object_size_estimation"] == 4 and by_type["object_abs_distance"] == 6
    # Anchors closet, lamp and table (test_questions works them out); the sofa's table 0.70 m vs
    # closet 0.80 m sits on the 0.10 m margin itself, so the mesh boxes' last bits decide it.
    anchors = {json.loads(r["meta"])["anchor_category"] for r in records if r["question_type"] == "object_rel_distance"}
    assert anchors - {"sofa"} == {"closet", "lamp", "table"}
    gt = {r["question"]: r["ground_truth"] for r in records}
    assert gt["How many chair(s) are in this room?"] == "2"
    room = next(r for r in records if r["question_type"] == "room_size_estimation")
    assert float(room["ground_truth"]) == pytest.approx(20.0, rel=0.02)


def test_frame_indices(records):
    scan = furnished_room()
    ids = scan.frames.ids  # 24 usable frames, all of them candidates
    frames, uniform = records[0]["frame_indices"], records[0]["uniform_indices"]
    assert len(frames) == len(uniform) == 16
    assert frames == sorted(set(frames)) and set(frames) <= set(ids)
    assert uniform == uniform_indices(ids, 16)
    for r in records:  # camera-motion questions number the frames shown: their uniform ones, in both
        shown = uniform if r["question_type"] in CAMERA_MOTION_TYPES else frames
        assert r["frame_indices"] == shown and r["uniform_indices"] == uniform, r["question_type"]


def test_same_inputs_same_bytes_and_the_seed_matters():
    a = scene_records(furnished_room(), CFG, seed=7)
    b = scene_records(furnished_room(), CFG, seed=7)
    assert a == b

    def parquet_bytes(recs: list[dict]) -> bytes:
        buf = io.BytesIO()
        pq.write_table(records_to_table(recs), buf)
        return buf.getvalue()

    assert parquet_bytes(a) == parquet_bytes(b)
    c = scene_records(furnished_room(), CFG, seed=8)
    assert [r["options"] for r in a] != [r["options"] for r in c]


def test_caps_and_unpadded_frames():
    cfg = QAConfig(max_per_type={t: 1 for t in CFG.max_per_type}, pad_frames=False, num_frames=4)
    recs = scene_records(furnished_room(), cfg, seed=0)
    assert max(Counter(r["question_type"] for r in recs).values()) == 1
    n = len(recs[0]["frame_indices"])
    assert 1 <= n <= 4 and len(recs[0]["uniform_indices"]) == n


def test_appearance_order_question_from_a_known_trajectory():
    recs = scene_records(turning_scan(), CFG, seed=0)
    (q,) = [r for r in recs if r["question_type"] == "obj_appearance_order"]
    answer = dict(o.split(". ", 1) for o in q["options"])[q["ground_truth"]]
    assert answer == "chair, table, sofa, lamp"
    assert json.loads(q["meta"])["first_time_s"] == {"chair": 0.0, "table": 3.0, "sofa": 6.0, "lamp": 9.0}


def test_scene_without_depth_is_rejected():
    scan = furnished_room(num_frames=4)
    for d in scan.frames.depths:
        d[:] = 0.0
    with pytest.raises(ScanError, match="depth"):
        scene_records(scan, CFG, seed=0)


def test_scene_without_objects_is_rejected():
    with pytest.raises(ScanError, match="no annotated object"):
        scene_records(furnished_room(num_frames=2, furniture={}), CFG, seed=0)


def test_validate_record_names_the_problem(records):
    bad = dict(records[0], ground_truth="Z")
    if bad["problem_type"] == "numerical":
        bad["ground_truth"] = "many"
    with pytest.raises(ValueError, match="ground_truth"):
        validate_record(bad)
    with pytest.raises(ValueError, match="columns"):
        validate_record({k: v for k, v in records[0].items() if k != "meta"})
    mc = next(r for r in records if r["problem_type"] == "multiple_choice")
    with pytest.raises(ValueError, match="option"):
        validate_record(dict(mc, options=["A. x", "C. y"]))
    with pytest.raises(ValueError, match="frame_indices"):
        validate_record(dict(mc, frame_indices=[np.int64(3)]))


def test_generated_scene_end_to_end():
    synthetic = pytest.importorskip("data_gen.synthetic.scenes")
    scan, objects = synthetic.generate_scene("scene0001_00", 1, num_frames=48, width=160, height=120)
    recs = scene_records(scan, CFG, seed=0)
    assert recs and all(validate_record(r) is None for r in recs)
    _, room, _ = synthetic.scene_layout(1)
    room_rec = next(r for r in recs if r["question_type"] == "room_size_estimation")
    assert float(room_rec["ground_truth"]) == pytest.approx(room.area, rel=0.02)
    labels = LabelMapping.load(CFG)
    counts = Counter(labels.category(o.label, scan.dataset) for o in objects)
    for r in recs:
        if r["question_type"] == "object_counting":
            category = json.loads(r["meta"])["params"]["category"]
            assert int(r["ground_truth"]) == counts[category]


def test_each_depth_frame_is_decoded_once(monkeypatch):
    # Appearance times and frame selection share the frames that are both visibility steps and
    # candidates: one decode each, and the same records as reading them twice.
    import data_gen.qa.scene_records as sr

    scan = furnished_room(num_frames=48)  # at 2 fps every frame is a visibility step and a candidate
    reads: Counter = Counter()
    depth = scan.frames.depth

    def counting_depth(i: int) -> np.ndarray:
        reads[i] += 1
        return depth(i)

    monkeypatch.setattr(scan.frames, "depth", counting_depth)
    shared = scene_records(scan, CFG, seed=3)
    assert reads and max(reads.values()) == 1
    assert scan.frames.depths[0].flags.writeable  # the source arrays are left alone
    monkeypatch.setattr(sr, "_share_depth", lambda scan, config: scan)
    reads.clear()
    assert scene_records(scan, CFG, seed=3) == shared
    assert max(reads.values()) == 2


class _CorruptDepth:
    """The frames of a scan, except that decoding frame `bad`'s depth fails as a corrupt PNG does."""

    def __init__(self, frames, bad: int):
        self._frames, self.bad = frames, bad

    ids = property(lambda self: self._frames.ids)
    skipped = property(lambda self: self._frames.skipped)

    def pose(self, i):
        return self._frames.pose(i)

    def color(self, i):
        return self._frames.color(i)

    def depth(self, i):
        if i == self.bad:
            raise FrameError(i, f"depth/{i}.png", "corrupt PNG data")
        return self._frames.depth(i)

    def __len__(self):
        return len(self._frames)


def test_an_undecodable_frame_is_skipped_and_counted_not_fatal():
    import dataclasses

    scan = furnished_room(num_frames=24)
    clean = scene_records(scan, CFG, seed=0)
    bad = clean[0]["frame_indices"][0]  # a frame the selection wants
    broken = dataclasses.replace(scan, frames=_CorruptDepth(scan.frames, bad))
    records, _ = scene_qa(broken, CFG, seed=0)
    assert records and all(bad not in r["frame_indices"] for r in records)
    strict = dataclasses.replace(broken, max_bad_frame_fraction=0.0)
    with pytest.raises(ScanError, match="max_bad_frame_fraction=0"):
        scene_qa(strict, CFG, seed=0)
