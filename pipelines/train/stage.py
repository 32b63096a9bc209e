"""The driver side of a training stage, shared by SFT and GRPO: which settings decide the trained
weights, the hashes that skip a finished stage and refuse a foreign checkpoint, the resource
check, and `run_stage`, the skeleton every training stage runs:

    skip if finished -> warn on fp32 GPUs -> prepare (no Ray) -> start Ray -> check resources
    -> TorchTrainer.fit() with progress lines -> stopped for undecodable samples (BadSamplesError,
    naming them), stopped early, or meta.json and final/

A stage supplies a `StageHooks`: its name and config section, its hash, `prepare`, the resource
need, the start line, the trainer and the inputs its meta.json records.
"""

from __future__ import annotations

import contextlib
import hashlib
import signal
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa

from data_gen.errors import InputError
from pipelines.config import RunConfig
from pipelines.run_meta import is_complete, read_meta, write_meta, write_text_atomic
from pipelines.train import checkpointing, loop
from pipelines.train.checkpoint_check import differing_settings, set_aside_broken
from pipelines.train.data import GoodRecords
from pipelines.train.records_file import RecordsWriter
from pipelines.train.source_formats import TRAIN_SCHEMA

RECORDS_FILE = "records.arrow"


class StageSetupError(InputError):
    """A setting or input that makes training impossible; raised before any worker starts."""


class BadSamplesError(InputError):
    """The workers stopped because too many samples could not be decoded; names them."""


def trajectory_settings(cfg: RunConfig, section: str, resume_free: tuple[str, ...]) -> list:
    """The settings that decide the trained weights: seed, model, the stage's section without
    `resume_free` keys (logging, checkpoint cadence), workers and ZeRO stage. W&B and cluster
    limits are left out, so changing them neither redoes a finished stage nor refuses a resume."""
    settings = {k: v for k, v in getattr(cfg, section).model_dump(mode="json").items() if k not in resume_free}
    return [cfg.seed, cfg.model.model_dump(mode="json"), settings, cfg.train.num_workers, cfg.train.zero_stage]


def settings_hash(payload: list) -> str:
    return hashlib.sha256(repr(payload).encode()).hexdigest()[:16]


def dataset_hash(cfg: RunConfig) -> str:
    return (read_meta(cfg.run_path / "dataset") or {}).get("config_hash", "")


def bad_sample_budget(cfg: RunConfig, skip: bool, records_read: int, skipped: int) -> int:
    """Samples that may still fail to decode during training: none without <stage>.skip_bad_records,
    else what train.max_bad_record_fraction of the records read leaves after those skipped already."""
    if not skip:
        return 0
    return max(0, int(cfg.train.max_bad_record_fraction * records_read) - skipped)


def frame_rule(cfg: RunConfig, num_frames: int) -> dict:
    """The `pipelines.media.FrameRule` fields for a stage showing at most `num_frames` frames."""
    m = cfg.data.mixture
    return {"num_frames": num_frames, "min_frames": min(m.video_min_frames or num_frames, num_frames),
            "interval_s": m.video_interval_s, "fps": m.video_fps}  # fmt: skip


def mixture_inputs(cfg: RunConfig) -> dict:
    """The mixture's sources for a stage's meta.json (nothing for our dataset alone)."""
    return {f"source/{s.name}": f"{s.format}: {s.annotation or s.split}" for s in cfg.data.mixture.sources}


@dataclass(frozen=True)
class StageRecords:
    """The records a stage trains on, in its records file (`records_file.py`), with their ids in
    order (what the resume key hashes) and a line per record left out."""

    path: Path
    ids: list[str]
    skipped: list[str]

    @property
    def num_rows(self) -> int:
        return len(self.ids)


def write_stage_records(cfg: RunConfig, stage: str, parts: Iterable[pa.Table], good: GoodRecords) -> StageRecords:
    """`parts` (the mixture, filtered by the stage) through `good` into run_dir/<stage>/records.arrow,
    a part at a time; when `good` refuses the records (bad-record budget) no file is left."""
    path = cfg.run_path / stage / RECORDS_FILE
    with RecordsWriter(path, TRAIN_SCHEMA) as out:
        for part in parts:
            out.write(good.keep(part))
        skipped = good.finish()
    return StageRecords(path, out.ids, skipped)


def named_settings(cfg: RunConfig, section: str, resume_free: tuple[str, ...], **extra: Any) -> dict[str, Any]:
    """The trajectory settings (`trajectory_settings`) by name, flat (`model.preset`, `sft.lr_llm`,
    ...), plus `extra` (the records' digest, GRPO's start point): what a checkpoint records so that
    a refused resume can name what changed."""
    out: dict[str, Any] = {"seed": cfg.seed, "train.num_workers": cfg.train.num_workers,
                           "train.zero_stage": cfg.train.zero_stage}  # fmt: skip
    out.update({f"model.{k}": v for k, v in cfg.model.model_dump(mode="json").items()})
    out.update({f"{section}.{k}": v for k, v in getattr(cfg, section).model_dump(mode="json").items()
                if k not in resume_free})  # fmt: skip
    return {**out, **extra}


def ids_digest(ids: list[str]) -> str:
    return hashlib.sha256("\n".join(ids).encode()).hexdigest()[:16]


