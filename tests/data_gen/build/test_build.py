"""The Ray Data build end to end on small synthetic scans: format, determinism, resume, rejects."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from data_gen.build.config import BuildConfig
from data_gen.build.run import DatasetBuildError, build_dataset, list_scenes, process_scene, settings_hash
from data_gen.qa.config import QAConfig
from data_gen.qa.labels import LabelMapping
from data_gen.schema import RECORD_SCHEMA
from data_gen.synthetic.scenes import synthesize_scans

QA = QAConfig()


@pytest.fixture(scope="module")
def scans(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("synth")
    synthesize_scans(root, 4, seed=5, num_frames=48, width=128, height=96)
    return root / "scans"


def build(scans: Path, where: Path, **build_kw) -> dict:
    return build_dataset(scans, where / "dataset", where / "cache", QA, BuildConfig(**build_kw), seed=0, log=lambda _: None)


def shard_bytes(dataset: Path) -> dict[str, bytes]:
    return {str(p.relative_to(dataset)): p.read_bytes() for p in sorted(dataset.glob("*/*.parquet"))}


@pytest.fixture(scope="module")
def built(scans, tmp_path_factory, ray_session):
    where = tmp_path_factory.mktemp("built")
    card = build(scans, where)
    return where, card


def test_outputs_and_schema(built):
    where, card = built
    ds = where / "dataset"
    for name in ["dataset_card.json", "README.md", "stats.png", "rejects.jsonl"]:
        assert (ds / name).is_file(), name
    assert (ds / "stats.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    tables = {split: pq.read_table(ds / split) for split in ("train", "val")}
    for table in tables.values():
        assert table.schema.equals(RECORD_SCHEMA)  # real list columns, not pickled objects
    train_scenes = set(tables["train"]["scene_name"].to_pylist())
    val_scenes = set(tables["val"]["scene_name"].to_pylist())
    assert train_scenes and val_scenes and not train_scenes & val_scenes  # split by scene
    on_disk = json.loads((ds / "dataset_card.json").read_text())
    assert on_disk["counts"]["train"]["total"] == tables["train"].num_rows
    assert on_disk["counts"]["val"]["total"] == tables["val"].num_rows
    assert sum(on_disk["counts"]["train"]["by_type"].values()) == tables["train"].num_rows
    assert on_disk["rejects"] == []
    row = tables["train"].slice(0, 1).to_pylist()[0]
    assert len(row["frame_indices"]) == len(row["uniform_indices"]) == QA.num_frames


def test_card_counts_letters_and_categories_and_writes_meta_info(built):
    where, card = built
    ds = where / "dataset"
    for split in ("train", "val"):
        rows = pq.read_table(ds / split).to_pylist()
        letters: dict[str, dict[str, int]] = {}
        for r in rows:
            if r["problem_type"] == "multiple_choice":
                by = letters.setdefault(r["question_type"], {})
                by[r["ground_truth"]] = by.get(r["ground_truth"], 0) + 1
        assert card["counts"][split]["answer_letters"] == {t: dict(sorted(v.items())) for t, v in sorted(letters.items())}
        for qt, by in letters.items():
            if qt != "object_rel_direction_easy":  # fixed "A. left, B. right"; balanced per scene only
                assert max(by.values()) - min(by.values()) <= 1 or len(by) == 1, (split, qt, by)
    meta_info = json.loads((ds / "meta_info.json").read_text())
    assert set(meta_info) == set(card["split_of_scene"])
    for name, entry in meta_info.items():
        assert {"room_size", "room_center", "object_counts", "object_bbox"} <= set(entry)
        split = card["split_of_scene"][name]
        for category, n in entry["object_counts"].items():
            assert len(entry["object_bbox"][category]) == n
            assert card["categories"][split][category]["objects"] >= n


def test_card_says_what_each_rule_rejected(built):
    """Over the built scenes, every candidate of each ruled type (caps lifted) is either asked or
    rejected by one named rule; the README shows the same table."""
    where, card = built
    costs = card["rule_costs"]
    assert set(costs) == {"object_abs_distance", "object_rel_distance", "object_rel_direction_easy",
                          "object_rel_direction_medium", "object_rel_direction_hard", "obj_appearance_order"}  # fmt: skip
    for qtype, c in costs.items():
        rules = {k: v for k, v in c.items() if k not in ("candidates", "asked")}
        assert c["candidates"] == c["asked"] + sum(rules.values()), qtype
        assert set(rules) <= {"abs_distance_min", "rel_distance_margin (nearest candidate)",
                              "rel_distance_margin (two candidates)", "rel_distance_margin_large_room (two candidates)",
                              "direction_min_distance", "direction_max_distance", "direction_angle_margin",
                              "direction_max_off_corners", "back bin (easy asks left or right)",
                              "appearance_min_gap_s"}, qtype  # fmt: skip
    # The build asks at most what passed the rules (its caps take some).
    for qtype, c in costs.items():
        written = card["counts"]["train"]["by_type"].get(qtype, 0) + card["counts"]["val"]["by_type"].get(qtype, 0)
        assert written <= c["asked"], qtype
    assert costs["object_rel_direction_hard"]["direction_angle_margin"] > 0  # the synthetic rooms hit it
    readme = (where / "dataset" / "README.md").read_text()
    c = costs["object_rel_direction_hard"]
    assert f"| object_rel_direction_hard | {c['candidates']} | {c['asked']} | " in readme


def test_build_from_meta_info_alone(built, tmp_path):
    """data.meta_info: the build's own meta_info.json in, questions out without frames."""
    where, _ = built
    card = build_dataset(None, tmp_path / "dataset", tmp_path / "cache", QA, BuildConfig(), seed=0,
                         log=lambda _: None, meta_info=where / "dataset" / "meta_info.json")  # fmt: skip
    rows = [r for split in ("train", "val") for r in pq.read_table(tmp_path / "dataset" / split).to_pylist()]
    assert rows and card["rejects"] == []
    assert all(r["frame_indices"] == [] and r["uniform_indices"] == [] for r in rows)
    assert "obj_appearance_order" not in {r["question_type"] for r in rows}
    from_scans = {r["id"]: r for split in ("train", "val") for r in pq.read_table(where / "dataset" / split).to_pylist()}
    shared = [r for r in rows if r["id"] in from_scans]
    assert shared  # the same questions, where both selections took them
    for r in shared:
        assert (r["question"], r["ground_truth"]) == (from_scans[r["id"]]["question"], from_scans[r["id"]]["ground_truth"]) or r["problem_type"] == "multiple_choice"


