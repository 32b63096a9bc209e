"""Whole nodes lost mid-build, mid-SFT and mid-GRPO on a simulated two-node cluster
(`tests/pipelines/node_loss_run.py`; a node's processes are SIGKILLed and a fresh node joins):
each stage finishes without anyone acting and ends where an uninterrupted run ends.

- build: the scenes finished before the loss are not redone (their cache files are the same
  files); the final shards equal a single-process build's, byte for byte.
- SFT (ZeRO-2): resumed from the checkpoint complete at the loss, within train.max_failures; the
  steps after it each logged once; final weights equal `sft_zero2_one_go`'s bit for bit.
- GRPO (ZeRO-3, a reward actor on the lost node): the same, against `grpo_one_go`; every step
  scored every completion once (none failed, none missing) and the rewards and samples equal the
  uninterrupted run's.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import torch
from safetensors.torch import load_file

from data_gen.build.run import build_dataset
from pipelines.config import build_config
from tests.pipelines.grpo.helpers import GRPO_STEPS
from tests.pipelines.node_loss_run import SAVE_STEP
from tests.pipelines.sft.helpers import SFT_STEPS, read_jsonl
from tests.wandb_records import runs as wandb_runs

pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def lost(tmp_path_factory, sft_data, grpo_data, sft_zero2_one_go, grpo_one_go) -> tuple[Path, dict]:
    """The node-loss run (its references computed first, on the test session's Ray)."""
    run_dir = tmp_path_factory.mktemp("node_loss") / "run"
    env = {**os.environ, "PYTHONPATH": str(REPO), "RAY_USAGE_STATS_ENABLED": "0"}
    env.pop("RAY_ADDRESS", None)
    proc = subprocess.run([sys.executable, "-m", "tests.pipelines.node_loss_run", str(run_dir), str(sft_data),
                           str(grpo_data)], cwd=REPO, env=env, capture_output=True, text=True, timeout=1200)  # fmt: skip
    faults = json.loads((run_dir / "faults.json").read_text()) if (run_dir / "faults.json").exists() else {}
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    for phase in ("build", "sft", "grpo"):  # the times and the work redone, for the note
        f = faults[phase]
        seen = f["at_fault"]
        redone = (f"{4 - len(seen['finished'])} scenes not finished at the loss" if phase == "build" else
                  f"steps logged at the loss {seen['steps']}, checkpoints {seen['checkpoints']}")  # fmt: skip
        print(f"{phase}: node lost at +{f['killed_at'] - f['started']:.1f} s ({redone}), progress again "
              f"{f['resumed_at'] - f['killed_at']:.1f} s later, done {f['ended_at'] - f['killed_at']:.1f} s after the loss")  # fmt: skip
    return run_dir, faults


def same_weights(a: Path, b: Path) -> bool:
    wa, wb = load_file(a / "model.safetensors"), load_file(b / "model.safetensors")
    return wa.keys() == wb.keys() and all(torch.equal(wa[k], wb[k]) for k in wa)


def test_build_redoes_only_the_scenes_in_flight_and_equals_a_single_process_build(lost, tmp_path):
    run_dir, faults = lost
    fault = faults["build"]
    assert any("process_scene" in title for title in fault["busy_on_lost_node"])  # a scene was running there
    cache = run_dir / "cache" / "dataset"
    finished = fault["at_fault"]["finished"]
    assert 1 <= len(finished) < 4
    # The scenes finished before the loss were not written again (same file), and every scene is there.
    assert {name: (cache / name).stat().st_ino for name in finished} == finished
    assert len(list(cache.glob("*.parquet"))) == 4

    cfg = build_config(None, [f"run_dir={run_dir}"])
    here = tmp_path / "sequential"
    build_dataset(run_dir / "scans", here, tmp_path / "cache", cfg.data.qa, cfg.data.build, cfg.seed,
                  log=lambda *_: None, sequential=True)  # fmt: skip
    for split in ("train", "val"):
        shards = sorted(p.name for p in (here / split).glob("*.parquet"))
        assert shards and shards == sorted(p.name for p in (run_dir / "dataset" / split).glob("*.parquet"))
        for name in shards:
            assert (run_dir / "dataset" / split / name).read_bytes() == (here / split / name).read_bytes(), name
        assert pq.read_table(run_dir / "dataset" / split).num_rows > 0


def resumed_checks(run_dir: Path, stage: str, fault: dict, steps: int) -> list[dict]:
    """What both training phases must show: the loss came after the checkpoint at SAVE_STEP; the
    run went on from it (the steps logged after the loss are the ones after SAVE_STEP), each step
    logged once; the ranks ended on two nodes, one of them the node that joined after the loss."""
    assert SAVE_STEP in fault["at_fault"]["checkpoints"]
    assert "ray::RayTrainWorker" in fault["busy_on_lost_node"]
    rows = read_jsonl(run_dir / stage / "metrics.jsonl")
    assert [r["step"] for r in rows] == list(range(1, steps + 1))
    assert [r["step"] for r in rows if r["time"] > fault["killed_at"]] == list(range(SAVE_STEP + 1, steps + 1))
    placement = json.loads((run_dir / stage / "workers.json").read_text())
    nodes = [p["node_id"] for p in placement]
    assert len(set(nodes)) == 2 and fault["new_node"] in nodes and fault["lost_node"] not in nodes
    return rows


def test_sft_resumes_from_the_last_checkpoint_and_ends_bit_identical(lost, sft_zero2_one_go):
    run_dir, faults = lost
    rows = resumed_checks(run_dir / "sft_run", "sft", faults["sft"], SFT_STEPS)
    reference = read_jsonl(sft_zero2_one_go / "sft" / "metrics.jsonl")
    assert [r["train/loss"] for r in rows] == [r["train/loss"] for r in reference]
    assert same_weights(run_dir / "sft_run" / "sft" / "final", sft_zero2_one_go / "sft" / "final")
    # The second attempt's W&B run says where it started (the first attempt's offline run is empty
    # when rank 0 died with the node before W&B flushed it); of the checkpoints, the newest is kept.
    names = {r["name"] for r in wandb_runs(run_dir / "sft_run" / "wandb")}
    assert f"sft_run-sft-from{SAVE_STEP}" in names and names <= {"sft_run-sft", f"sft_run-sft-from{SAVE_STEP}"}
    kept = sorted(p.name for p in (run_dir / "sft_run" / "sft" / "checkpoints").glob("step_*"))
    assert kept == [f"step_{SFT_STEPS:08d}"]


def test_grpo_resumes_with_every_completion_scored_once_and_ends_bit_identical(lost, grpo_one_go):
    run_dir, faults = lost
    fault = faults["grpo"]
    assert "ray::RewardActor" in fault["busy_on_lost_node"]
    rows = resumed_checks(run_dir / "grpo_run", "grpo", fault, GRPO_STEPS)
    per_step = 2 * 2 * 4  # workers x prompts x rollouts (tests/pipelines/grpo/helpers.py)
    assert all(r["reward/scored"] == per_step and r["reward/failed"] == 0 for r in rows)
    reference = read_jsonl(grpo_one_go / "grpo" / "metrics.jsonl")
    for key in ("reward/total", "reward/accuracy", "train/loss", "train/kl", "train/grad_norm"):
        assert [r[key] for r in rows] == [r[key] for r in reference], key
    samples = run_dir / "grpo_run" / "grpo" / "samples.jsonl"
    assert read_jsonl(samples) == read_jsonl(grpo_one_go / "grpo" / "samples.jsonl")
    assert same_weights(run_dir / "grpo_run" / "grpo" / "final", grpo_one_go / "grpo" / "final")
