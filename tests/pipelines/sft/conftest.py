"""Fixtures for the SFT tests: one small built dataset shared by the whole session.

Three synthetic scenes (24 frames of 112x112) through the real Ray Data build with 4 frames per
record; the train split is cut to 10 records (5 from each of its 2 scenes) so a 4-sample global batch crosses an epoch
boundary inside step 3.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pyarrow.parquet as pq
import pytest

TRAIN_RECORDS = 10


@pytest.fixture(scope="session")
def sft_data(tmp_path_factory, ray_session) -> Path:
    """A folder holding `scans/` and `dataset/{train,val}` (train = 10 records)."""
    from data_gen.build.config import BuildConfig
    from data_gen.build.run import build_dataset
    from data_gen.qa.config import QAConfig
    from data_gen.schema import RECORD_SCHEMA
    from data_gen.synthetic.scenes import synthesize_scans

    root = tmp_path_factory.mktemp("sft_data")
    synthesize_scans(root, 3, seed=0, num_frames=24, width=112, height=112)
    qa = QAConfig(num_frames=4, num_candidates=24)
    build_dataset(root / "scans", root / "built", root / "cache", qa, BuildConfig(), seed=0, log=lambda _: None)
    built = pq.read_table(root / "built" / "train").sort_by("id")  # ids are hashes: a mix of question types
    scenes = built["video"].to_pylist()
    per_scene = TRAIN_RECORDS // len(set(scenes))
    rows = [i for i, v in enumerate(scenes) if scenes[: i + 1].count(v) <= per_scene]  # the first few of each scene
    train = built.take(rows)
    assert train.num_rows == TRAIN_RECORDS and len(set(train["video"].to_pylist())) == 2
    assert set(train["problem_type"].to_pylist()) == {"numerical", "multiple_choice"}
    (root / "dataset" / "train").mkdir(parents=True)
    pq.write_table(train.cast(RECORD_SCHEMA), root / "dataset" / "train" / "part-00000.parquet")
    shutil.copytree(root / "built" / "val", root / "dataset" / "val")
    return root
