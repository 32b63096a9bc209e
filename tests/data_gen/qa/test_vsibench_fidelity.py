"""Fidelity to VSI-Bench on its own annotations: its 88 ScanNet scenes' meta_info through our
generators (every cap lifted), each of its questions looked up among ours (fixtures/vsibench)."""

from __future__ import annotations

import copy

import pytest

from data_gen.qa.config import QAConfig
from data_gen.qa.fidelity import (
    COMPARED_TYPES,
    answer_value,
    answers_agree,
    appearance_sets,
    count_agreement,
    measure,
    question_key,
    report,
)
from tests.data_gen.qa import vsibench_fixtures


@pytest.fixture(scope="module")
def meta_info() -> dict:
    return vsibench_fixtures.read("scannet_meta_info_val")


@pytest.fixture(scope="module")
def questions() -> list[dict]:
    return vsibench_fixtures.read("scannet_questions")


@pytest.fixture(scope="module")
def figures(meta_info, questions):
    return measure(meta_info, questions, QAConfig())


def test_development_set_coverage_and_agreement(figures):
    print("\n" + report(figures))
    for qtype, f in figures.types.items():
        for line in f.missed + f.differs:
            print(f"  {qtype}: {line}")
    total = figures.total()
    assert total.asked == 2071 - 390 - 64  # every question but appearance order and route planning
    assert figures.not_compared == {"obj_appearance_order": 390, "route_planning": 64}
    assert all(not f.unparsed for f in figures.types.values())  # every question was read, none dropped
    assert total.generated / total.asked >= 0.985  # the floor
    assert total.agreed / total.generated >= 0.998
    # What the development set shows today, exactly: every question generated, and one answer that
    # differs, where the benchmark's question contradicts its own object_counts and boxes (6 tables).
    assert [f.missed for f in figures.types.values()] == [[]] * len(COMPARED_TYPES)
    assert [d for f in figures.types.values() for d in f.differs] == [
        "scene0030_02: How many table(s) are in this room? -> ours 6.0, theirs 7.0"
    ]
    # Absolute distances: 258 the very same; 89 where theirs, from 5 cm-sampled points, is 0.1 m more.
    assert figures.types["object_abs_distance"].exact == 258


def test_counts_equal_the_benchmarks_object_counts(meta_info):
    compared, wrong, boxes_differ = count_agreement(meta_info, QAConfig())
    assert compared == sum(len(e["object_counts"]) for e in meta_info.values())
    assert wrong == []
    # Where counting by boxes would have answered otherwise (the file's own inconsistencies; every
    # printer's repeated box is one object already).
    assert boxes_differ == ["scene0474_04: chair object_counts 3, boxes 4", "scene0500_00: chair object_counts 38, boxes 39",
                            "scene0500_00: window object_counts 7, boxes 5"]  # fmt: skip


def test_every_appearance_order_set_can_be_formed(meta_info, questions):
    asked, unformable = appearance_sets(meta_info, questions)
    assert asked == 390
    assert unformable == []


def test_a_wrong_answer_is_counted(meta_info, questions, figures):
    """The measurement can fail: one benchmark answer changed is one disagreement more."""
    changed = copy.deepcopy(questions)
    row = next(q for q in changed if q["original_question_type"] == "object_size_estimation")
    row["solution"] = "<answer>9999</answer>"
    again = measure(meta_info, changed, QAConfig()).types["object_size_estimation"]
    assert again.agreed == figures.types["object_size_estimation"].agreed - 1
    assert any("theirs 9999" in d for d in again.differs)


def test_stricter_margins_miss_benchmark_questions(meta_info, questions, figures):
    """Our former margins on exact distances (0.15 m, 0.3 m) reject questions the benchmark asks."""
    strict = measure(meta_info, questions, QAConfig(rel_distance_margin=0.15, direction_min_distance=0.3)).types
    assert strict["object_rel_distance"].generated < figures.types["object_rel_distance"].generated
    assert strict["object_rel_direction_medium"].generated < figures.types["object_rel_direction_medium"].generated


def test_an_unknown_type_is_listed_not_dropped(meta_info):
    rows = [{"scene_name": "scene0251_00", "question_type": "object_rel_direction_v1", "question": "?",
             "options": [], "ground_truth": "A"}]  # fmt: skip
    figures = measure(meta_info, rows)
    assert figures.not_compared == {"object_rel_direction_v1": 1}
    assert figures.types["object_counting"].coverage is None  # nothing asked is not 100%


def test_question_keys_and_answers_by_hand():
    q = ("Measuring from the closest point of each object, which of these objects (table, trash bin, chair, door) "
         "is the closest to the bed?")  # fmt: skip
    assert question_key("object_rel_distance", q) == (
        "bed",
        frozenset({"table", "trash bin", "chair", "door"}),
    )
    hard = ("If I am standing by the backpack and facing the door, is the trash bin to my front-left, front-right, "
            "back-left, or back-right?\nThe directions refer to the quadrants of a Cartesian plane (if I am standing "
            "at the origin and facing along the positive y-axis).")  # fmt: skip
    assert question_key("object_rel_direction_hard", hard) == ("backpack", "door", "trash bin")
    easy = "If I am standing by the chair and facing the sofa, is the lamp to the left or the right of the table?"
    assert question_key("object_rel_direction_easy", easy) is None  # the two orienting objects must agree
    assert question_key("object_counting", "How many chairs are there?") is None
    assert answer_value(["A. left", "B. right"], "B") == "right"
    assert answer_value(None, "0.9") == 0.9
    assert answers_agree("object_abs_distance", 0.9, 1.0)  # theirs 0.1 m more: sampled points
    assert not answers_agree("object_abs_distance", 1.0, 0.9)  # theirs is never nearer than the boxes
    assert not answers_agree("object_abs_distance", 0.8, 1.0)
    assert answers_agree("object_size_estimation", 200.0, 200.0)
    assert not answers_agree("object_size_estimation", 199.0, 200.0)
    assert not answers_agree("object_counting", 3.0, 4.0)
    spaced = "How  many chair(s)\nare in this room?"
    assert question_key("object_counting", spaced) == ("chair",)  # whitespace aside
