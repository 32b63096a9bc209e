"""Distributed training settings shared by SFT and GRPO (the `train` section of the run config):
Ray Train scaling, DeepSpeed ZeRO, checkpoint retention, restarts and the data-ingest budget."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class TrainConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True, use_attribute_docstrings=True)

    num_workers: int = Field(2, ge=1)
    """Ray Train workers = data-parallel ranks, count (one GPU each when use_gpu)."""
    use_gpu: bool = False
    """One GPU per worker, NCCL and bf16 as configured; false = CPU workers with gloo."""
    cpus_per_worker: float = Field(1.0, gt=0)
    """CPUs Ray reserves for each training worker, count (fractions allowed). The workers must
    leave room for at least one data task, or the run is refused before it starts."""
    placement_strategy: Literal["PACK", "SPREAD", "STRICT_PACK", "STRICT_SPREAD"] = "PACK"
    """How Ray places the workers on nodes: PACK fills one node before the next, SPREAD spreads
    them, STRICT_SPREAD puts each on a different node (or waits for enough nodes)."""
    zero_stage: Literal[1, 2, 3] = 3
    """DeepSpeed ZeRO stage: 1 shards the optimizer state, 2 also the gradients, 3 also the parameters."""
    max_failures: int = Field(1, ge=-1)
    """Worker-group restarts Ray Train allows, each resuming from the last checkpoint, count;
    -1 = unlimited, 0 = fail on the first error."""
    keep_checkpoints: int = Field(2, ge=1)
    """Checkpoints kept under run_dir/<stage>/checkpoints (the newest N), count."""
    collective_timeout_s: int = Field(1800, ge=10)
    """A collective (all-reduce, barrier) that waits longer than this fails instead of hanging, seconds."""
    data_tasks_per_worker: int = Field(2, ge=1)
    """Ray Data actors loading and preprocessing frames for each training worker (SFT), count."""
    data_cpus_per_task: float = Field(1.0, gt=0)
    """CPUs Ray reserves for each of those data tasks, count (fractions allowed)."""
    max_bad_record_fraction: float = Field(0.05, ge=0.0, le=1.0)
    """With <stage>.skip_bad_records, the share of the records read that may be left out as bad
    (a malformed line, a missing or unreadable video, image, frame folder or scan frame), fraction;
    one more stops the job, naming them. Frames that fail to decode during training count too
    (their sample is replaced by the next readable record)."""
    prefetch_batches: int = Field(2, ge=0)
    """Micro-batches each worker keeps ready ahead of the step, count."""
    wandb: bool = True
    """Mirror the metrics to a W&B run (offline unless WANDB_API_KEY is set); false = metrics.jsonl only."""
    gpu_memory_gb: float = Field(80.0, gt=0)
    """Memory of one GPU, GiB (A100 / A800 / H100: 80, H200: 141): what `jobs.plan` checks its
    per-GPU estimate against."""
    check_resources: bool = True
    """Refuse to start when the cluster has fewer CPUs/GPUs than the workers and one data task need
    (false on an autoscaling cluster that grows on demand)."""
