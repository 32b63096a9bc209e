"""The build and a few SFT steps on a simulated two-node cluster (`tests/e2e/two_node_run.py`):
the dataset equals the one built in a single process, and the two training ranks ran on the two
different worker nodes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from data_gen.build.run import build_dataset
from pipelines.config import build_config

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_build_and_sft_across_two_nodes(tmp_path):
    run_dir = tmp_path / "run"
    env = {**os.environ, "PYTHONPATH": str(REPO), "RAY_USAGE_STATS_ENABLED": "0"}
    env.pop("RAY_ADDRESS", None)
    proc = subprocess.run([sys.executable, "-m", "tests.e2e.two_node_run", str(run_dir)], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=900)  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]

    # The ranks ran one per worker node.
    worker_nodes = json.loads((run_dir / "nodes.json").read_text())["workers"]
    placement = json.loads((run_dir / "sft" / "workers.json").read_text())
    assert [p["rank"] for p in placement] == [0, 1]
    assert sorted(p["node_id"] for p in placement) == sorted(worker_nodes)
    assert (run_dir / "sft" / "final" / "config.json").is_file() and (run_dir / "sft" / "meta.json").is_file()
    losses = [
        json.loads(line)["train/loss"]
        for line in (run_dir / "sft" / "metrics.jsonl").read_text().splitlines()
    ]
    assert len(losses) == 3 and all(loss > 0 for loss in losses)

    # Built across the nodes, the dataset is the one a single process builds from the same scans.
    cfg = build_config(None, [f"run_dir={run_dir}"])
    here = tmp_path / "sequential"
    build_dataset(run_dir / "scans", here, tmp_path / "cache", cfg.data.qa, cfg.data.build, cfg.seed,
                  log=lambda *_: None, sequential=True)  # fmt: skip
    for split in ("train", "val"):
        cluster_rows = pq.read_table(run_dir / "dataset" / split).to_pylist()
        assert cluster_rows and cluster_rows == pq.read_table(here / split).to_pylist(), split
