"""ScanNet's label table and the mapping of raw labels to the benchmark's categories."""

from __future__ import annotations

from pathlib import Path

import pytest

from data_gen.qa.config import QAConfig
from data_gen.qa.labels import VSIBENCH_VOCABULARY, LabelMapping, read_label_map
from data_gen.scans.label_table import FILE_NAME, find_label_table, read_label_table
from data_gen.scans.scan import ScanError

# Rows as ScanNet's scannetv2-labels.combined.tsv has them (17 tab-separated columns; the values
# of the first two rows are the reference's; the others follow the same pattern).
HEADER = ("id\traw_category\tcategory\tcount\tnyu40id\teigen13id\tnyuClass\tnyu40class\teigen13class\t"
          "ModelNet40\tModelNet10\tShapeNetCore55\tsynsetoffset\twnsynsetid\twnsynsetkey\tmpcat40\tmpcat40index")
ROWS = [
    "6\tcouch\tcouch\t502\t6\t9\tsofa\tsofa\tSofa\tsofa\tsofa\tsofa\t04256520\tn04256520\tsofa.n.01\tsofa\t10",
    "128\tshower walls\tshower wall\t109\t1\t12\twall\twall\tWall\t\t\t\t\tn04546855\twall.n.01\twall\t1",
    "1\twall\twall\t8277\t1\t12\twall\twall\tWall\t\t\t\t\tn04546855\twall.n.01\twall\t1",
    "2\tchair\tchair\t4646\t5\t4\tchair\tchair\tChair\tchair\tchair\tchair\t03001627\tn03001627\tchair.n.01\tchair\t3",
    "7\ttrash can\ttrash can\t1090\t39\t6\tgarbage bin\totherfurniture\tFurniture\t\t\t\t\tn02747177\tashcan.n.01\tobjects\t39",
    "83\ttrashcan\ttrash can\t51\t39\t6\tgarbage bin\totherfurniture\tFurniture\t\t\t\t\tn02747177\tashcan.n.01\tobjects\t39",
    "28\tkitchen cabinets\tkitchen cabinet\t289\t3\t6\tcabinet\tcabinet\tFurniture\t\t\t\t\tn02933112\tcabinet.n.01\tcabinet\t7",
    "3\tkitchen cabinet\tkitchen cabinet\t310\t3\t6\tcabinet\tcabinet\tFurniture\t\t\t\t\tn02933112\tcabinet.n.01\tcabinet\t7",
    "95\tcabinets\tcabinet\t79\t3\t6\tcabinet\tcabinet\tFurniture\t\t\t\t\tn02933112\tcabinet.n.01\tcabinet\t7",
    "5\tdoor\tdoor\t1483\t8\t12\tdoor\tdoor\tWall\t\t\t\t\tn03221720\tdoor.n.01\tdoor\t4",
    "26\tdoorframe\tdoorframe\t768\t8\t12\tdoor\tdoor\tWall\t\t\t\t\tn03221720\tdoor.n.01\tdoor\t4",
    "21\twindow\twindow\t708\t9\t13\twindow\twindow\tWindow\t\t\t\t\tn04587648\twindow.n.01\twindow\t9",
    "23\ttv\ttv\t254\t25\t11\ttelevision\ttelevision\tTV\ttv\t\t\t\tn03211117\tdisplay.n.06\ttv_monitor\t22",
    "22\tguitar case\tguitar case\t21\t40\t7\tguitar case\totherprop\tObjects\t\t\t\t\tn02992211\tcase.n.05\tobjects\t39",
    "9\tobject\tobject\t1313\t40\t7\tobject\totherprop\tObjects\t\t\t\t\tn00002684\tobject.n.01\tobjects\t39",
]


@pytest.fixture
def table_file(tmp_path: Path) -> Path:
    path = tmp_path / FILE_NAME
    path.write_text("\n".join([HEADER, *ROWS]) + "\n")
    return path


def test_reads_scannets_table(table_file):
    table = read_label_table(table_file)
    assert len(table) == len(ROWS)
    assert (table["couch"].category, table["couch"].nyu40class) == ("couch", "sofa")
    assert (table["shower walls"].category, table["shower walls"].nyu40class) == ("shower wall", "wall")
    assert table["trashcan"].category == "trash can"


