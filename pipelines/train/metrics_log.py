"""Training metrics: `run_dir/<stage>/metrics.jsonl` and a W&B run, both written by rank 0 only.

    log = rank0_logger(run_path, "sft", config=cfg.model_dump(mode="json"))
    log.log(step, {"train/loss": 1.2, "perf/tokens_per_s": 900.0})
    log.finish()

Off rank 0 the logger is a no-op, so the loop calls it unconditionally. On the driver,
`MetricsFollower` turns new metrics.jsonl lines into progress lines while the workers run. W&B runs are
started by `pipelines/wandb_run.py` (offline into run_dir/wandb unless WANDB_API_KEY is set;
grouped by the run_dir's name, job_type = stage).
On resume, lines past the resumed step (from a run that died after its last checkpoint) are
dropped from metrics.jsonl and bad_samples.txt so every step appears once.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

BAD_SAMPLES_FILE = "bad_samples.txt"  # run_dir/<stage>/: every sample replaced, one line each


def world_rank() -> int:
    """This process's rank in the training group (0 outside a distributed run)."""
    try:
        import torch.distributed as dist
    except ImportError:  # pragma: no cover - torch is always there in workers
        return 0
    return dist.get_rank() if dist.is_available() and dist.is_initialized() else 0


def last_step(path: Path) -> int:
    """The highest `step` in a metrics file (0 for none or no file)."""
    if not path.exists():
        return 0
    steps = []
    for line in path.read_text().splitlines():
        try:
            steps.append(int(json.loads(line)["step"]))
        except (ValueError, KeyError, TypeError):
            continue
    return max(steps, default=0)


def truncate_jsonl(path: Path, last_step: int) -> None:
    """Drop lines whose `step` is past last_step (they belong to work a resume redoes)."""
    _truncate(path, last_step, lambda line: json.loads(line)["step"])


def truncate_step_lines(path: Path, last_step: int) -> None:
    """The same for a text log whose lines start `step N: ` (bad_samples.txt)."""
    _truncate(path, last_step, lambda line: int(line.split(":", 1)[0].removeprefix("step ")))


def _truncate(path: Path, last_step: int, step_of) -> None:
    if not path.exists():
        return
    kept = [line for line in path.read_text().splitlines() if line.strip() and step_of(line) <= last_step]
    # A new file renamed into place: a reader (the driver's MetricsFollower) sees the old or the new
    # one, never one half rewritten, and knows it was replaced (another inode).
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text("".join(line + "\n" for line in kept))
    os.replace(tmp, path)


class MetricsLogger:
    """Appends one JSON line per logged step to `metrics.jsonl` and mirrors it to W&B."""

    def __init__(
        self, run_path: Path, stage: str, *, config: dict, resume_step: int = 0, use_wandb: bool = True
    ):
        self.path = run_path / stage / "metrics.jsonl"
        self.path.parent.mkdir(parents=True, exist_ok=True)
        truncate_jsonl(self.path, resume_step)
        # Rank 0's other per-step log: the records a step replaced (pipelines.train.loop.count_bad_samples).
        truncate_step_lines(self.path.parent / BAD_SAMPLES_FILE, resume_step)
        self.run = _start_wandb(run_path, stage, config, resume_step) if use_wandb else None

    def log(self, step: int, metrics: dict) -> None:
        row = {"step": step, "time": round(time.time(), 3), **metrics}
        with self.path.open("a") as f:
            f.write(json.dumps(row) + "\n")
        if self.run is not None:
            self.run.log({"train/step": step, **metrics}, step=step)

    def summary(self, values: dict) -> None:
        if self.run is not None:
            self.run.summary.update(values)

    def finish(self) -> None:
        if self.run is not None:
            self.run.finish()
            self.run = None


class NullLogger:
    """What ranks other than 0 get: every call does nothing."""

    def log(self, step: int, metrics: dict) -> None:
        pass

    def summary(self, values: dict) -> None:
        pass

    def finish(self) -> None:
        pass


