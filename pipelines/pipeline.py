"""The whole run, stage by stage, under one run_dir. A finished stage is skipped, so re-running
resumes where it stopped; a stage stopped early on purpose (sft/grpo `stop_at_step`) stops the
pipeline there. The end prints where everything is and the evaluation table."""

from __future__ import annotations

import importlib
import json
import time
from dataclasses import dataclass

from pipelines.config import RunConfig


@dataclass(frozen=True)
class Stage:
    name: str
    module: str  # a pipelines module with `run(cfg)`; imported when the stage runs, so `--help`
    #              and config errors never wait for torch or Ray.
    folder: str  # its outputs under run_dir, and what they are, for the closing summary
    contents: str


STAGES = [
    Stage("synth_scans", "pipelines.scans", "scans", "one folder per scene"),
    Stage(
        "build_dataset",
        "pipelines.dataset",
        "dataset",
        "README.md, dataset_card.json, stats.png, train/, val/",
    ),
    Stage("sft", "pipelines.sft.stage", "sft", "final/ (the model), metrics.jsonl, checkpoints/"),
    Stage(
        "grpo",
        "pipelines.grpo.stage",
        "grpo",
        "final/ (the model), metrics.jsonl, samples.jsonl, checkpoints/",
    ),
    Stage(
        "evaluate",
        "pipelines.evaluate.run",
        "eval",
        "report.md, report.json, per_task.png, predictions.parquet, completions.jsonl",
    ),
]


def run_pipeline(cfg: RunConfig, log=print, stages: list[Stage] = STAGES) -> bool:
    """Run every stage in order; False when a stage stopped early (run again to go on)."""
    started = time.monotonic()
    log(f"[pipeline] run_dir = {cfg.run_path}")
    for stage in stages:
        if importlib.import_module(stage.module).run(cfg) is None:
            log(f"[pipeline] stopped after {stage.name} (stop_at_step); run the same command again to go on")
            return False
    log(f"[pipeline] done in {time.monotonic() - started:.0f} s; outputs under {cfg.run_path}")
    for line in summary(cfg, stages):
        log(line)
    return True


def summary(cfg: RunConfig, stages: list[Stage] = STAGES) -> list[str]:
    """Where each stage's outputs are, how to see the W&B runs, and the evaluation table."""
    lines = [f"  {stage.name:<14} {_where(cfg, stage)}" for stage in stages]
    wandb_dir = cfg.run_path / "wandb"
    if any(wandb_dir.glob("offline-run-*")):
        lines.append(f"  {'W&B':<14} {wandb_dir} (offline; upload: wandb sync {wandb_dir}/offline-run-*)")
    report = _eval_dir(cfg) / "report.json"
    if report.is_file():
        from pipelines.evaluate.report import text_table

        result = json.loads(report.read_text())
        lines += [
            "",
            f"[pipeline] evaluation of {result.get('model', '?')} on {result.get('source', '?')} (percent):",
        ]
        lines += text_table(result).splitlines()
    return lines


def _eval_dir(cfg: RunConfig):
    """run_dir/eval/<name>: where this config's evaluation writes (one folder per benchmark)."""
    from pipelines.evaluate.run import output_dir

    return output_dir(cfg)


def _where(cfg: RunConfig, stage: Stage) -> str:
    if stage.name == "synth_scans" and cfg.data.scans_dir:
        return f"skipped: scans from {cfg.scans_path()}"
    if stage.name == "evaluate":
        return f"{_eval_dir(cfg)}/  {stage.contents}"
    return f"{cfg.run_path / stage.folder}/  {stage.contents}"
