"""The GRPO loop that runs inside every Ray Train worker.

Setup: the policy from `run_dir/sft/final` (else `model.path` / the preset, or `grpo.init_from`),
the recipe's parameter groups (encoders frozen), DeepSpeed ZeRO with a torch AdamW, a frozen
reference copy of the starting weights when beta > 0, this worker's reward actor pool, then the
latest checkpoint if Ray Train hands one over (weights, optimizer, scheduler, RNG, step).

Each step: this worker's prompts (a pure function of seed and step, see `DataPlan`), `generate`
G completions per prompt (videos encoded once per prompt), `score` them on the reward actors,
advantages per group, old/reference log-probs, `policy_step` (num_iterations optimizer updates),
`log_metrics` (rank 0, all ranks' rollouts gathered); every `grpo.save_steps` all ranks
checkpoint; at the end the consolidated policy is exported to run_dir/grpo/final.

Each worker owns its reward pool: a pool keeps single-owner state (its queue, the actors it
replaces), its actors die with the worker that made them, and scoring needs no cross-rank traffic.
"""

from __future__ import annotations

import contextlib
import json
import time
from dataclasses import dataclass
from typing import Any

from pipelines.config import RunConfig
from pipelines.grpo.rollout import PromptBatch, Rollouts, Sampling
from pipelines.grpo.scoring import Scores
from pipelines.train.data import DataPlan
from pipelines.train.loop import (
    all_reduce_sum,
    count_bad_samples,
    end_of_step,
    finish,
    learning_rates,
    restored_step,
)
from pipelines.train.records_file import open_records

STAGE = "grpo"
PHASES = ("data", "generate", "reward", "logprobs", "update")  # timing/<phase>, seconds per step


@dataclass
class Job:
    """What one worker holds between steps."""

    cfg: RunConfig
    plan: DataPlan
    engine: Any
    reference: Any  # frozen starting policy; None when beta = 0
    processor: Any
    sampling: Sampling
    pool: Any
    records: Any  # pyarrow Table of the train prompts, memory-mapped from run_dir/grpo/records.arrow
    group_names: list[str]
    logger: Any
    rank: int
    world: int
    step: int
    stop_step: int
    trainer_state: dict


class PhaseTimer:
    """Wall seconds per named phase of one step: `with timer("generate"): ...`."""

    def __init__(self):
        self.seconds: dict[str, float] = {}
        self.started = time.perf_counter()

    @contextlib.contextmanager
    def __call__(self, phase: str):
        start = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[phase] = self.seconds.get(phase, 0.0) + time.perf_counter() - start

    def total(self) -> float:
        return time.perf_counter() - self.started


def train_loop(config: dict) -> None:
    """Ray Train entry point; `config` is what pipelines.grpo.stage passes (plain values)."""
    job = setup(config)
    try:
        while job.step < job.stop_step:
            timer = PhaseTimer()
            with timer("data"):
                batch, failures = next_prompts(job)
            if count_bad_samples(job, STAGE, failures, fatal=batch is None):
                job.logger.finish()  # the driver reports why (loop.stop_file); nothing is exported
                return
            _, scores, stats = grpo_step(job, batch, timer)
            job.step += 1
            log_metrics(job, batch, scores, stats, timer)
            end_of_step(job, STAGE, seen="prompts_seen")
        finish(job, STAGE, summary={"reward_pool": job.pool.stats()})
    finally:
        job.pool.close()


def grpo_step(job: Job, batch: PromptBatch, timer: PhaseTimer) -> tuple[Rollouts, Scores, dict]:
    """Generate, score, old/reference log-probs, update: one GRPO step on this worker's prompts."""
    from pipelines.grpo import rollout, scoring, step
    from pipelines.train.deepspeed_setup import unwrapped_for_generation

    grpo, suppress = job.cfg.grpo, job.sampling.suppress_token_ids
    with timer("generate"), unwrapped_for_generation(job.engine) as model:
        model.eval()  # with gradient checkpointing, train mode would switch generation's KV cache off
        try:
            rollouts = rollout.generate(model, batch, job.sampling, shared_prefix=grpo.shared_prefix)
        finally:
            model.train()
    with timer("reward"):
        scores = scoring.score(job.pool, job.processor.tokenizer, batch.records, rollouts, grpo.reward,
                               job.sampling.eos_token_id)  # fmt: skip
    with timer("logprobs"):
        old_logp = step.old_logprobs(job.engine.module, rollouts, grpo, suppress)
        ref_logp = step.reference_logprobs(job.reference, batch, rollouts, grpo, suppress)
    with timer("update"):
        stats = update(job, batch, rollouts, scores, old_logp, ref_logp)
    return rollouts, scores, stats


