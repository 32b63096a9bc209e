"""python -m tests.e2e.large_mixture_run RUN_DIR: SFT and GRPO on a training split larger than Ray's
object store, in a process of its own (its own Ray instance, an 80 MiB object store; the test
session already has a Ray instance).

RUN_DIR must hold scans and a built dataset whose train split the test has padded to more than
the object store holds. Phase 1 measures the driver while SFT prepares its records (no Ray yet,
after a first call, so imports are not counted); phase 2 starts Ray and runs 2 SFT steps and 1 GRPO step.
Writes RUN_DIR/measured.json: the driver's peaks and Ray's object store summary after the runs.
"""

from __future__ import annotations

import json
import sys
import tracemalloc
from pathlib import Path

OBJECT_STORE_BYTES = 80 * 1024 * 1024
OVERRIDES = [
    "model.preset=tiny", "model.dtype=fp32", "train.num_workers=2", "train.cpus_per_worker=0.5",
    "train.data_tasks_per_worker=1", "train.data_cpus_per_task=0.25", "train.zero_stage=2", "train.wandb=false",
    "sft.max_steps=2", "sft.global_batch_size=2", "sft.micro_batch_size=1", "sft.num_frames=4", "sft.save_steps=0",
    "grpo.split=train", "grpo.max_steps=1", "grpo.prompts_per_step=1", "grpo.num_generations=2",
    "grpo.max_completion_length=8", "grpo.num_frames=4", "grpo.save_steps=0", "grpo.reward_pool.num_actors=1",
    "grpo.reward_pool.num_cpus=0.25",
]  # fmt: skip


def main(run_dir: Path) -> None:
    import pyarrow as pa

    from pipelines.config import build_config
    from pipelines.grpo import stage as grpo
    from pipelines.sft import stage as sft

    cfg = build_config(None, [f"run_dir={run_dir}", f"data.scans_dir={run_dir / 'scans'}", *OVERRIDES])
    sft.prepare(cfg, log=lambda *_: None)  # once first, so that imports are not counted below
    pool = pa.proxy_memory_pool(pa.default_memory_pool())  # its own peak: this call's Arrow allocations
    pa.set_memory_pool(pool)
    tracemalloc.start()
    start = tracemalloc.get_traced_memory()[0]
    prep = sft.prepare(cfg, log=lambda *_: None)
    python_peak = tracemalloc.get_traced_memory()[1] - start
    tracemalloc.stop()
    measured = {"python_peak": python_peak, "arrow_peak": pool.max_memory(),
                "records_bytes": prep.records.path.stat().st_size, "records": prep.records.num_rows}  # fmt: skip

    import ray
    from ray._private.internal_api import memory_summary

    context = ray.init(address="local", num_cpus=2, object_store_memory=OBJECT_STORE_BYTES, include_dashboard=False,
                       log_to_driver=False)  # fmt: skip
    try:
        sft.run(cfg, log=lambda *_: None)
        grpo.run(cfg, log=lambda *_: None)
        measured["object_store"] = memory_summary(context.address_info["gcs_address"], stats_only=True)
    finally:
        ray.shutdown()
    (run_dir / "measured.json").write_text(json.dumps(measured, indent=1))


if __name__ == "__main__":
    main(Path(sys.argv[1]).resolve())
