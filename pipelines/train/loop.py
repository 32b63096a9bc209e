"""The worker side shared by the SFT and GRPO loops: resuming, cross-rank sums, the learning rates
of a step, the end of each step (checkpoint when due, the test hook for a failure) and the end of
the run (export, W&B summary), and the count of samples whose frames could not be decoded (each
replaced by the next readable record): past the bad-record budget every rank stops at the same
step and the driver reports the files (`stop_file`). Each stage's `Job` satisfies `TrainJob`; its
loop supplies the batches, the step and what it logs.

    step = restored_step(engine, resume_key)
    while job.step < job.stop_step:
        ...one step...
        job.step += 1
        end_of_step(job, "sft", seen="samples_seen")
    finish(job, "sft", summary={})
"""

from __future__ import annotations

from typing import Any, Protocol

from pipelines.run_meta import write_text_atomic
from pipelines.train import checkpointing
from pipelines.train.metrics_log import BAD_SAMPLES_FILE


class TrainJob(Protocol):
    cfg: Any  # RunConfig
    plan: Any  # DataPlan
    engine: Any
    processor: Any
    logger: Any
    rank: int
    step: int
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


STOP_FILE = "bad_samples.stop"  # run_dir/<stage>/: why the workers stopped early (read by the driver)


def stop_file(run_path, stage: str):
    return run_path / stage / STOP_FILE


def count_bad_samples(job: TrainJob, stage: str, failures: list[str], *, fatal: bool) -> bool:
    """Collective, once a step: this rank's lines for records that failed and were replaced
    (`failures`) and whether a sample could not be made at all (`fatal`). Rank 0 appends every
    rank's lines to run_dir/<stage>/bad_samples.txt; `trainer_state["bad_samples"]` counts them.
    Returns True on every rank when the run must stop: a sample could not be made, or the count
    passed `trainer_state["bad_budget"]`; rank 0 then writes the reason to `stop_file`."""
    import torch.distributed as dist

    count, fatal_ranks = all_reduce_sum([len(failures), float(fatal)], job.engine.device)
    if count == 0 and fatal_ranks == 0:
        return False
    everyone: list = [None] * dist.get_world_size()
    dist.all_gather_object(everyone, failures)
    lines = [line for part in everyone for line in part]
    job.trainer_state["bad_samples"] = job.trainer_state.get("bad_samples", 0) + int(count)
    over = job.trainer_state["bad_samples"] > job.trainer_state.get("bad_budget", 0)
    if job.rank == 0:
        folder = job.cfg.run_path / stage
        with (folder / BAD_SAMPLES_FILE).open("a") as f:
            f.writelines(f"step {job.step + 1}: {line}\n" for line in lines)
        if fatal_ranks or over:
            why = ("a step had no readable record within reach" if fatal_ranks else
                   f"{job.trainer_state['bad_samples']} samples could not be decoded, more than the budget of "
                   f"{job.trainer_state.get('bad_budget', 0)} (train.max_bad_record_fraction, {stage}.skip_bad_records)")  # fmt: skip
            listing = "\n".join(f"  {line}" for line in lines[:10])
            write_text_atomic(stop_file(job.cfg.run_path, stage), f"stopped at step {job.step + 1}: {why}:\n"
                              f"{listing}\nevery one: {folder / BAD_SAMPLES_FILE}\n")  # fmt: skip
    return bool(fatal_ranks or over)


PREEMPT_FILE = "preempt.request"  # run_dir/<stage>/: the driver got SIGTERM; stop at the next step


def preempt_file(run_path, stage: str):
    return run_path / stage / PREEMPT_FILE


def preemption_requested(job: TrainJob, stage: str) -> bool:
    """Collective, once a step: whether any rank sees the driver's stop request (a SIGTERM, as a
    spot reclaim sends it). Ranks agree through one all-reduce, so all stop at the same step even
    when the file appears while they check."""
    seen = preempt_file(job.cfg.run_path, stage).exists()
    return all_reduce_sum([float(seen)], job.engine.device)[0] > 0


def learning_rates(engine, group_names: list[str]) -> dict[str, float]:
    """`lr_llm`, `lr_connector`: the rates the engine's next update uses, per parameter role."""
    lrs = dict(zip(group_names, engine.get_lr(), strict=True))
    return {f"lr_{role}": lrs.get(role, lrs.get(f"{role}_no_decay", 0.0)) for role in ("llm", "connector")}


def end_of_step(job: TrainJob, stage: str, *, seen: str) -> None:
    """After `job.step` was counted: stop here when the driver asked (`preemption_requested`);
    checkpoint when due (every <stage>.save_steps, and at an early stop), recording `seen`
    (samples or prompts so far)."""
    section = getattr(job.cfg, stage)
    if job.step < job.stop_step and preemption_requested(job, stage):
        job.stop_step = job.step  # checkpoint now (an early stop), then the loop ends
    if checkpointing.checkpoint_due(job.step, save_steps=section.save_steps, stop_step=job.stop_step,
                                    total_steps=job.plan.total_steps):  # fmt: skip
        state = {**job.trainer_state, seen: job.step * job.plan.global_batch,
                 "epoch": job.plan.epoch_of_step(job.step)}  # fmt: skip
        folder = checkpointing.storage_dir(job.cfg.run_path, stage)
        checkpointing.save(job.engine, folder, step=job.step, trainer_state=state, metrics={"step": job.step})


def finish(job: TrainJob, stage: str, *, summary: dict) -> None:
    """Collective at the end of the run: export run_dir/<stage>/final when the schedule is done,
    then close the W&B run with `summary`."""
    if job.step == job.plan.total_steps:
        checkpointing.export_pretrained(job.engine, job.processor, job.cfg.run_path / stage / "final")
    job.logger.summary({"train/final_step": job.step, **summary})
    job.logger.finish()
