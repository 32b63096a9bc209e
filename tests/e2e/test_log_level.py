"""`log_level=verbose`: a job on a fresh local Ray instance shows Ray's per-run notices (the dataset
build: Ray's token-auth notice and Ray Data's execution-plan line). The default, `quiet`, hides
them: checked on the jobs tests/e2e/test_preemption.py starts on a fresh local instance, and on
the pipeline tests/e2e/test_ray_job_submit.py submits to a cluster."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parents[2]
NOISE = ("Token authentication is", "Execution plan of Dataset")


def test_verbose_on_request(tmp_path):
    from data_gen.synthetic.scenes import synthesize_scans

    synthesize_scans(tmp_path / "scans_root", 2, seed=0, num_frames=24, width=96, height=72)
    env = {**os.environ, "PYTHONPATH": str(REPO), "RAY_USAGE_STATS_ENABLED": "0"}
    for key in ("RAY_ADDRESS", "RAY_AUTH_MODE", "RAY_BACKEND_LOG_LEVEL"):
        env.pop(key, None)
    verbose = subprocess.run(
        [sys.executable, "-m", "jobs.build_dataset", "--config", "jobs/configs/tiny.yaml", f"run_dir={tmp_path / 'run'}",
         f"data.scans_dir={tmp_path / 'scans_root' / 'scans'}", "log_level=verbose"],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert verbose.returncode == 0, verbose.stderr[-3000:]
    assert "[build_dataset] wrote" in verbose.stdout  # our own lines as well
    for noise in NOISE:
        assert noise in verbose.stdout + verbose.stderr, noise
