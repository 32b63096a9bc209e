"""Evaluation inputs made by the tests: a run_dir with one synthetic scene and its QA split, and a
VSI-Bench-style folder (questions JSON + mp4 videos)."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from data_gen.qa.config import QAConfig
from data_gen.qa.scene_records import scene_records
from data_gen.scans.scannet import read_scan
from data_gen.schema import records_to_table
from data_gen.synthetic.scenes import synthesize_scans
from tests.pipelines.evaluate.video_fixtures import synthetic_frames, write_mp4


@pytest.fixture(scope="package")
def scene_run(tmp_path_factory) -> Path:
    """run_dir/scans/scene0000_00 (24 frames, 96x72) and run_dir/dataset/val/part-00000.parquet with
    its QA records, written directly (the Ray Data build is tested in tests/data_gen)."""
    run_dir = tmp_path_factory.mktemp("eval_run")
    (scene,) = synthesize_scans(run_dir, 1, seed=3, num_frames=24, width=96, height=72)
    records = scene_records(read_scan(scene), QAConfig(), 0)
    val = run_dir / "dataset" / "val"
    val.mkdir(parents=True)
    pq.write_table(records_to_table(records), val / "part-00000.parquet")
    return run_dir


VSI_ROWS = [
    {"id": 0, "dataset": "arkitscenes", "scene_name": "41069025", "question_type": "object_counting",
     "question": "How many chair(s) are in this room?", "options": None, "ground_truth": "4"},
    {"id": 1, "dataset": "scannet", "scene_name": "scene0011_00", "question_type": "object_rel_direction_easy",
     "question": "If I am standing by the sofa and facing the tv, is the lamp to the left or the right of the tv?",
     "options": ["A. left", "B. right"], "ground_truth": "B"},
    {"id": 2, "dataset": "scannet", "scene_name": "scene0011_00", "question_type": "room_size_estimation",
     "question": "What is the size of this room (in square meters)? \nIf multiple rooms are shown, estimate the size "
     "of the combined space.", "options": [], "ground_truth": "21.5"},
]  # fmt: skip


@pytest.fixture(scope="package")
def vsibench_dir(tmp_path_factory) -> Path:
    """`test.json` with VSI_ROWS and `{dataset}/{scene_name}.mp4` (40 frames of 64x48 each)."""
    root = tmp_path_factory.mktemp("vsibench")
    (root / "test.json").write_text(json.dumps(VSI_ROWS))
    for row in VSI_ROWS:
        video = root / row["dataset"] / f"{row['scene_name']}.mp4"
        if not video.exists():
            write_mp4(video, synthetic_frames(40))
    return root
