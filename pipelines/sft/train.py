"""The SFT loop that runs inside every Ray Train worker.

Setup: the model from `model.preset`/`model.path` in `model.dtype`, the recipe's parameter groups
(encoders frozen), DeepSpeed ZeRO with a torch AdamW and the warmup + decay schedule, then the
latest checkpoint if Ray Train hands one over (weights, optimizer, scheduler, RNG, step). Each
step takes A micro-batches from this worker's stream, runs forward/backward on each and one
optimizer step; rank 0 logs; every `sft.save_steps` all ranks checkpoint; at the end the
consolidated model is exported to run_dir/sft/final.

Loss (`sft.loss_normalization`): `tokens` (default) = cross-entropy summed over the answer tokens
of the whole global batch (all workers, all micro-batches) divided by their count, so every
answer token weighs the same however samples fall into micro-batches. DeepSpeed averages gradients
over workers and is told not to divide by the accumulation, so each micro-batch's loss is its
token sum / (global count / workers). `samples` = the authors' HF Trainer: each micro-batch's mean
over its own answer tokens / the accumulation, averaged over workers.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from pipelines.config import RunConfig
from pipelines.sft.data import micro_batches, rank_dataset_name, start_early
from pipelines.sft.samples import IGNORE, collate
from pipelines.train.data import DataPlan
from pipelines.train.loop import (
    all_reduce_sum,
    count_bad_samples,
    end_of_step,
    finish,
    learning_rates,
    restored_step,
)

STAGE = "sft"


@dataclass
class Job:
    """What one worker holds between steps."""

    cfg: RunConfig
    plan: DataPlan
    engine: Any
    processor: Any
    group_names: list[str]
    logger: Any
    batches: Any
    rank: int
    step: int
    stop_step: int
    trainer_state: dict  # what every checkpoint records besides the step (resume key, counters)


def train_loop(config: dict) -> None:
    """Ray Train entry point; `config` is what pipelines.sft.stage passes (plain dicts)."""
    job = setup(config)
    while job.step < job.stop_step:
        started = time.perf_counter()
        micro, data_s, failures = next_step_batches(job)
        if count_bad_samples(job, STAGE, failures, fatal=micro is None):
            job.logger.finish()  # the driver reports why (loop.stop_file); nothing is exported
            return
        stats = train_step(job, micro)
        job.step += 1
        log_step(job, stats, data_s=data_s, step_s=time.perf_counter() - started)
        end_of_step(job, STAGE, seen="samples_seen")
    finish(job, STAGE, summary={})


def setup(config: dict) -> Job:
    import ray.train
    import torch

    from pipelines.train import deepspeed_setup
    from pipelines.train.metrics_log import rank0_logger
    from pipelines.train.ray_trainer import record_placement

    cfg = RunConfig.model_validate(config["cfg"])
    plan = DataPlan(**config["plan"])
    rank = ray.train.get_context().get_world_rank()
    shard = ray.train.get_dataset_shard(rank_dataset_name(rank))
    raw = start_early(
        shard.iter_batches(
            batch_size=plan.micro_batch, batch_format="pyarrow", prefetch_batches=cfg.train.prefetch_batches
        )
    )
    deepspeed_setup.prepare_env(cfg.train.use_gpu)
    torch.set_num_threads(max(1, int(cfg.train.cpus_per_worker)))
    torch.manual_seed(cfg.seed)
    engine, processor, group_names = build_engine(cfg, plan)
    record_placement(cfg.run_path / STAGE / "workers.json", engine.device)
    step, state = restored_step(engine, config["trainer_state"]["resume_key"])
    logger = rank0_logger(
        cfg.run_path,
        STAGE,
        config={**cfg.model_dump(mode="json"), "plan": config["plan"]},
        resume_step=step,
        use_wandb=cfg.train.wandb,
    )
    batches = micro_batches(raw, plan, rank, config["start_step"], step)
    stop = plan.total_steps if cfg.sft.stop_at_step < 0 else min(plan.total_steps, cfg.sft.stop_at_step)
    trainer_state = {
        **config["trainer_state"],
        "truncated": 0 if state is None else state.get("truncated", 0),
        "bad_samples": 0 if state is None else state.get("bad_samples", 0),
    }
    return Job(cfg, plan, engine, processor, group_names, logger, batches, rank, step, max(stop, step),
               trainer_state)  # fmt: skip


def build_engine(cfg: RunConfig, plan: DataPlan):
    """(DeepSpeed engine, processor, optimizer group names) for the configured model."""
    import modeling
    from pipelines.train.deepspeed_setup import training_engine

    m = cfg.model
    model, processor = modeling.load(m.preset, path=m.path, spatial_weights=m.spatial_weights, dtype=m.dtype,
                                     seed=cfg.seed)  # fmt: skip
    model.config.use_cache = False
    engine, names = training_engine(model, cfg, cfg.sft, micro_batch_size=plan.micro_batch,
                                    accumulation=plan.accumulation, total_updates=plan.total_steps)  # fmt: skip
    return engine, processor, names


def next_step_batches(job: Job) -> tuple[list | None, float, list[str]]:
    """The A micro-batches of the next optimizer step (collated tensors, each carrying how many
    of its samples were truncated; None when a sample could not be made at all), the wait for
    them in seconds, and a line per record that failed and was replaced."""
    started = time.perf_counter()
    micro: list | None = []
    failures: list[str] = []
    for _ in range(job.plan.accumulation):
        _, samples, truncated, failed = next(job.batches)
        failures += failed
        if micro is not None and all(s is not None for s in samples):
            micro.append({**collate(samples, job.processor), "truncated": truncated})
        else:
            micro = None
    return micro, time.perf_counter() - started, failures


def train_step(job: Job, micro: list[dict]) -> dict:
    """One optimizer step over A micro-batches; returns global loss, token and norm statistics."""
    import torch

    engine, world = job.engine, job.plan.world_size
    label_tokens = sum(int((b["labels"] != IGNORE).sum()) for b in micro)
    seq_tokens = sum(int(b["attention_mask"].sum()) for b in micro)
    truncated = sum(b.pop("truncated") for b in micro)
    global_labels, global_tokens, global_truncated = all_reduce_sum(
        [label_tokens, seq_tokens, truncated], engine.device
    )
    job.trainer_state["truncated"] += int(global_truncated)
    per_rank_count = torch.tensor(max(global_labels, 1.0) / world, dtype=torch.float32, device=engine.device)
    per_sample = job.cfg.sft.loss_normalization == "samples"
    rates = learning_rates(engine, job.group_names)  # the rates this step uses
    loss_sum = 0.0
    for batch in micro:
        batch = {k: v.to(engine.device) for k, v in batch.items()}
        if per_sample:  # this micro-batch's mean over its answer tokens (0, not nan, when it has none)
            count = torch.tensor(max(int((batch["labels"] != IGNORE).sum()), 1), dtype=torch.float32,
                                 device=engine.device)  # fmt: skip
            out = engine(**batch, use_cache=False, num_items_in_batch=count)
            loss = out.loss / len(micro)
        else:
            out = engine(**batch, use_cache=False, num_items_in_batch=per_rank_count)
            loss = out.loss
        engine.backward(loss, scale_wrt_gas=False)
        engine.step()
        loss_sum += float(loss.detach())
    (loss,) = all_reduce_sum([loss_sum / world], engine.device)
    norm = engine.get_global_grad_norm()
    return {
        "loss": loss,
        "grad_norm": float(norm) if norm is not None else float("nan"),
        **rates,
        "label_tokens": global_labels,
        "tokens": global_tokens,
    }


def log_step(job: Job, stats: dict, *, data_s: float, step_s: float) -> None:
    job.logger.log(
        job.step,
        {
            "train/loss": stats["loss"],
            "train/grad_norm": stats["grad_norm"],
            "train/lr_llm": stats["lr_llm"],
            "train/lr_connector": stats["lr_connector"],
            "train/epoch": job.plan.epoch_of_step(job.step),
            "train/label_tokens": stats["label_tokens"],
            "perf/tokens_per_s": stats["tokens"] / step_s,
            "perf/samples_per_s": job.plan.global_batch / step_s,
            "timing/step_s": step_s,
            "timing/data_s": data_s,
            "data/truncated": job.trainer_state["truncated"],
            "data/skipped_records": job.trainer_state["skipped_records"],
            "data/bad_samples": job.trainer_state["bad_samples"],
        },
    )