def test_loads_with_hf_datasets(built):
    import datasets

    where, card = built
    dsd = datasets.load_dataset("parquet", data_dir=str(where / "dataset"))
    assert dsd["train"].num_rows == card["counts"]["train"]["total"]
    assert dsd["validation"].num_rows == card["counts"]["val"]["total"]


def test_rebuild_is_byte_identical(built, scans, tmp_path):
    where, _ = built
    build(scans, tmp_path)  # fresh cache, fresh output
    assert shard_bytes(tmp_path / "dataset") == shard_bytes(where / "dataset")


def test_interrupted_build_redoes_no_finished_scene(built, scans, tmp_path):
    where, _ = built
    cache = tmp_path / "cache"
    # A build killed after two scenes: their cache entries exist, plus a half-written temp file.
    for scene in list_scenes(scans)[:2]:
        labels = LabelMapping.load(QA, scans)
        process_scene({"scene_dir": str(scene)}, cache_dir=str(cache), qa=QA, labels=labels, seed=0,
                      settings=settings_hash(QA, 0, labels))
    finished = {p: p.stat().st_mtime_ns for p in cache.glob("*.parquet")}
    assert len(finished) == 2
    (cache / ".junk.parquet.tmp123").write_bytes(b"half")
    build(scans, tmp_path)
    assert {p: p.stat().st_mtime_ns for p in finished} == finished  # not recomputed
    assert len(list(cache.glob("*.parquet"))) == 4
    assert shard_bytes(tmp_path / "dataset") == shard_bytes(where / "dataset")


def test_corrupt_scene_is_rejected_with_reason(scans, tmp_path, ray_session):
    bad_scans = tmp_path / "scans"
    shutil.copytree(scans, bad_scans)
    victim = list_scenes(bad_scans)[1]
    agg = victim / f"{victim.name}.aggregation.json"
    agg.write_text(agg.read_text()[:50])  # truncated JSON
    card = build(bad_scans, tmp_path, max_reject_fraction=0.5)
    assert [r["scene"] for r in card["rejects"]] == [victim.name]
    rejects = [json.loads(line) for line in (tmp_path / "dataset" / "rejects.jsonl").read_text().splitlines()]
    assert rejects[0]["scene"] == victim.name and "aggregation.json" in rejects[0]["reason"]
    scenes = set(pq.read_table(tmp_path / "dataset" / "train")["scene_name"].to_pylist())
    assert victim.name not in scenes

    with pytest.raises(DatasetBuildError, match=victim.name):
        build(bad_scans, tmp_path / "strict", max_reject_fraction=0.1)
    assert not (tmp_path / "strict" / "dataset").exists()  # nothing half-written


