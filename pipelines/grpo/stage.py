"""Stage 4: GRPO under run_dir/grpo, on Ray Train with DeepSpeed ZeRO and Ray reward actors.

`run(cfg)` reads the training mixture (`data.mixture`; our built `grpo.split` by default) and
keeps the records GRPO can score: single-turn, numerical or multiple choice (open-ended ones only
with grpo.open_ended=exact_match); it checks what can be checked before any worker starts (batch
arithmetic, records, media, resources, a checkpoint from other settings), then runs a TorchTrainer
whose workers run
`pipelines.grpo.train.train_loop`. The policy starts from `grpo.init_from`, else
`run_dir/sft/final` when SFT finished, else `model.path` / the preset. Outputs: `checkpoints/`
(Ray Train's, newest N kept), `final/` (save_pretrained), `metrics.jsonl`, `samples.jsonl`, and
`meta.json` once finished, so a finished stage is skipped and an unfinished one resumes.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import pyarrow as pa

from pipelines.config import RunConfig
from pipelines.run_meta import read_meta
from pipelines.train import stage as scaffold
from pipelines.train.data import DataError, DataPlan, GoodRecords
from pipelines.train.sources import mixture_fingerprint, read_mixture

STAGE = "grpo"
# Settings that may change between a stop and its resume without changing the trajectory.
_RESUME_FREE = ("save_steps", "stop_at_step", "log_every", "sample_every", "num_samples",
                "reward_pool")  # fmt: skip


class GRPOSetupError(scaffold.StageSetupError):
    """A setting or input that makes GRPO impossible; raised before any worker starts."""


@dataclass(frozen=True)
class Prepared:
    records: scaffold.StageRecords
    plan: DataPlan
    start: dict
    resume_key: str
    start_step: int
    bad_budget: int  # prompts that may still fail to decode during training
    settings: dict  # named trajectory settings, recorded in every checkpoint


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


def trajectory(cfg: RunConfig) -> list:
    """The settings that decide this stage's trained weights (see scaffold.trajectory_settings)."""
    return scaffold.trajectory_settings(cfg, STAGE, _RESUME_FREE)


def stage_hash(cfg: RunConfig) -> str:
    return scaffold.settings_hash(
        [*trajectory(cfg), scaffold.dataset_hash(cfg), start_point(cfg), *mixture_fingerprint(cfg)]
    )


def resume_key(cfg: RunConfig, ids: list[str], start: dict) -> str:
    """What a checkpoint must have been trained with to be resumed by this config."""
    return scaffold.settings_hash([*trajectory(cfg), start, ids])


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


def scorable(table: pa.Table, open_ended: str) -> tuple[pa.Table, dict[str, int]]:
    """The records GRPO trains on: one question (multi-turn records left out) with an answer the
    reward can score (open-ended ones only with grpo.open_ended=exact_match); and how many of each
    kind were left out."""
    multi = [bool(t) and len(json.loads(t)) > 1 for t in table["turns"].to_pylist()]
    free = [p == "open_ended" and open_ended == "skip" for p in table["problem_type"].to_pylist()]
    keep = [i for i, (m, f) in enumerate(zip(multi, free, strict=True)) if not (m or f)]
    left = {"open-ended": sum(f and not m for m, f in zip(multi, free, strict=True)), "multi-turn": sum(multi)}
    return table.take(pa.array(keep, type=pa.int64())), left