def test_table_errors_name_the_file(tmp_path):
    with pytest.raises(ScanError, match="missing label table"):
        read_label_table(tmp_path / FILE_NAME)
    bad = tmp_path / "bad.tsv"
    bad.write_text("id\traw\n1\tcouch\n")
    with pytest.raises(ScanError, match=r"bad.tsv: label table header lacks column\(s\)"):
        read_label_table(bad)
    twice = tmp_path / "twice.tsv"
    twice.write_text("\n".join([HEADER, ROWS[0], ROWS[0].replace("\tsofa\tsofa\tSofa", "\tchair\tchair\tChair")]))
    with pytest.raises(ScanError, match="'couch' listed twice"):
        read_label_table(twice)


def test_table_is_found_next_to_or_above_the_scans(tmp_path, table_file):
    scans = tmp_path / "scans"
    scans.mkdir()
    assert find_label_table(scans) == table_file  # ScanNet's download: the tsv beside scans/
    assert find_label_table(tmp_path / "elsewhere" / "scans") is None


@pytest.mark.parametrize("raw, expected", [
    ("couch", "sofa"), ("Couch", "sofa"), ("trash can", "trash bin"), ("trashcan", "trash bin"),
    ("tv", "tv"), ("television", "tv"), ("mouse", "computer mouse"), ("door", "door"), ("window", "window"),
    ("office_chair", "chair"), ("chair", "chair"),
    ("shower walls", None), ("wall", None), ("doorframe", None), ("kitchen cabinets", None), ("guitar case", None),
])  # fmt: skip
def test_vsibench_vocabulary_with_the_table(tmp_path, table_file, raw, expected):
    labels = LabelMapping.load(QAConfig(), tmp_path / "scans")
    assert labels.category(raw, "scannet") == expected


def test_structure_is_decided_on_the_mapped_class(tmp_path, table_file):
    """`shower walls` was a 751 cm "object": its table class is wall. Without a table, the last word."""
    with_table = LabelMapping.load(QAConfig(vocabulary="open"), tmp_path / "scans")
    assert with_table.category("shower walls", "scannet") is None
    assert with_table.why_not("shower walls", "scannet") == "structural"
    without = LabelMapping.load(QAConfig(vocabulary="open"))
    assert without.category("shower walls", "scannet") is None
    assert without.category("wall clock", "scannet") == "clock"  # a clock on a wall is no wall


def test_open_vocabulary_merges_variants_and_drops_catch_alls(tmp_path, table_file):
    labels = LabelMapping.load(QAConfig(vocabulary="open"), tmp_path / "scans")
    cabinets = {labels.category(raw, "scannet") for raw in ("kitchen cabinets", "kitchen cabinet", "cabinets")}
    assert cabinets == {"cabinet"}  # three raw labels, one category: 3 cabinets can be counted
    assert labels.category("guitar case", "scannet") == "guitar case"
    assert labels.category("doorframe", "scannet") == "doorframe"
    assert labels.category("object", "scannet") is None
    assert labels.category("couch", "scannet") == "sofa"


def test_every_vocabulary_name_maps_to_itself():
    labels = LabelMapping.load(QAConfig())
    for name in sorted(VSIBENCH_VOCABULARY["scannet"]):
        assert labels.category(name, "scannet") == name
    assert labels.category("toilet", "scannet") is None and labels.category("toilet", "arkitscenes") == "toilet"


def test_an_edited_label_map_changes_categories_and_the_digest(tmp_path):
    custom = tmp_path / "map.yaml"
    custom.write_text("desk: desk\nsofa chair: sofa\n")
    default = LabelMapping.load(QAConfig(vocabulary="open"))
    mine = LabelMapping.load(QAConfig(vocabulary="open", label_map=str(custom)))
    assert default.category("desk", "scannet") == "table" and mine.category("desk", "scannet") == "desk"
    assert mine.category("sofa chair", "scannet") == "sofa"
    assert mine.digest() != default.digest()
    custom.write_text("desk: [not, a, string]\n")
    with pytest.raises(ScanError, match="map.yaml: the label map must be a YAML mapping"):
        read_label_map(custom)
