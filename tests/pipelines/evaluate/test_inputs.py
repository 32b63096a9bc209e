"""Evaluation items from our dataset split and from a VSI-Bench file + mp4 folder."""

from __future__ import annotations

import json

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from data_gen.errors import InputError
from data_gen.qa.frame_selection import uniform_positions
from data_gen.scans.scannet import read_scan
from pipelines.config import build_config
from pipelines.evaluate.inputs import EvalInputError, dataset_items, load_frames, load_items, vsibench_items
from pipelines.train.data import DataError
from tests.pipelines.evaluate.conftest import VSI_ROWS
from tests.pipelines.evaluate.video_fixtures import synthetic_frames


def test_dataset_items_read_the_records_frames(scene_run):
    rec = pq.read_table(scene_run / "dataset" / "val").slice(0, 1).to_pylist()[0]
    scan = read_scan(scene_run / "scans" / rec["video"])
    for sampling, column in (("space_aware", "frame_indices"), ("uniform", "uniform_indices")):
        item = dataset_items(scene_run / "dataset", "val", scene_run / "scans", 16, sampling, limit=1)[0]
        assert item["id"] == rec["id"] and item["root"] == str(scene_run / "scans")
        frames = load_frames(item)
        assert len(frames) == 16
        assert all(np.array_equal(f, scan.frames.color(i)) for f, i in zip(frames, rec[column], strict=True))


def test_fewer_frames_than_the_record_holds(scene_run):
    rec = pq.read_table(scene_run / "dataset" / "val").slice(0, 1).to_pylist()[0]
    scan = read_scan(scene_run / "scans" / rec["video"])
    item = dataset_items(scene_run / "dataset", "val", scene_run / "scans", 4, "space_aware", limit=1)[0]
    want = [rec["frame_indices"][p] for p in uniform_positions(16, 4)]  # an evenly spread subset
    assert all(np.array_equal(f, scan.frames.color(i)) for f, i in zip(load_frames(item), want, strict=True))


def test_dataset_items_read_the_split_as_training_does(scene_run, tmp_path):
    """Through read_split: the same DataError (an InputError) as training, and `limit` reads only
    the shards it needs."""
    scans = scene_run / "scans"
    every = dataset_items(scene_run / "dataset", "val", scans, 16, "uniform")
    assert len(every) == pq.read_metadata(scene_run / "dataset" / "val" / "part-00000.parquet").num_rows > 2
    assert dataset_items(scene_run / "dataset", "val", scans, 16, "uniform", limit=2) == every[:2]
    assert set(every[0]) == {"id", "dataset", "scene_name", "question_type", "problem_type", "question",
                             "options", "ground_truth", "video", "frame_indices", "uniform_indices",
                             "root", "sampling", "num_frames"}  # fmt: skip
    with pytest.raises(DataError, match=r"test: no \*.parquet shards \(run `python -m jobs.build_dataset`"):
        dataset_items(scene_run / "dataset", "test", scans, 16, "uniform")
    assert issubclass(DataError, InputError)
    dataset = tmp_path / "dataset"
    (dataset / "val").mkdir(parents=True)
    shard = scene_run / "dataset" / "val" / "part-00000.parquet"
    (dataset / "val" / shard.name).write_bytes(shard.read_bytes())
    (dataset / "val" / "part-00001.parquet").write_bytes(b"not parquet")
    assert dataset_items(dataset, "val", scans, 16, "uniform", limit=1) == every[:1]  # shard 1 never read
    with pytest.raises(DataError, match="cannot read the shards as QA records"):
        dataset_items(dataset, "val", scans, 16, "uniform")


def test_vsibench_file_and_videos(vsibench_dir):
    cfg = build_config(None, ["eval.source=vsibench", f"eval.vsibench_file={vsibench_dir / 'test.json'}"])
    items = load_items(cfg)
    assert [it["id"] for it in items] == ["0", "1", "2"]
    assert [it["problem_type"] for it in items] == ["numerical", "multiple_choice", "numerical"]
    assert items[0]["options"] == [] and items[1]["options"] == ["A. left", "B. right"]
    assert items[1]["video"] == "scannet/scene0011_00.mp4" and items[1]["root"] == str(vsibench_dir)
    frames = load_frames(items[0])
    want = synthetic_frames(40)
    for f, i in zip(frames, uniform_positions(40, 16), strict=True):
        assert np.abs(f.astype(np.int16) - want[i]).mean() < 4.0


def test_vsibench_parquet_and_jsonl_read_the_same(vsibench_dir, tmp_path):
    rows = [{**r, "options": r["options"] or []} for r in VSI_ROWS]
    pq.write_table(pa.Table.from_pylist(rows), tmp_path / "test.parquet")
    (tmp_path / "test.jsonl").write_text("\n".join(json.dumps(r) for r in VSI_ROWS))
    by_format = [
        vsibench_items(tmp_path / name, vsibench_dir, 16, limit=2) for name in ("test.parquet", "test.jsonl")
    ]
    assert (
        by_format[0] == by_format[1] == vsibench_items(vsibench_dir / "test.json", vsibench_dir, 16, limit=2)
    )


def test_bad_vsibench_inputs_name_the_problem(vsibench_dir, tmp_path):
    with pytest.raises(EvalInputError, match="1 video.*missing.*41069025.mp4"):
        vsibench_items(vsibench_dir / "test.json", tmp_path, 16, limit=1)
    (tmp_path / "bad.json").write_text(json.dumps([{"id": 1, "question": "?"}]))
    with pytest.raises(EvalInputError, match="bad.json: row 0 lacks column"):
        vsibench_items(tmp_path / "bad.json", vsibench_dir, 16)
    with pytest.raises(ValueError, match="vsibench_file"):
        build_config(None, ["eval.source=vsibench"])
