"""Raw ScanNet-style labels of the synthetic scenes and the label table written next to them: every
label the generator writes maps, through the QA label mapping, to the category its object is."""

from __future__ import annotations

from collections import Counter

import numpy as np

from data_gen.qa.config import QAConfig
from data_gen.qa.labels import VSIBENCH_VOCABULARY, LabelMapping
from data_gen.scans.label_table import COLUMNS, FILE_NAME, read_label_table, write_label_table
from data_gen.synthetic import scenes
from data_gen.synthetic.labels import (
    NYU40,
    QUESTION_VOCABULARY,
    RAW_LABELS,
    label_table_rows,
    question_category,
)
from data_gen.synthetic.scenes import SCENE_TYPES, run_scene_type, scene_layout, scene_seed, synthesize_scans

STRUCTURE = ("wall", "shower walls", "floor", "ceiling")


def test_question_vocabulary_is_vsibench_scannet():
    assert QUESTION_VOCABULARY == VSIBENCH_VOCABULARY["scannet"] and len(QUESTION_VOCABULARY) == 33


def test_demo_scenes_show_every_vsibench_category():
    # The default demo (jobs/configs/tiny.yaml): 6 scenes, seed 0; the scene types take turns.
    layouts = [scene_layout(scene_seed(0, i), run_scene_type(0, i)) for i in range(6)]
    assert {scene_type for scene_type, _, _ in layouts} == set(SCENE_TYPES)
    seen = {question_category(o.label) for _, _, objects in layouts for o in objects} - {None}
    assert seen == QUESTION_VOCABULARY, sorted(QUESTION_VOCABULARY - seen)


def test_every_raw_label_maps_to_its_category(tmp_path):
    synthesize_scans(tmp_path, 1, seed=0, num_frames=2, width=32, height=24)
    with_table = LabelMapping.load(QAConfig(), tmp_path / "scans")  # finds the table the scans came with
    assert with_table.table is not None
    without_table = LabelMapping.load(QAConfig())
    for label, variants in RAW_LABELS.items():
        for raw, _ in variants:
            for mapping in (with_table, without_table):
                assert mapping.category(raw, "synthetic") == question_category(label), (label, raw)
    assert question_category("couch") is None and with_table.category("couch", "synthetic") == "sofa"
    assert with_table.category("desk", "synthetic") == "table"  # the project's label map folds desks
    assert with_table.category("kitchen cabinets", "synthetic") is None  # a cabinet: not asked about
    for raw in STRUCTURE:
        assert with_table.why_not(raw, "synthetic") == "structural"


def test_label_table_has_scannet_columns_and_rows(tmp_path):
    path = tmp_path / FILE_NAME
    write_label_table(path, label_table_rows())
    header, *lines = path.read_text(encoding="utf-8").splitlines()
    assert header.split("\t") == list(COLUMNS)
    table = read_label_table(path)
    emitted = {raw for variants in RAW_LABELS.values() for raw, _ in variants} | set(STRUCTURE)
    assert set(table) == emitted and len(lines) == len(emitted)  # one row per label the scans can carry
    # As in ScanNet's own table:
    assert (table["couch"].category, table["couch"].nyu40class) == ("couch", "sofa")
    assert (table["kitchen cabinets"].category, table["kitchen cabinets"].nyu40class) == ("kitchen cabinet", "cabinet")
    assert (table["trash can"].category, table["trash can"].nyu40class) == ("trash can", "otherfurniture")
    assert (table["tv"].nyu40class, table["office chair"].nyu40class, table["doors"].category) == \
        ("television", "chair", "door")
    assert {table[raw].nyu40class for raw in STRUCTURE} == {"wall", "floor", "ceiling"}
    for line in lines:  # ScanNet's tools read nyu40id as an int
        row = dict(zip(COLUMNS, line.split("\t"), strict=True))
        assert NYU40[int(row["nyu40id"]) - 1] == row["nyu40class"]


def test_raw_labels_vary_and_leave_the_geometry_alone(monkeypatch):
    layouts = [scene_layout(scene_seed(3, i), SCENE_TYPES[i % len(SCENE_TYPES)])[2] for i in range(15)]
    raw = Counter((o.label, o.raw_label) for layout in layouts for o in layout)
    assert {r for label, r in raw if label == "chair"} >= {"chair", "office chair"}
    assert {r for label, r in raw if label == "trash bin"} >= {"trash can", "recycling bin"}
    assert all(r in dict(RAW_LABELS[label]) for label, r in raw)
    # The labels come from streams of their own: the same seed without them, the same geometry.
    monkeypatch.setattr(scenes, "raw_label", lambda label, seed, object_id: label)
    again = [scene_layout(scene_seed(3, i), SCENE_TYPES[i % len(SCENE_TYPES)])[2] for i in range(15)]
    for a, b in zip(layouts, again, strict=True):
        assert [(o.label, o.yaw, o.support) for o in a] == [(o.label, o.yaw, o.support) for o in b]
        np.testing.assert_array_equal([o.center for o in a], [o.center for o in b])
        np.testing.assert_array_equal([o.size for o in a], [o.size for o in b])