def test_sequential_build_is_byte_identical(built, scans, tmp_path):
    where, card = built
    seq = build_dataset(scans, tmp_path / "dataset", tmp_path / "cache", QA, BuildConfig(), seed=0,
                        log=lambda _: None, sequential=True)  # fmt: skip
    assert shard_bytes(tmp_path / "dataset") == shard_bytes(where / "dataset")
    assert seq["counts"] == card["counts"]


def test_scene_content_hash_is_sha256_of_sorted_paths_and_bytes(scans, tmp_path):
    # The cache key's content hash: every file under the scene (symlinked folders not followed).
    import hashlib

    from data_gen.build.scene_cache import scene_content_hash

    scene = tmp_path / "scene"
    shutil.copytree(list_scenes(scans)[0], scene)
    (scene / "extra" / "deeper").mkdir(parents=True)
    (scene / "extra" / "deeper" / "b.bin").write_bytes(b"\0" * 3_000_000)  # more than one read
    (scene / "extra" / "a.txt").write_text("a")
    (scene / "linked").symlink_to(scene / "extra", target_is_directory=True)
    h = hashlib.sha256()
    for path in sorted(p for p in scene.rglob("*") if p.is_file()):
        h.update(str(path.relative_to(scene)).encode() + b"\0" + path.read_bytes() + b"\0")
    assert scene_content_hash(scene) == h.hexdigest()
    before = scene_content_hash(scene)
    (scene / "extra" / "a.txt").write_text("b")
    assert scene_content_hash(scene) != before


def test_every_type_from_three_layouts_when_the_mix_gives_it_a_share(tmp_path, ray_session):
    """One scans folder with a scene in each layout (ScanNet, ARKitScenes, ScanNet++) builds into one
    dataset. With data.build.mix.route_planning and camera_motion set, it holds all ten VSI-Bench
    types and the five camera-motion types; every record names its source in `dataset` and asks only
    about that source's VSI-Bench categories. Each camera-motion record shows its uniform frames, and
    a displacement answer is the distance between the camera centres of the two frames it names, read
    from the scan's own pose files."""
    from data_gen.build.config import PAPER_MIX
    from data_gen.qa.labels import VSIBENCH_VOCABULARY
    from data_gen.schema import CAMERA_MOTION_TYPES, VSI_BENCH_TYPES

    for k, layout in enumerate(("scannet", "arkitscenes", "scannetpp")):  # long enough for appearance order
        synthesize_scans(tmp_path, 1, seed=5, num_frames=144, width=96, height=72, layout=layout, first_index=k)
    scans = tmp_path / "scans"
    card = build(scans, tmp_path, mix={**PAPER_MIX, "route_planning": 5.0, "camera_motion": 15.0})
    assert card["rejects"] == []
    rows = [r for split in ("train", "val") for r in pq.read_table(tmp_path / "dataset" / split).to_pylist()]
    assert {r["question_type"] for r in rows} == {*VSI_BENCH_TYPES, *CAMERA_MOTION_TYPES}
    assert {(r["dataset"], r["scene_name"]) for r in rows} == {
        ("synthetic", "scene0000_00"), ("arkitscenes", "41000001"), ("scannetpp", "0000000002")}  # fmt: skip
    meta_info = json.loads((tmp_path / "dataset" / "meta_info.json").read_text())
    for scene, source in (("41000001", "arkitscenes"), ("0000000002", "scannetpp")):
        assert set(meta_info[scene]["object_counts"]) <= VSIBENCH_VOCABULARY[source], scene
    camera = [r for r in rows if r["question_type"] in CAMERA_MOTION_TYPES]
    assert 0 < card["counts"]["train"]["mix_percent"]["camera_motion"]
    for r in camera:
        assert r["frame_indices"] == r["uniform_indices"] and len(r["frame_indices"]) == QA.num_frames
    r = next(r for r in camera if r["question_type"] == "camera_displacement" and r["dataset"] == "synthetic")
    i, j = json.loads(r["meta"])["numbers"]
    assert f"between frame {i} and frame {j}," in r["question"]
    pose_dir = scans / r["scene_name"] / "pose"
    a, b = (np.loadtxt(pose_dir / f"{r['frame_indices'][k - 1]}.txt")[:3, 3] for k in (i, j))
    assert r["ground_truth"] == f"{np.linalg.norm(b - a):.1f}"
    assert "## Camera-motion questions" in (tmp_path / "dataset" / "README.md").read_text()
    for r in rows:  # after the letters were balanced, a listing question still lists its options in order
        if r["question_type"] in ("object_rel_distance", "camera_obj_rel_distance"):
            assert "(" + ", ".join(o[3:] for o in r["options"]) + ")" in r["question"]
        if r["question_type"] == "obj_obj_rel_position":
            assert r["options"] == ["A. left", "B. right"]
