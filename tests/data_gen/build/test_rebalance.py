"""Scene splits and the question mix, on hand-made rows."""

from data_gen.build.config import PAPER_MIX
from data_gen.build.rebalance import select_mix, split_scenes


def test_split_is_by_scene_deterministic_and_has_val():
    scenes = [f"scene{i:04d}_00" for i in range(10)]
    a = split_scenes(scenes, 0.2, seed=0)
    assert a == split_scenes(list(reversed(scenes)), 0.2, seed=0)  # order of listing does not matter
    assert sorted(a.values()).count("val") == 2
    assert sorted(split_scenes(scenes[:2], 0.2, seed=0).values()) == ["train", "val"]  # at least one val scene
    assert set(split_scenes(scenes, 0.0, seed=0).values()) == {"train"}


def rows(counts):
    return [(f"{qtype}-{i}", qtype) for qtype, n in counts.items() for i in range(n)]


def test_mix_limited_by_scarcest_group():
    # 50/50 mix of counting and size: 10 counting rows allow 20 in all, so 10 size rows of 100.
    kept, report = select_mix(rows({"object_counting": 10, "object_size_estimation": 100}),
                              {"counting": 50, "size": 50}, 0, seed=0)
    assert len(kept) == 20
    assert sum(k.startswith("object_counting") for k in kept) == 10
    assert report["quota"] == {"counting": 10, "size": 10}


def test_mix_with_target_and_paper_shares():
    candidates = rows({"object_rel_direction_hard": 500, "object_abs_distance": 500, "object_size_estimation": 500,
                       "obj_appearance_order": 500, "object_counting": 500})
    kept, report = select_mix(candidates, PAPER_MIX, 1000, seed=3)
    assert report["quota"] == {"rel_direction": 316, "distance": 310, "size": 161, "appearance_order": 158,
                               "counting": 55}
    assert len(kept) == 1000
    assert kept == select_mix(candidates, PAPER_MIX, 1000, seed=3)[0]
    assert kept != select_mix(candidates, PAPER_MIX, 1000, seed=4)[0]


def test_missing_group_drops_out_and_is_reported():
    kept, report = select_mix(rows({"object_counting": 4, "object_size_estimation": 4}),
                              {"counting": 50, "size": 25, "appearance_order": 25}, 0, seed=0)
    assert report["missing_groups"] == ["appearance_order"]
    # renormalised to 2/3 counting, 1/3 size: 4 counting rows allow 6 in all
    assert report["quota"] == {"counting": 4, "size": 2}
    assert len(kept) == 6
