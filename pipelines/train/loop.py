"""The worker side shared by the SFT and GRPO loops: resuming, cross-rank sums, the learning rates
of a step, the end of each step (checkpoint when due, the test hook for a failure) and the end of
the run (export, W&B summary). Each stage's `Job` satisfies `TrainJob`; its loop supplies the
batches, the step and what it logs.

    step = restored_step(engine, resume_key)
    while job.step < job.stop_step:
        ...one step...
        job.step += 1
        end_of_step(job, "sft", seen="samples_seen")
    finish(job, "sft", summary={})
"""

from __future__ import annotations

from typing import Any, Protocol

from pipelines.train import checkpointing


class TrainJob(Protocol):
    cfg: Any  # RunConfig
    plan: Any  # DataPlan
    engine: Any
    processor: Any
    logger: Any
    rank: int
    step: int
    first_step: int
    stop_step: int
    trainer_state: dict


def restored_step(engine, resume_key: str) -> tuple[int, dict | None]:
    """Collective: load the checkpoint Ray Train hands over (weights, optimizer, RNG) and return
    (its step, its trainer state), or (0, None) for a fresh start. A checkpoint written with other
    settings is refused (the driver checks first; this guards a race with another run)."""
    state = checkpointing.restore(engine)
    if state is not None and state.get("resume_key") != resume_key:
        raise RuntimeError("the checkpoint was written with other settings than this run's; use a new run_dir")
    return (0 if state is None else int(state["step"])), state


def all_reduce_sum(values: list[float], device) -> list[float]:
    """Collective: the element-wise sum over ranks, in float64 (NCCL reduces on the GPU only)."""
    import torch
    import torch.distributed as dist

    t = torch.tensor(values, dtype=torch.float64, device=device)
    dist.all_reduce(t)
    return t.tolist()


def learning_rates(engine, group_names: list[str]) -> dict[str, float]:
    """`lr_llm`, `lr_connector`: the rates the engine's next update uses, per parameter role."""
    lrs = dict(zip(group_names, engine.get_lr(), strict=True))
    return {f"lr_{role}": lrs.get(role, lrs.get(f"{role}_no_decay", 0.0)) for role in ("llm", "connector")}


def end_of_step(job: TrainJob, stage: str, *, seen: str) -> None:
    """After `job.step` was counted: checkpoint when due (every <stage>.save_steps, and at an
    early stop), recording `seen` (samples or prompts so far); then the failure test hook."""
    from pipelines.train.ray_trainer import inject_failure

    section = getattr(job.cfg, stage)
    if checkpointing.checkpoint_due(job.step, save_steps=section.save_steps, stop_step=job.stop_step,
                                    total_steps=job.plan.total_steps):  # fmt: skip
        state = {**job.trainer_state, seen: job.step * job.plan.global_batch,
                 "epoch": job.plan.epoch_of_step(job.step)}  # fmt: skip
        folder = checkpointing.storage_dir(job.cfg.run_path, stage)
        checkpointing.save(job.engine, folder, step=job.step, trainer_state=state, metrics={"step": job.step})
    inject_failure(f"{stage}.fail_at_step", section.fail_at_step, step=job.step, first_step=job.first_step,
                   rank=job.rank)  # fmt: skip


def finish(job: TrainJob, stage: str, *, summary: dict) -> None:
    """Collective at the end of the run: export run_dir/<stage>/final when the schedule is done,
    then close the W&B run with `summary`."""
    if job.step == job.plan.total_steps:
        checkpointing.export_pretrained(job.engine, job.processor, job.cfg.run_path / stage / "final")
    job.logger.summary({"train/final_step": job.step, **summary})
    job.logger.finish()