# --- setup ---


def setup(config: dict) -> Job:
    import ray
    import ray.train
    import torch

    from pipelines.grpo.rollout import sampling_from_config
    from pipelines.reward_actors import RewardPool
    from pipelines.train import deepspeed_setup
    from pipelines.train.metrics_log import rank0_logger, truncate_jsonl
    from pipelines.train.ray_trainer import record_placement

    cfg = RunConfig.model_validate(config["cfg"])
    plan = DataPlan(**config["plan"])
    deepspeed_setup.prepare_env(cfg.train.use_gpu)
    torch.set_num_threads(max(1, int(cfg.train.cpus_per_worker)))
    context = ray.train.get_context()
    rank, world = context.get_world_rank(), context.get_world_size()
    torch.manual_seed(cfg.seed + rank)  # sampling differs across ranks; a resume restores each rank's RNG
    engine, reference, processor, group_names = build_models(cfg, plan, config["start"])
    record_placement(cfg.run_path / STAGE / "workers.json", engine.device)
    step, state = restored_step(engine, config["trainer_state"]["resume_key"])
    logger = rank0_logger(cfg.run_path, STAGE, config={**cfg.model_dump(mode="json"), "start": config["start"]},
                          resume_step=step, use_wandb=cfg.train.wandb)  # fmt: skip
    if rank == 0:
        truncate_jsonl(cfg.run_path / STAGE / "samples.jsonl", step)
    pool = RewardPool(cfg.grpo.reward_pool, cfg.grpo.reward)
    pool.wait_ready()  # actor start-up is not the first step's reward time
    stop = plan.total_steps if cfg.grpo.stop_at_step < 0 else min(plan.total_steps, cfg.grpo.stop_at_step)
    trainer_state = {**config["trainer_state"], "bad_samples": 0 if state is None else state.get("bad_samples", 0)}
    return Job(cfg, plan, engine, reference, processor, sampling_from_config(cfg.grpo, processor.tokenizer), pool,
               open_records(config["records"]), group_names, logger, rank, world, step, max(stop, step),
               trainer_state)  # fmt: skip


def load_policy(cfg: RunConfig, start: dict):
    """(model, processor) from `start` (see stage.start_point): a directory or the preset."""
    import modeling

    if start["dir"]:
        return modeling.load(start["dir"], dtype=cfg.model.dtype)
    m = cfg.model
    return modeling.load(
        m.preset, path=m.path, spatial_weights=m.spatial_weights, dtype=m.dtype, seed=cfg.seed
    )


def load_reference(cfg: RunConfig, start: dict):
    """The frozen reference: a second copy of the starting policy, or None when beta = 0 (nothing
    loaded). Each worker holds a full copy (not sharded by ZeRO)."""
    if cfg.grpo.beta == 0.0:
        return None
    model, _ = load_policy(cfg, start)
    model.eval().requires_grad_(False)
    return model


def build_models(cfg: RunConfig, plan: DataPlan, start: dict):
    """(DeepSpeed engine of the policy, reference or None, processor, optimizer group names)."""
    from pipelines.train.deepspeed_setup import training_engine

    grpo = cfg.grpo
    model, processor = load_policy(cfg, start)
    reference = load_reference(cfg, start)
    model.config.use_cache = True  # generation keeps its KV cache; log-prob passes pass use_cache=False
    engine, names = training_engine(
        model, cfg, grpo, micro_batch_size=grpo.micro_batch_prompts * grpo.num_generations,
        accumulation=grpo.accumulation, total_updates=plan.total_steps * grpo.num_iterations,
    )  # fmt: skip
    if reference is not None:
        reference.to(engine.device)
    return engine, reference, processor, names


# --- one step ---


def next_prompts(job: Job) -> tuple[PromptBatch | None, list[str]]:
    """This worker's prompts of the current step (records read, frames loaded, tokenised; None
    when one had no readable record within reach) and a line per record replaced."""
    from pipelines import media
    from pipelines.grpo.prompts import load_prompts
    from pipelines.train.stage import frame_rule

    plan = job.plan
    positions = plan.rank_positions(job.rank, job.step)[: plan.per_rank]  # [prompts_per_step]
    rows = plan.record_rows(positions).tolist()
    rule = media.FrameRule(**frame_rule(job.cfg, job.cfg.grpo.num_frames))
    batch, failures = load_prompts(job.processor, job.records, rows, job.cfg.grpo, rule)
    return (None if batch is None else batch.to(job.engine.device)), failures


