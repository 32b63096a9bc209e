"""Stage 3: supervised fine-tuning under run_dir/sft, on Ray Train with DeepSpeed ZeRO.

`run(cfg)` reads the training mixture (`data.mixture`; our built train split by default), checks
everything that can be checked before any worker starts (batch arithmetic, records, media,
resources, a checkpoint from other settings), builds the per-worker Ray Data streams from the
step it resumes at, and runs a TorchTrainer whose workers run
`pipelines.sft.train.train_loop`. Outputs: `checkpoints/` (Ray Train's, newest N kept),
`final/` (save_pretrained), `metrics.jsonl`, and `meta.json` once finished, so a finished stage
is skipped and an unfinished one resumes from its last checkpoint.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

from pipelines.config import RunConfig
from pipelines.train import stage as scaffold
from pipelines.train.data import DataPlan, GoodRecords
from pipelines.train.sources import mixture_fingerprint, read_mixture

STAGE = "sft"
# Settings that may change between a stop and its resume without changing the trajectory.
_RESUME_FREE = ("save_steps", "stop_at_step")


class SFTSetupError(scaffold.StageSetupError):
    """A setting or input that makes SFT impossible; raised before any worker starts."""


@dataclass(frozen=True)
class Prepared:
    records: scaffold.StageRecords
    plan: DataPlan
    resume_key: str
    start_step: int
    bad_budget: int  # samples that may still fail to decode during training
    settings: dict  # named trajectory settings, recorded in every checkpoint


def trajectory(cfg: RunConfig) -> list:
    """The settings that decide this stage's trained weights (see scaffold.trajectory_settings)."""
    return scaffold.trajectory_settings(cfg, STAGE, _RESUME_FREE)


def stage_hash(cfg: RunConfig) -> str:
    return scaffold.settings_hash([*trajectory(cfg), scaffold.dataset_hash(cfg), *mixture_fingerprint(cfg)])


def resume_key(cfg: RunConfig, ids: list[str]) -> str:
    """What a checkpoint must have been trained with to be resumed by this config."""
    return scaffold.settings_hash([*trajectory(cfg), ids])


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
    """Every check that needs no Ray: batch arithmetic, the mixture's records and media (written to
    run_dir/sft/records.arrow a part at a time), resume point."""
    sft = cfg.sft
    check_model(cfg)
    mixture = read_mixture(cfg, "train")
    if cfg.data.mixture.sources:
        for line in mixture.lines:
            log(f"[{STAGE}] {line}")
    good = GoodRecords(
        mixture.bad, sampling=sft.frame_sampling, num_frames=sft.num_frames, skip=sft.skip_bad_records,
        skip_option="sft.skip_bad_records", max_fraction=cfg.train.max_bad_record_fraction, records_read=mixture.read,
    )  # fmt: skip
    records = scaffold.write_stage_records(cfg, STAGE, mixture.parts(), good)
    if records.skipped:
        log(f"[{STAGE}] skipped {len(records.skipped)} bad records (sft.skip_bad_records), first: {records.skipped[0]}")
    plan = make_plan(cfg, records.num_rows)
    key = resume_key(cfg, records.ids)
    settings = scaffold.named_settings(cfg, STAGE, _RESUME_FREE, records=scaffold.ids_digest(records.ids))
    start = scaffold.resume_step(cfg, STAGE, key, SFTSetupError, "model, sft, seed, workers, ZeRO stage or data",
                                 settings=settings, log=log)  # fmt: skip
    budget = scaffold.bad_sample_budget(cfg, sft.skip_bad_records, mixture.read, len(records.skipped))
    return Prepared(records, plan, key, start, budget, settings)


def check_resources(cfg: RunConfig) -> None:
    """The workers plus at least one data task must fit (and the GPUs asked for exist)."""
    t = cfg.train
    scaffold.check_resources(
        cfg, SFTSetupError, cpus=t.num_workers * t.cpus_per_worker + t.data_cpus_per_task,
        cpus_text=f"train.num_workers={t.num_workers} x train.cpus_per_worker={t.cpus_per_worker} + one data "
        f"task (train.data_cpus_per_task={t.data_cpus_per_task})",
    )  # fmt: skip


def build_trainer(cfg: RunConfig, prep: Prepared):
    import ray.train
    from ray.data import ExecutionOptions

    from pipelines.ray_env import start_ray_data_here
    from pipelines.sft.data import build_rank_datasets
    from pipelines.sft.train import train_loop
    from pipelines.train.ray_trainer import torch_trainer

    train = cfg.train
    encoder_args = {"preset_or_path": cfg.model.preset, "path": cfg.model.path,
                    "sft": cfg.sft.model_dump(mode="json"), "rule": scaffold.frame_rule(cfg, cfg.sft.num_frames)}  # fmt: skip
    start_ray_data_here(cfg.log_level)  # before the workers' ingest: see its docstring (a lost node)
    datasets = build_rank_datasets(
        prep.records.path, prep.plan, prep.start_step, encoder_args=encoder_args,
        tasks=train.data_tasks_per_worker, cpus_per_task=train.data_cpus_per_task, log_level=cfg.log_level,
    )  # fmt: skip
    loop_config = {
        "cfg": cfg.model_dump(mode="json"),
        "plan": asdict(prep.plan),
        "start_step": prep.start_step,
        "trainer_state": {"resume_key": prep.resume_key, "skipped_records": len(prep.records.skipped),
                          "bad_budget": prep.bad_budget, "settings": prep.settings},
    }
    return torch_trainer(
        cfg, STAGE, train_loop, loop_config,
        datasets=datasets,
        dataset_config=ray.train.DataConfig(datasets_to_split=[], execution_options=ExecutionOptions(preserve_order=True)),
    )  # fmt: skip


def start_line(cfg: RunConfig, prep: Prepared) -> str:
    plan = prep.plan
    return (f"{plan.num_records} records, {plan.total_steps} steps of {plan.global_batch} ({plan.world_size} "
            f"workers x {plan.micro_batch} x {plan.accumulation} accumulation)")  # fmt: skip


def meta_inputs(cfg: RunConfig, prep: Prepared) -> dict:
    return {"dataset": str(cfg.run_path / "dataset"), **scaffold.mixture_inputs(cfg),
            "skipped_records": str(len(prep.records.skipped))}  # fmt: skip


HOOKS = scaffold.StageHooks(STAGE, stage_hash, prepare, check_resources, start_line, build_trainer, meta_inputs)


def run(cfg: RunConfig, log=print) -> Path | None:
    """Train (or resume) and export run_dir/sft/final; returns it, or None when stopped early
    by sft.stop_at_step. Skipped when already finished with the same settings."""
    return scaffold.run_stage(cfg, HOOKS, log)
