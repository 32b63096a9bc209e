"""`log_level`: a job on a fresh local Ray instance prints none of Ray's per-run notices by default,
and all of them with log_level=verbose (the dataset build: Ray's token-auth notice and Ray Data's
execution-plan line)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parents[2]
NOISE = ("Token authentication is", "Execution plan of Dataset")


def job(name: str, run_dir: Path, *overrides: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO), "RAY_USAGE_STATS_ENABLED": "0"}
    for key in ("RAY_ADDRESS", "RAY_AUTH_MODE", "RAY_BACKEND_LOG_LEVEL"):
        env.pop(key, None)
    proc = subprocess.run(
        [sys.executable, "-m", f"jobs.{name}", "--config", "jobs/configs/tiny.yaml", f"run_dir={run_dir}",
         "data.synthetic.num_scenes=2", "data.synthetic.num_frames=24", "data.synthetic.width=96",
         "data.synthetic.height=72", *overrides],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


def test_quiet_by_default_and_verbose_on_request(tmp_path):
    job("synth_scans", tmp_path / "quiet")
    quiet = job("build_dataset", tmp_path / "quiet")
    assert "[build_dataset] wrote" in quiet.stdout  # our own lines stay
    for noise in NOISE:
        assert noise not in quiet.stdout + quiet.stderr, noise
    job("synth_scans", tmp_path / "verbose")
    verbose = job("build_dataset", tmp_path / "verbose", "log_level=verbose")
    for noise in NOISE:
        assert noise in verbose.stdout + verbose.stderr, noise
