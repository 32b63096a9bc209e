"""The whole run, stage by stage, under one run_dir. A finished stage is skipped, so re-running
resumes where it stopped. Stages not built yet are reported, not faked."""

from __future__ import annotations

import importlib
from dataclasses import dataclass

from pipelines.config import RunConfig


@dataclass(frozen=True)
class Stage:
    name: str
    module: str | None  # a pipelines module with `run(cfg)`; imported when the stage runs, so
    #                     `--help` and config errors never wait for torch or Ray. None: not built yet.


STAGES = [
    Stage("synth_scans", "pipelines.scans"),
    Stage("build_dataset", "pipelines.dataset"),
    Stage("sft", "pipelines.sft.stage"),
    Stage("grpo", "pipelines.grpo.stage"),
    Stage("evaluate", "pipelines.evaluate.run"),
]


def run_pipeline(cfg: RunConfig, log=print) -> list[str]:
    """Run every built stage in order; return the names of stages that are not built yet."""
    missing = []
    log(f"[pipeline] run_dir = {cfg.run_path}")
    for stage in STAGES:
        if stage.module is None:
            missing.append(stage.name)
            continue
        importlib.import_module(stage.module).run(cfg)
    if missing:
        log(f"[pipeline] not built yet: {', '.join(missing)}")
    log(f"[pipeline] outputs under {cfg.run_path}")
    return missing