def rank0_logger(run_path: Path, stage: str, *, config: dict, resume_step: int = 0, use_wandb: bool = True):
    """A MetricsLogger on rank 0, a NullLogger elsewhere."""
    if world_rank() != 0:
        return NullLogger()
    return MetricsLogger(run_path, stage, config=config, resume_step=resume_step, use_wandb=use_wandb)


def _start_wandb(run_path: Path, stage: str, config: dict, resume_step: int):
    from pipelines.wandb_run import start_run

    name = f"{run_path.name}-{stage}" + (f"-from{resume_step}" if resume_step else "")
    run = start_run(run_path, stage, config, name=name)
    run.define_metric("train/step")
    run.define_metric("*", step_metric="train/step")
    return run


class MetricsFollower:
    """Driver side: prints a progress line every `every` steps while a job's workers append to
    metrics.jsonl (worker stdout does not reach the driver's console).

        with MetricsFollower(run_path / "sft" / "metrics.jsonl", total_steps=50, log=print, tag="sft"):
            trainer.fit()
    """

    def __init__(
        self, path: Path, *, total_steps: int, log, tag: str, every: int | None = None, poll_s: float = 2.0
    ):
        self.path, self.total, self.log, self.tag = path, total_steps, log, tag
        self.every = every or max(1, total_steps // 10)
        self.poll_s = poll_s
        self._offset, self._inode = (path.stat().st_size, path.stat().st_ino) if path.exists() else (0, None)
        self._printed = last_step(path)  # only steps past those already logged are shown
        self._stop = None
        self._thread = None

    def __enter__(self) -> MetricsFollower:
        import threading

        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"{self.tag}-metrics", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self._read()  # whatever arrived after the last poll

    def _run(self) -> None:
        while not self._stop.wait(self.poll_s):
            self._read()

    def _read(self) -> None:
        try:
            stat = self.path.stat()
        except FileNotFoundError:
            return
        if stat.st_ino != self._inode or stat.st_size < self._offset:  # replaced or cut by a resume: start over
            self._inode, self._offset = stat.st_ino, 0
        with self.path.open() as f:
            f.seek(self._offset)
            lines = f.readlines()
            if lines and not lines[-1].endswith("\n"):  # a line still being written
                lines.pop()
            self._offset += sum(len(line.encode()) for line in lines)
        for line in lines:
            try:
                row = json.loads(line)
                step = row["step"]
            except (ValueError, KeyError, TypeError):  # progress lines are best effort: never stop on one
                continue
            if step <= self._printed:  # shown already, or logged before this run (a resume replays them)
                continue
            self._printed = step
            if step % self.every == 0 or step == self.total:
                self.log(f"[{self.tag}] step {step}/{self.total} " + progress_text(row, self.tag))


# What a console progress line shows, per stage: (metrics.jsonl key, format); absent keys are skipped.
PROGRESS_FIELDS = {
    "sft": (("train/loss", "loss {:.4f}"), ("train/grad_norm", "grad norm {:.3f}"), ("train/lr_llm", "lr {:.2e}"),
            ("timing/step_s", "{:.2f} s/step"), ("perf/samples_per_s", "{:.1f} samples/s")),
    "grpo": (("reward/total", "reward {:.3f}"), ("reward/total_std", "std {:.3f}"), ("reward/accuracy", "acc {:.3f}"),
             ("train/kl", "kl {:.4f}"), ("train/completions/mean_length", "len {:.1f}"),
             ("reward/failed", "failed {:.0f}"), ("timing/step", "{:.2f} s/step")),
}  # fmt: skip


def progress_text(row: dict, stage: str) -> str:
    """One metrics.jsonl row as the console shows it, e.g. `reward 1.250, std 0.433, ...`."""
    parts = []
    for key, fmt in PROGRESS_FIELDS[stage]:
        if key in row and not (key == "reward/failed" and not row[key]):  # failures only when there are some
            parts.append(fmt.format(row[key]))
    return ", ".join(parts)
