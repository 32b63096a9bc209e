"""Stage 3: supervised fine-tuning under run_dir/sft, on Ray Train with DeepSpeed ZeRO.

`run(cfg)` checks everything that can be checked before any worker starts (batch arithmetic,
dataset, frames, resources, a checkpoint from other settings), builds the per-worker Ray Data
streams from the step it resumes at, and runs a TorchTrainer whose workers run
`pipelines.sft.train.train_loop`. Outputs: `checkpoints/` (Ray Train's, newest N kept),
`final/` (save_pretrained), `metrics.jsonl`, and `meta.json` once finished, so a finished stage
is skipped and an unfinished one resumes from its last checkpoint.
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass
from pathlib import Path

import pyarrow as pa

from data_gen.errors import InputError
from pipelines.config import RunConfig
from pipelines.run_meta import is_complete, read_meta, write_meta
from pipelines.train import checkpointing
from pipelines.train.data import DataPlan, check_frames, read_split

STAGE = "sft"
# Settings that may change between a stop and its resume without changing the trajectory.
_RESUME_FREE = ("save_steps", "stop_at_step", "fail_at_step")


class SFTSetupError(InputError):
    """A setting or input that makes training impossible; raised before any worker starts."""


@dataclass(frozen=True)
class Prepared:
    records: pa.Table
    plan: DataPlan
    skipped: list[str]
    resume_key: str
    start_step: int


def trajectory_settings(cfg: RunConfig) -> list:
    """The settings that decide the trained weights; logging, checkpoint cadence, W&B and cluster
    limits are left out, so changing them neither redoes a finished stage nor refuses a resume."""
    sft = {k: v for k, v in cfg.sft.model_dump(mode="json").items() if k not in _RESUME_FREE}
    return [cfg.seed, cfg.model.model_dump(mode="json"), sft, cfg.train.num_workers, cfg.train.zero_stage]


def stage_hash(cfg: RunConfig) -> str:
    dataset = read_meta(cfg.run_path / "dataset") or {}
    payload = [*trajectory_settings(cfg), dataset.get("config_hash", "")]
    return hashlib.sha256(repr(payload).encode()).hexdigest()[:16]


def resume_key(cfg: RunConfig, records: pa.Table) -> str:
    """What a checkpoint must have been trained with to be resumed by this config."""
    payload = [*trajectory_settings(cfg), records["id"].to_pylist()]
    return hashlib.sha256(repr(payload).encode()).hexdigest()[:16]


def make_plan(cfg: RunConfig, num_records: int) -> DataPlan:
    sft, workers = cfg.sft, cfg.train.num_workers
    if sft.global_batch_size % (sft.micro_batch_size * workers):
        raise SFTSetupError(
            f"sft.global_batch_size={sft.global_batch_size} is not a multiple of sft.micro_batch_size="
            f"{sft.micro_batch_size} x train.num_workers={workers}"
        )
    total = (
        sft.max_steps if sft.max_steps >= 0 else int(sft.num_epochs * num_records // sft.global_batch_size)
    )
    if total < 1:
        raise SFTSetupError(
            f"{num_records} records x sft.num_epochs={sft.num_epochs} make no full batch of "
            f"sft.global_batch_size={sft.global_batch_size}: set sft.max_steps or a smaller batch"
        )
    return DataPlan(
        num_records, cfg.seed, sft.shuffle, workers, sft.micro_batch_size, sft.global_batch_size, total
    )


def check_model(cfg: RunConfig) -> None:
    """The weights exist where the config says (3B presets need model.path)."""
    path = cfg.model.path
    if path is None and cfg.model.preset not in ("tiny", "small"):
        raise SFTSetupError(f"model.preset={cfg.model.preset} needs model.path (a local weights directory)")
    if path is not None and not Path(path).expanduser().is_dir():
        raise SFTSetupError(f"model.path={path} is not a directory")


def prepare(cfg: RunConfig, log=print) -> Prepared:
    """Every check that needs no Ray: batch arithmetic, dataset, frames, resume point."""
    sft = cfg.sft
    check_model(cfg)
    table = read_split(cfg.run_path / "dataset", "train")
    records, skipped = check_frames(
        table,
        cfg.scans_path(),
        sampling=sft.frame_sampling,
        num_frames=sft.num_frames,
        skip=sft.skip_bad_records,
        skip_option="sft.skip_bad_records",
    )
    if skipped:
        log(f"[{STAGE}] skipped {len(skipped)} records with missing frames (sft.skip_bad_records)")
    plan = make_plan(cfg, records.num_rows)
    key = resume_key(cfg, records)
    state = checkpointing.latest_state(checkpointing.storage_dir(cfg.run_path, STAGE))
    if state is not None and state.get("resume_key") != key:
        raise SFTSetupError(
            f"{cfg.run_path / STAGE / 'checkpoints'} holds checkpoints trained with other settings (model, sft, "
            "seed, workers, ZeRO stage or data); use another run_dir, or delete that folder to start over"
        )
    start = 0 if state is None else int(state["step"])
    return Prepared(records, plan, skipped, key, start)


def check_resources(cfg: RunConfig) -> None:
    """Refuse (instead of waiting forever) when the cluster cannot hold the workers plus at least
    one data task, or lacks the GPUs asked for."""
    import ray

    train = cfg.train
    if not train.check_resources:
        return
    have = ray.cluster_resources()
    if train.use_gpu and have.get("GPU", 0) < train.num_workers:
        raise SFTSetupError(
            f"train.num_workers={train.num_workers} with train.use_gpu=true needs {train.num_workers} GPUs; "
            f"the Ray cluster has {int(have.get('GPU', 0))}"
        )
    need_cpu = train.num_workers * train.cpus_per_worker + train.data_cpus_per_task
    if have.get("CPU", 0) < need_cpu:
        raise SFTSetupError(
            f"train.num_workers={train.num_workers} x train.cpus_per_worker={train.cpus_per_worker} + one data "
            f"task (train.data_cpus_per_task={train.data_cpus_per_task}) need {need_cpu:g} CPUs, but the Ray "
            f"cluster has {have.get('CPU', 0):g}"
        )


def build_trainer(cfg: RunConfig, prep: Prepared):
    import ray.train
    from ray.data import ExecutionOptions

    from pipelines.sft.data import build_rank_datasets
    from pipelines.sft.train import train_loop
    from pipelines.train.ray_trainer import torch_trainer

    train = cfg.train
    encoder_args = {"preset_or_path": cfg.model.preset, "path": cfg.model.path,
                    "scans_root": str(cfg.scans_path()), "sft": cfg.sft.model_dump(mode="json")}  # fmt: skip
    datasets = build_rank_datasets(
        prep.records, prep.plan, prep.start_step, encoder_args=encoder_args,
        tasks=train.data_tasks_per_worker, cpus_per_task=train.data_cpus_per_task, log_level=cfg.log_level,
    )  # fmt: skip
    loop_config = {
        "cfg": cfg.model_dump(mode="json"),
        "plan": asdict(prep.plan),
        "start_step": prep.start_step,
        "trainer_state": {"resume_key": prep.resume_key, "skipped_records": len(prep.skipped)},
    }
    return torch_trainer(
        cfg, STAGE, train_loop, loop_config,
        datasets=datasets,
        dataset_config=ray.train.DataConfig(datasets_to_split=[], execution_options=ExecutionOptions(preserve_order=True)),
    )  # fmt: skip


def run(cfg: RunConfig, log=print) -> Path | None:
    """Train (or resume) and export run_dir/sft/final; returns it, or None when stopped early
    by sft.stop_at_step. Skipped when already finished with the same settings."""
    out = cfg.run_path / STAGE
    key = stage_hash(cfg)
    if is_complete(out, key):
        log(f"[{STAGE}] already complete: {out}")
        return out / "final"
    if warning := cfg.precision_warning():
        log(f"[{STAGE}] {warning}")
    prep = prepare(cfg, log=log)
    from pipelines.ray_env import ensure_ray

    ensure_ray(cfg.log_level)
    check_resources(cfg)
    plan = prep.plan
    where = f"resuming at step {prep.start_step}" if prep.start_step else "from scratch"
    log(f"[{STAGE}] {plan.num_records} records, {plan.total_steps} steps of {plan.global_batch} "
        f"({plan.world_size} workers x {plan.micro_batch} x {plan.accumulation} accumulation), {where}")  # fmt: skip
    from pipelines.train.metrics_log import MetricsFollower

    trainer = build_trainer(cfg, prep)
    with MetricsFollower(out / "metrics.jsonl", total_steps=plan.total_steps, log=log, tag=STAGE):
        trainer.fit()
    stop = cfg.sft.stop_at_step
    if 0 <= stop < plan.total_steps:
        log(f"[{STAGE}] stopped at step {max(stop, prep.start_step)} (sft.stop_at_step); run again to resume")
        return None
    write_meta(out, STAGE, key, cfg.model_dump(mode="json"),
               {"dataset": str(cfg.run_path / "dataset"), "skipped_records": str(len(prep.skipped))})  # fmt: skip
    log(f"[{STAGE}] done: {out / 'final'}")
    return out / "final"
