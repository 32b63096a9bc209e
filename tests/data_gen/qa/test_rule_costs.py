"""What each rule rejects, counted by hand on the furnished room (tests/data_gen/qa/test_questions.py
works out every distance), and the counts always add up."""

from __future__ import annotations

from data_gen.qa.config import QAConfig
from data_gen.qa.rule_costs import RULED_TYPES, rule_costs, scene_rule_costs
from tests.data_gen.qa.qa_scenes import FURNITURE
from tests.data_gen.qa.test_questions import TRIANGLE, metadata


def test_rel_distance_costs_by_hand():
    # Unique anchors table, sofa, closet, lamp; each has exactly 4 other categories: 4 candidates.
    # The sofa's table 0.70 vs closet 0.80 is within 0.11 m; at 0.15 m the table's chair 0.57 vs
    # sofa 0.70 is too.
    costs = scene_rule_costs(metadata(FURNITURE), QAConfig(rel_distance_margin=0.11), seed=0)["object_rel_distance"]
    assert dict(costs) == {"candidates": 4, "asked": 3, "rel_distance_margin (two candidates)": 1}
    strict = scene_rule_costs(metadata(FURNITURE), QAConfig(rel_distance_margin=0.15), seed=0)[
        "object_rel_distance"
    ]
    assert dict(strict) == {"candidates": 4, "asked": 2, "rel_distance_margin (two candidates)": 2}


def test_direction_and_abs_distance_costs_by_hand():
    # bed-plant 0.12 m: every one of the 6 ordered triples has a pair below 0.2 m; abs distance
    # asks bed-tv (2.8 m) and tv-plant (2.8 m), not bed-plant (answered 0.1 < 0.2).
    close = dict(TRIANGLE, plant=[((0.22, -0.1, 0.0), (0.42, 0.1, 0.5))])
    costs = scene_rule_costs(metadata(close), QAConfig(), seed=0)
    for level in ("easy", "medium", "hard"):
        assert dict(costs[f"object_rel_direction_{level}"]) == {
            "candidates": 6,
            "asked": 0,
            "direction_min_distance": 6,
        }
    assert dict(costs["object_abs_distance"]) == {"candidates": 3, "asked": 2, "abs_distance_min": 1}
    assert dict(costs["object_rel_distance"]) == {"candidates": 0, "asked": 0}  # 3 categories, 4 needed


def test_costs_add_up_and_disabled_types_are_left_out():
    metas = [metadata(FURNITURE), metadata(TRIANGLE, area=50.0)]
    config = QAConfig(max_per_type={**QAConfig().max_per_type, "object_rel_direction_easy": 0})
    costs = rule_costs(metas, config, seed=1)
    assert "object_rel_direction_easy" not in costs
    assert set(costs) == set(RULED_TYPES) - {"object_rel_direction_easy"}
    for qtype, c in costs.items():
        assert c["candidates"] == c["asked"] + sum(
            v for k, v in c.items() if k not in ("candidates", "asked")
        ), qtype
