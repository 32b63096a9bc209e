"""Data and reference runs shared by the training tests (SFT, GRPO, node loss), once per session.

- `sft_data`: three synthetic scenes (24 frames of 112x112) through the real Ray Data build with 4
  frames per record; the train split is cut to 10 records (5 from each of its 2 scenes) so a
  4-sample global batch crosses an epoch boundary inside step 3.
- `grpo_data`: one synthetic scene and 10 hand-written records, multiple choice and numerical.
- `sft_zero2_one_go`, `grpo_one_go`: the stages run uninterrupted, the references that a stopped,
  restarted or node-lost run must equal bit for bit.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from tests.pipelines.grpo.helpers import grpo_overrides
from tests.pipelines.sft.helpers import SFT_STEPS, run_dir_with_data, tiny_overrides

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


TRAIN_PROMPTS = 10


@pytest.fixture(scope="session")
def grpo_data(tmp_path_factory) -> Path:
    """A folder with `scans/` (one synthetic scene, 12 frames of 112x112) and `dataset/train`:
    10 hand-written records, multiple choice and numerical, 4 frames each."""
    from data_gen.schema import records_to_table
    from data_gen.synthetic.scenes import synthesize_scans

    root = tmp_path_factory.mktemp("grpo_data")
    synthesize_scans(root, 1, seed=0, num_frames=12, width=112, height=112)
    records = []
    for i in range(TRAIN_PROMPTS):
        mc = i % 2 == 0
        records.append({
            "id": f"r{i:02d}", "dataset": "synthetic", "scene_name": "scene0000_00",
            "question_type": "object_rel_distance" if mc else "object_counting",
            "problem_type": "multiple_choice" if mc else "numerical",
            "question": f"Question {i}: which object is closest to the door?" if mc else f"Question {i}: how many chairs?",
            "options": ["A. chair", "B. table", "C. sofa", "D. lamp"] if mc else [],
            "ground_truth": "ABCD"[i % 4] if mc else str(i % 5 + 1), "rationale": "look",
            "video": "scene0000_00", "frame_indices": [i % 3, 4, 7, 11], "uniform_indices": [0, 4, 7, 11], "meta": "{}",
        })  # fmt: skip
    (root / "dataset" / "train").mkdir(parents=True)
    pq.write_table(records_to_table(records), root / "dataset" / "train" / "part-00000.parquet")
    return root


@pytest.fixture(scope="session")
def sft_zero2_one_go(sft_data, tmp_path_factory, ray_session) -> Path:
    """A run_dir whose SFT ran SFT_STEPS steps in one go, ZeRO-2, with W&B on."""
    from pipelines.config import build_config
    from pipelines.sft.stage import run

    run_dir = run_dir_with_data(sft_data, tmp_path_factory.mktemp("sft_zero2_one_go"))
    cfg = build_config(None, [*tiny_overrides(sft_data, run_dir), f"sft.max_steps={SFT_STEPS}", "train.zero_stage=2",
                              "train.wandb=true"])  # fmt: skip
    run(cfg, log=lambda _: None)
    return run_dir


@pytest.fixture(scope="session")
def grpo_one_go(grpo_data, tmp_path_factory, ray_session) -> Path:
    """A run_dir whose GRPO ran in one go (ZeRO-3), with W&B on."""
    from pipelines.config import build_config
    from pipelines.grpo.stage import run

    run_dir = tmp_path_factory.mktemp("grpo_one_go")
    (run_dir / "dataset").symlink_to(grpo_data / "dataset", target_is_directory=True)
    run(build_config(None, [*grpo_overrides(grpo_data, run_dir), "train.wandb=true"]), log=lambda _: None)
    return run_dir