def prepare(cfg: RunConfig, log=print) -> Prepared:
    """Every check that needs no Ray: the mixture's scorable records and their media (written to
    run_dir/grpo/records.arrow a part at a time), batch arithmetic, start point, resume point."""
    grpo = cfg.grpo
    if cfg.data.mixture.image_lists == "images":
        raise DataError("data.mixture.image_lists=images (each image its own block) is for SFT: GRPO shows one "
                        "video per prompt; run GRPO with data.mixture.image_lists=video")  # fmt: skip
    mixture = read_mixture(cfg, grpo.split)
    if cfg.data.mixture.sources:
        for line in mixture.lines:
            log(f"[{STAGE}] {line}")
    left = {"open-ended": 0, "multi-turn": 0}

    def scorable_parts():
        for part in mixture.parts():
            kept, dropped = scorable(part, grpo.open_ended)
            for kind, n in dropped.items():
                left[kind] += n
            yield kept

    good = GoodRecords(
        mixture.bad, sampling=grpo.frame_sampling, num_frames=grpo.num_frames, skip=grpo.skip_bad_records,
        skip_option="grpo.skip_bad_records", max_fraction=cfg.train.max_bad_record_fraction, records_read=mixture.read,
    )  # fmt: skip
    try:
        records = scaffold.write_stage_records(cfg, STAGE, scorable_parts(), good)
    except DataError:
        if good.seen == 0:  # nothing reached the media check: say why
            raise DataError("no record GRPO can score: every one is open-ended or multi-turn "
                            "(grpo.open_ended=exact_match rewards open-ended answers)") from None  # fmt: skip
        raise
    if any(left.values()):
        log(f"[{STAGE}] left out " + ", ".join(f"{n} {kind}" for kind, n in left.items() if n)
            + f" records (GRPO asks one question; grpo.open_ended={grpo.open_ended})")  # fmt: skip
    if records.skipped:
        log(f"[{STAGE}] skipped {len(records.skipped)} bad records (grpo.skip_bad_records), first: {records.skipped[0]}")
    plan = make_plan(cfg, records.num_rows)
    start = start_point(cfg)
    key = resume_key(cfg, records.ids, start)
    trained_with = "model, grpo, seed, workers, ZeRO stage, start point or data"
    settings = scaffold.named_settings(cfg, STAGE, _RESUME_FREE, records=scaffold.ids_digest(records.ids),
                                       start=start["dir"] or "", start_meta=start["meta"])  # fmt: skip
    step = scaffold.resume_step(cfg, STAGE, key, GRPOSetupError, trained_with, settings=settings, log=log)
    budget = scaffold.bad_sample_budget(cfg, grpo.skip_bad_records, mixture.read, len(records.skipped))
    return Prepared(records, plan, start, key, step, budget, settings)


def check_resources(cfg: RunConfig) -> None:
    """The workers and every worker's reward actors must fit (and the GPUs asked for exist)."""
    t, pool = cfg.train, cfg.grpo.reward_pool
    cpus = t.num_workers * (t.cpus_per_worker + pool.num_actors * pool.num_cpus)
    scaffold.check_resources(
        cfg, GRPOSetupError, cpus=cpus,
        cpus_text=f"train.num_workers={t.num_workers} x (train.cpus_per_worker={t.cpus_per_worker} + "
        f"grpo.reward_pool.num_actors={pool.num_actors} x grpo.reward_pool.num_cpus={pool.num_cpus})",
    )  # fmt: skip


def build_trainer(cfg: RunConfig, prep: Prepared):
    from pipelines.grpo.train import train_loop
    from pipelines.train.ray_trainer import torch_trainer

    loop_config = {
        "cfg": cfg.model_dump(mode="json"),
        "plan": asdict(prep.plan),
        "start": prep.start,
        "records": str(prep.records.path),
        "trainer_state": {"resume_key": prep.resume_key, "bad_budget": prep.bad_budget, "settings": prep.settings},
    }
    return torch_trainer(cfg, STAGE, train_loop, loop_config)


def start_line(cfg: RunConfig, prep: Prepared) -> str:
    plan = prep.plan
    origin = prep.start["dir"] or f"model.preset={cfg.model.preset}" + (
        f", model.path={cfg.model.path}" if cfg.model.path else ""
    )
    return (f"policy from {origin}; {plan.num_records} prompts, {plan.total_steps} steps of {plan.global_batch} "
            f"prompts x {cfg.grpo.num_generations} rollouts ({plan.world_size} workers)")  # fmt: skip


def meta_inputs(cfg: RunConfig, prep: Prepared) -> dict:
    return {"dataset": str(cfg.run_path / "dataset"), **scaffold.mixture_inputs(cfg),
            "start": str(prep.start["dir"] or cfg.model.preset)}  # fmt: skip


HOOKS = scaffold.StageHooks(STAGE, stage_hash, prepare, check_resources, start_line, build_trainer, meta_inputs)


def run(cfg: RunConfig, log=print) -> Path | None:
    """Train (or resume) and export run_dir/grpo/final; returns it, or None when stopped early by
    grpo.stop_at_step. Skipped when already finished with the same settings."""
    return scaffold.run_stage(cfg, HOOKS, log)
