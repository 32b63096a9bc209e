"""A preemption notice (SIGTERM to the job, as a spot reclaim or `ray job stop` sends it): SFT and
GRPO write a checkpoint at the next step boundary and exit 0 saying where they stopped; running the
same command again resumes there and trains on, every step trained exactly once."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from pipelines import dataset, scans
from pipelines.config import build_config
from tests.e2e.test_log_level import NOISE

pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parents[2]
DATA = ["data.synthetic.num_scenes=3", "data.synthetic.num_frames=24", "data.synthetic.width=96",
        "data.synthetic.height=72"]  # fmt: skip
STAGES = {
    "sft": ["sft.max_steps=60", "sft.save_steps=0", "sft.num_frames=4", "sft.global_batch_size=2"],
    "grpo": ["grpo.max_steps=60", "grpo.save_steps=0", "grpo.num_frames=4", "grpo.prompts_per_step=1",
             "grpo.num_generations=2", "grpo.max_completion_length=8", "grpo.split=train"],
}  # fmt: skip
# Enough steps that a SIGTERM sent once the first step is logged lands well before the last one:
# a tiny GRPO step takes ~0.1 s on an idle 2-core box, and 10 steps could finish before the driver
# acted on the signal (the run then ends normally, as the stage allows).



def start(stage: str, run_dir: Path, *extra: str) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(REPO), "RAY_USAGE_STATS_ENABLED": "0", "WANDB_MODE": "offline"}
    env.pop("RAY_ADDRESS", None)
    cmd = [sys.executable, "-m", f"jobs.{stage}", "--config", "jobs/configs/tiny.yaml", f"run_dir={run_dir}",
           "train.wandb=false", *DATA, *STAGES[stage], *extra]  # fmt: skip
    return subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def steps_logged(run_dir: Path, stage: str) -> list[int]:
    path = run_dir / stage / "metrics.jsonl"
    if not path.exists():
        return []
    return [json.loads(line)["step"] for line in path.read_text().splitlines() if line.strip()]


@pytest.fixture(scope="module")
def built(tmp_path_factory, ray_session) -> Path:
    run_dir = tmp_path_factory.mktemp("preempt") / "run"
    cfg = build_config((REPO / "jobs/configs/tiny.yaml").read_text(), [f"run_dir={run_dir}", *DATA])
    scans.run(cfg, log=lambda *_: None)
    dataset.run(cfg, log=lambda *_: None)
    return run_dir


@pytest.mark.parametrize("stage", ["sft", "grpo"])
def test_sigterm_checkpoints_at_the_next_step_and_a_rerun_resumes(built, stage):
    run_dir = built
    job = start(stage, run_dir)
    deadline = time.time() + 600
    while not steps_logged(run_dir, stage) and job.poll() is None and time.time() < deadline:
        time.sleep(0.2)
    assert job.poll() is None, job.stdout.read()
    job.send_signal(signal.SIGTERM)
    out, _ = job.communicate(timeout=600)
    assert job.returncode == 0, out[-3000:]
    # log_level=quiet (the default) on a fresh local instance: none of Ray's per-run notices
    # (tests/e2e/test_log_level.py shows them with verbose).
    for noise in NOISE:
        assert noise not in out, noise
    stopped = [line for line in out.splitlines() if "re-run to resume" in line]
    assert stopped and f"[{stage}] SIGTERM: checkpointing at the next step boundary" in out, out[-3000:]
    step = int(stopped[-1].split("stopped at step ")[1].split(";")[0])
    assert 1 <= step < int(STAGES[stage][0].split("=")[1])
    assert (run_dir / stage / "checkpoints").is_dir() and not (run_dir / stage / "final").exists()
    # Against the files themselves, not another run: the checkpoint folder of step N says step N in its
    # trainer state, its manifest lists every file it holds, and metrics.jsonl stops at N.
    folder = run_dir / stage / "checkpoints" / f"step_{step:08d}"
    assert json.loads((folder / "trainer_state.json").read_text())["step"] == step
    listed = set(json.loads((folder / "complete.json").read_text())["files"])
    assert listed == {str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file() and p.name != "complete.json"}
    assert steps_logged(run_dir, stage) == list(range(1, step + 1))
    assert not (run_dir / stage / "preempt.request").exists()

    # The same command resumes there; two more steps show it trains on (stop_at_step does not change
    # the trajectory: a full run to the end is tests/pipelines/sft/test_train.py's stop-and-rerun).
    total = int(STAGES[stage][0].split("=")[1])
    until = min(step + 2, total)
    again = start(stage, run_dir, f"{stage}.stop_at_step={until}")
    out, _ = again.communicate(timeout=900)
    assert again.returncode == 0, out[-3000:]
    ended = f"[{stage}] done:" if until == total else f"[{stage}] stopped at step {until}"
    assert f"resuming at step {step}" in out and ended in out, out[-3000:]
    assert steps_logged(run_dir, stage) == list(range(1, until + 1))  # each step once