def resume_step(cfg: RunConfig, stage: str, key: str, error: type[StageSetupError], trained_with: str, *,
                settings: dict[str, Any] | None = None, log=print) -> int:  # fmt: skip
    """The step the newest complete checkpoint of `stage` resumes at (0 for none): broken ones are
    set aside first (`checkpoint_check.set_aside_broken`, said in the log). Refuses one written with
    other settings (`key` is the resume key), naming those that differ when the checkpoint recorded
    them (`settings`), else what counts (`trained_with`)."""
    folder = checkpointing.storage_dir(cfg.run_path, stage)
    set_aside_broken(folder, log, stage)
    state = checkpointing.latest_state(folder)
    if state is not None and state.get("resume_key") != key:
        differ = differing_settings(state["settings"], settings) if "settings" in state and settings else []
        what = ("; ".join(differ[:8]) + (f"; and {len(differ) - 8} more" if len(differ) > 8 else "")) if differ \
            else trained_with
        raise error(f"{folder} holds checkpoints trained with other settings ({what}); use another run_dir, or "
                    "delete that folder to start over")  # fmt: skip
    return 0 if state is None else int(state["step"])


def check_resources(cfg: RunConfig, error: type[StageSetupError], *, cpus: float, cpus_text: str) -> None:
    """Refuse (instead of waiting forever) when the cluster lacks the GPUs asked for or the `cpus`
    the stage needs (`cpus_text` says how they add up)."""
    import ray

    train = cfg.train
    if not train.check_resources:
        return
    have = ray.cluster_resources()
    if train.use_gpu and have.get("GPU", 0) < train.num_workers:
        raise error(
            f"train.num_workers={train.num_workers} with train.use_gpu=true needs {train.num_workers} GPUs; "
            f"the Ray cluster has {int(have.get('GPU', 0))}"
        )
    if have.get("CPU", 0) < cpus:
        raise error(f"{cpus_text} need {cpus:g} CPUs, but the Ray cluster has {have.get('CPU', 0):g}")


@dataclass(frozen=True)
class StageHooks:
    """What a training stage supplies to `run_stage`. `prepare(cfg, log)` returns an object with
    `plan` (a DataPlan) and `start_step`; the other hooks take the config and that object."""

    name: str
    stage_hash: Callable[[RunConfig], str]
    prepare: Callable[..., Any]
    check_resources: Callable[[RunConfig], None]
    start_line: Callable[[RunConfig, Any], str]
    build_trainer: Callable[[RunConfig, Any], Any]
    meta_inputs: Callable[[RunConfig, Any], dict]


@contextlib.contextmanager
def on_sigterm(request: Path, name: str, log) -> Iterator[None]:
    """While training: SIGTERM (a spot reclaim, `ray job stop`) writes `request`, which the workers
    see at the next step boundary (`loop.preemption_requested`): they checkpoint there and stop, and
    the job exits 0. Only in the main thread (signals cannot be caught elsewhere)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handle(signum, frame) -> None:
        write_text_atomic(request, f"SIGTERM at {time.strftime('%Y-%m-%d %H:%M:%S')}\n")
        log(f"[{name}] SIGTERM: checkpointing at the next step boundary, then stopping")

    previous = signal.signal(signal.SIGTERM, handle)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def run_stage(cfg: RunConfig, hooks: StageHooks, log=print) -> Path | None:
    """Train (or resume) and export run_dir/<stage>/final; returns it, or None when stopped early by
    <stage>.stop_at_step or by SIGTERM (`on_sigterm`). Skipped when already finished with the same
    settings."""
    name = hooks.name
    out = cfg.run_path / name
    key = hooks.stage_hash(cfg)
    if is_complete(out, key):
        log(f"[{name}] already complete: {out}")
        return out / "final"
    if warning := cfg.precision_warning():
        log(f"[{name}] {warning}")
    prep = hooks.prepare(cfg, log=log)
    from pipelines.ray_env import ensure_ray
    from pipelines.train.metrics_log import MetricsFollower

    ensure_ray(cfg.log_level)
    hooks.check_resources(cfg)
    loop.stop_file(cfg.run_path, name).unlink(missing_ok=True)
    preempt = loop.preempt_file(cfg.run_path, name)
    preempt.unlink(missing_ok=True)
    where = f"resuming at step {prep.start_step}" if prep.start_step else "from scratch"
    log(f"[{name}] {hooks.start_line(cfg, prep)}, {where}")
    total = prep.plan.total_steps
    trainer = hooks.build_trainer(cfg, prep)
    with MetricsFollower(out / "metrics.jsonl", total_steps=total, log=log, tag=name), on_sigterm(preempt, name, log):
        trainer.fit()
    stopped = loop.stop_file(cfg.run_path, name)
    if stopped.exists():
        raise BadSamplesError(f"[{name}] {stopped.read_text().strip()}")
    if preempt.exists():  # SIGTERM: stopped at a checkpoint, unless the last step came first
        preempt.unlink()
        state = checkpointing.latest_state(checkpointing.storage_dir(cfg.run_path, name)) or {}
        step = int(state.get("step", prep.start_step))
        if step < total and not (out / "final").is_dir():
            log(f"[{name}] stopped at step {step}; re-run to resume")
            return None
    stop = getattr(cfg, name).stop_at_step
    if 0 <= stop < total:
        log(f"[{name}] stopped at step {max(stop, prep.start_step)} ({name}.stop_at_step); run again to resume")
        return None
    write_meta(out, name, key, cfg.model_dump(mode="json"), hooks.meta_inputs(cfg, prep))
    log(f"[{name}] done: {out / 'final'}")
    return out / "final"
