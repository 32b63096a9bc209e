"""Stage 4: GRPO under run_dir/grpo, on Ray Train with DeepSpeed ZeRO and Ray reward actors.

`run(cfg)` checks what can be checked before any worker starts (batch arithmetic, dataset, frames,
resources, a checkpoint from other settings), then runs a TorchTrainer whose workers run
`pipelines.grpo.train.train_loop`. The policy starts from `grpo.init_from`, else
`run_dir/sft/final` when SFT finished, else `model.path` / the preset. Outputs: `checkpoints/`
(Ray Train's, newest N kept), `final/` (save_pretrained), `metrics.jsonl`, `samples.jsonl`, and
`meta.json` once finished, so a finished stage is skipped and an unfinished one resumes.
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

STAGE = "grpo"
# Settings that may change between a stop and its resume without changing the trajectory.
_RESUME_FREE = ("save_steps", "stop_at_step", "fail_at_step", "log_every", "sample_every", "num_samples",
                "reward_pool")  # fmt: skip


class GRPOSetupError(InputError):
    """A setting or input that makes training impossible; raised before any worker starts."""


@dataclass(frozen=True)
class Prepared:
    records: pa.Table
    plan: DataPlan
    start: dict
    resume_key: str
    start_step: int


def start_point(cfg: RunConfig) -> dict:
    """Where the policy (and the reference) come from: {"dir": a save_pretrained folder or None
    for model.preset / model.path, "meta": that folder's stage meta hash, if any}."""
    if cfg.grpo.init_from:
        folder = Path(cfg.grpo.init_from).expanduser().resolve()
        if not folder.is_dir():
            raise GRPOSetupError(f"grpo.init_from={cfg.grpo.init_from}: no such directory")
    elif (cfg.run_path / "sft" / "final").is_dir():
        folder = cfg.run_path / "sft" / "final"
    else:
        return {"dir": None, "meta": ""}
    meta = read_meta(folder.parent) or {}
    return {"dir": str(folder), "meta": str(meta.get("config_hash", ""))}


def trajectory_settings(cfg: RunConfig) -> list:
    """The settings that decide the trained weights; logging, checkpoint cadence, W&B and cluster
    limits are left out, so changing them neither redoes a finished stage nor refuses a resume."""
    grpo = {k: v for k, v in cfg.grpo.model_dump(mode="json").items() if k not in _RESUME_FREE}
    return [cfg.seed, cfg.model.model_dump(mode="json"), grpo, cfg.train.num_workers, cfg.train.zero_stage]


def stage_hash(cfg: RunConfig) -> str:
    dataset = read_meta(cfg.run_path / "dataset") or {}
    payload = [*trajectory_settings(cfg), dataset.get("config_hash", ""), start_point(cfg)]
    return hashlib.sha256(repr(payload).encode()).hexdigest()[:16]


def resume_key(cfg: RunConfig, records: pa.Table, start: dict) -> str:
    """What a checkpoint must have been trained with to be resumed by this config."""
    payload = [*trajectory_settings(cfg), start, records["id"].to_pylist()]
    return hashlib.sha256(repr(payload).encode()).hexdigest()[:16]


def make_plan(cfg: RunConfig, num_records: int) -> DataPlan:
    grpo, workers = cfg.grpo, cfg.train.num_workers
    global_batch = grpo.prompts_per_step * workers
    total = grpo.max_steps if grpo.max_steps >= 0 else num_records // global_batch
    if total < 1:
        raise GRPOSetupError(
            f"{num_records} prompts make no full step of grpo.prompts_per_step={grpo.prompts_per_step} x "
            f"train.num_workers={workers}: set grpo.max_steps or fewer prompts per step"
        )
    return DataPlan(
        num_records, cfg.seed, grpo.shuffle, workers, grpo.micro_batch_prompts, global_batch, total
    )


def prepare(cfg: RunConfig, log=print) -> Prepared:
    """Every check that needs no Ray: batch arithmetic, dataset, frames, start point, resume point."""
    grpo = cfg.grpo
    table = read_split(cfg.run_path / "dataset", grpo.split)
    records, _ = check_frames(
        table, cfg.scans_path(), sampling=grpo.frame_sampling, num_frames=grpo.num_frames, skip=False
    )
    plan = make_plan(cfg, records.num_rows)
    start = start_point(cfg)
    key = resume_key(cfg, records, start)
    state = checkpointing.latest_state(checkpointing.storage_dir(cfg.run_path, STAGE))
    if state is not None and state.get("resume_key") != key:
        raise GRPOSetupError(
            f"{cfg.run_path / STAGE / 'checkpoints'} holds checkpoints trained with other settings (model, grpo, "
            "seed, workers, ZeRO stage, start point or data); use another run_dir, or delete that folder"
        )
    return Prepared(records, plan, start, key, 0 if state is None else int(state["step"]))


def check_resources(cfg: RunConfig) -> None:
    """Refuse (instead of waiting forever) when the cluster cannot hold workers and reward actors."""
    import ray

    train, pool = cfg.train, cfg.grpo.reward_pool
    if not train.check_resources:
        return
    have = ray.cluster_resources()
    need_cpu = train.num_workers * (train.cpus_per_worker + pool.num_actors * pool.num_cpus)
    if train.use_gpu and have.get("GPU", 0) < train.num_workers:
        raise GRPOSetupError(
            f"train.num_workers={train.num_workers} with train.use_gpu=true needs {train.num_workers} GPUs; "
            f"the Ray cluster has {int(have.get('GPU', 0))}"
        )
    if have.get("CPU", 0) < need_cpu:
        raise GRPOSetupError(
            f"train.num_workers={train.num_workers} x (train.cpus_per_worker={train.cpus_per_worker} + "
            f"grpo.reward_pool.num_actors={pool.num_actors} x grpo.reward_pool.num_cpus={pool.num_cpus}) = "
            f"{need_cpu:g} CPUs, but the Ray cluster has {have.get('CPU', 0):g}"
        )


def build_trainer(cfg: RunConfig, prep: Prepared):
    import ray

    from pipelines.grpo.train import train_loop
    from pipelines.train.ray_trainer import torch_trainer

    loop_config = {
        "cfg": cfg.model_dump(mode="json"),
        "plan": asdict(prep.plan),
        "start": prep.start,
        "records": ray.put(prep.records),
        "trainer_state": {"resume_key": prep.resume_key},
    }
    return torch_trainer(cfg, STAGE, train_loop, loop_config)


def run(cfg: RunConfig, log=print) -> Path | None:
    """Train (or resume) and export run_dir/grpo/final; returns it, or None when stopped early by
    grpo.stop_at_step. Skipped when already finished with the same settings."""
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
    plan, grpo = prep.plan, cfg.grpo
    where = f"resuming at step {prep.start_step}" if prep.start_step else "from scratch"
    origin = prep.start["dir"] or f"model.preset={cfg.model.preset}" + (
        f", model.path={cfg.model.path}" if cfg.model.path else ""
    )
    log(f"[{STAGE}] policy from {origin}; {plan.num_records} prompts, {plan.total_steps} steps of "
        f"{plan.global_batch} prompts x {grpo.num_generations} rollouts ({plan.world_size} workers), {where}")  # fmt: skip
    from pipelines.train.metrics_log import MetricsFollower

    with MetricsFollower(out / "metrics.jsonl", total_steps=plan.total_steps, log=log, tag=STAGE):
        build_trainer(cfg, prep).fit()
    stop = grpo.stop_at_step
    if 0 <= stop < plan.total_steps:
        log(
            f"[{STAGE}] stopped at step {max(stop, prep.start_step)} (grpo.stop_at_step); run again to resume"
        )
        return None
    write_meta(out, STAGE, key, cfg.model_dump(mode="json"),
               {"dataset": str(cfg.run_path / "dataset"), "start": str(prep.start["dir"] or cfg.model.preset)})  # fmt: skip
    log(f"[{STAGE}] done: {out / 'final'}")
    return out / "final"