def update(job: Job, batch: PromptBatch, rollouts: Rollouts, scores: Scores, old_logp, ref_logp) -> dict:
    """Advantages of the scored rollouts, then `step.policy_step`; its statistics plus the lrs."""
    from pipelines.grpo import step
    from pipelines.grpo.advantages import step_advantages

    grpo = job.cfg.grpo
    device = rollouts.completion_ids.device
    advantages, keep = step_advantages(scores.total, scores.valid, grpo, world=job.world, device=job.engine.device)
    advantages, keep = advantages.to(device), keep.to(device)  # [N] each
    tokens = float((rollouts.completion_mask * keep[:, None]).sum())
    if grpo.loss_type == "dapo" and job.world > 1:
        (tokens,) = all_reduce_sum([tokens], job.engine.device)
    stats = step.policy_step(
        job.engine, batch, rollouts, advantages, old_logp, ref_logp, grpo, job.sampling.suppress_token_ids,
        keep=keep, num_processes=job.world, global_tokens=tokens,
    )  # fmt: skip
    return {**stats, **learning_rates(job.engine, job.group_names)}


def _gather(obj: Any, world: int) -> list[Any]:
    if world == 1:
        return [obj]
    import torch.distributed as dist

    out: list[Any] = [None] * world
    dist.all_gather_object(out, obj)
    return out


# --- logging, checkpoints, end ---


def log_metrics(job: Job, batch: PromptBatch, scores: Scores, stats: dict, timer: PhaseTimer) -> None:
    """Gather every rank's rewards, update statistics and phase times; rank 0 writes metrics.jsonl
    / W&B (timings: the slowest rank's), and every `grpo.sample_every` steps a sample table."""
    from pipelines.grpo.scoring import merge_columns, reward_metrics

    grpo = job.cfg.grpo
    if job.step % grpo.log_every:  # every rank knows the step: all skip the gather together
        return
    timing = {**timer.seconds, "step": timer.total()}
    parts = _gather({"columns": scores.columns(), "stats": stats, "timing": timing}, job.world)
    if job.rank != 0:
        return
    columns = merge_columns([p["columns"] for p in parts])
    metrics = reward_metrics(columns, grpo.num_generations)
    for key in parts[0]["stats"]:
        metrics[f"train/{key}"] = sum(p["stats"][key] for p in parts) / len(parts)
    slowest = {k: max(p["timing"].get(k, 0.0) for p in parts) for k in (*PHASES, "step")}
    metrics.update({f"timing/{k}": v for k, v in slowest.items()})
    metrics.update({
        "perf/reward_share": slowest["reward"] / slowest["step"],
        "perf/completion_tokens_per_s": sum(columns["length"]) / slowest["step"],
        "perf/rollouts_per_s": len(columns["total"]) / slowest["step"],
        "train/epoch": job.plan.epoch_of_step(job.step),
    })  # fmt: skip
    job.logger.log(job.step, metrics)
    if grpo.sample_every and job.step % grpo.sample_every == 0:
        log_samples(job, batch, scores)


def sample_rows(step: int, records: list[dict], scores: Scores, group_size: int, count: int) -> list[dict]:
    """The first `count` rollouts of this rank: question, completion and its rewards."""
    return [
        {"step": step, "id": records[i // group_size]["id"], "question": records[i // group_size]["question"],
         "ground_truth": records[i // group_size]["ground_truth"], "completion": scores.texts[i],
         "format": scores.format[i], "accuracy": scores.accuracy[i], "total": float(scores.total[i])}
        for i in range(min(count, len(scores.texts)))
    ]  # fmt: skip


def log_samples(job: Job, batch: PromptBatch, scores: Scores) -> None:
    rows = sample_rows(
        job.step, batch.records, scores, job.cfg.grpo.num_generations, job.cfg.grpo.num_samples
    )
    path = job.cfg.run_path / STAGE / "samples.jsonl"
    with path.open("a") as f:
        f.writelines(json.dumps(r) + "\n" for r in rows)
    run = getattr(job.logger, "run", None)  # the W&B run of rank 0's MetricsLogger
    if run is not None:
        import wandb

        columns = list(rows[0])
        run.log({"samples": wandb.Table(columns=columns, data=[[r[c] for c in columns] for r in rows])},
                step=job.step)  # fmt: skip
