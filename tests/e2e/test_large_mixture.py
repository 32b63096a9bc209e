"""Training ingest at a size that does not fit: a train split of ~100 MB (its records padded with
100 kB of `meta` each) against an 80 MiB object store (`tests/e2e/large_mixture_run.py`).

- The driver holds a shard (2 MB here) at a time, never the split: its peak (Python objects and
  Arrow's pool, while SFT prepares) stays under a tenth of the records' size. Reading the split whole, as
  training did before, peaks above the whole size in Arrow alone.
- The records never enter the object store: SFT (2 steps) and GRPO (1 step) finish, and Ray never
  had to fall back to disk for an object (before, the whole table was `ray.put`).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from data_gen.build.config import BuildConfig
from data_gen.build.run import build_dataset
from data_gen.qa.config import QAConfig
from data_gen.schema import RECORD_SCHEMA
from data_gen.synthetic.scenes import synthesize_scans

REPO = Path(__file__).resolve().parents[2]
RECORDS, PER_SHARD, PAD_BYTES = 1000, 20, 100_000


def padded_split(run_dir: Path) -> int:
    """run_dir/{scans,dataset}: 2 small scenes, built; the train split replaced by RECORDS copies of
    its records (new ids), each with PAD_BYTES of incompressible `meta`, in shards of PER_SHARD.
    Returns the bytes of the padding."""
    synthesize_scans(run_dir, 2, seed=0, num_frames=24, width=96, height=96)
    build_dataset(run_dir / "scans", run_dir / "dataset", run_dir / "cache", QAConfig(num_frames=4, num_candidates=24),
                  BuildConfig(), seed=0, log=lambda _: None, sequential=True)  # fmt: skip
    base = pq.read_table(run_dir / "dataset" / "train").to_pylist()
    rng = np.random.default_rng(0)
    folder = run_dir / "dataset" / "train"
    for shard in folder.glob("*.parquet"):
        shard.unlink()
    for first in range(0, RECORDS, PER_SHARD):
        rows = []
        for i in range(first, first + PER_SHARD):
            pad = rng.bytes(PAD_BYTES // 2).hex()
            rows.append({**base[i % len(base)], "id": f"pad{i:05d}", "meta": json.dumps({"pad": pad})})
        pq.write_table(pa.Table.from_pylist(rows, schema=RECORD_SCHEMA), folder / f"part-{first // PER_SHARD:05d}.parquet")
    return RECORDS * PAD_BYTES


@pytest.mark.slow
def test_sft_and_grpo_on_a_split_larger_than_the_object_store(tmp_path):
    run_dir = tmp_path / "run"
    padding = padded_split(run_dir)
    env = {**os.environ, "PYTHONPATH": str(REPO), "RAY_USAGE_STATS_ENABLED": "0"}
    env.pop("RAY_ADDRESS", None)
    proc = subprocess.run([sys.executable, "-m", "tests.e2e.large_mixture_run", str(run_dir)], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=900)  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    measured = json.loads((run_dir / "measured.json").read_text())

    # The records file holds every record, and more than the object store could.
    assert measured["records"] == RECORDS
    assert measured["records_bytes"] > padding > 80 * 1024 * 1024
    # The driver held a part at a time.
    assert measured["python_peak"] < padding / 10, measured
    assert measured["arrow_peak"] < padding / 10, measured
    # Both stages finished without the records in the object store.
    for stage in ("sft", "grpo"):
        assert (run_dir / stage / "meta.json").is_file(), stage
    summary = measured["object_store"]
    assert "filesystem mmap usage" not in summary and "Spilled" not in summary, summary
