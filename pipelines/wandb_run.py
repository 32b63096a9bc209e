"""One W&B run per job, and artifacts that point at files instead of copying them.

Every job of one pipeline logs into the same group (the run_dir's name) with its job as job_type,
so W&B shows a run_dir as one row of synth_scans, build_dataset, sft, grpo and evaluate runs.
Runs are offline, written under run_dir/wandb (`wandb sync run_dir/wandb/offline-run-*` uploads
them later), unless WANDB_API_KEY is in the environment; WANDB_MODE, when set, wins
(`disabled` turns W&B off). The key is read by wandb from the environment, never logged.

Artifacts hold `file://` references with checksums: W&B records what a dataset or report was and
whether it changed, while the files stay where the run wrote them (on shared storage in a cluster).
"""

from __future__ import annotations

import os
import re
from pathlib import Path


def wandb_mode() -> str:
    return os.environ.get("WANDB_MODE") or ("online" if os.environ.get("WANDB_API_KEY") else "offline")


def start_run(run_path: Path, job_type: str, config: dict, *, name: str | None = None):
    """A W&B run for `job_type` in the run_dir's group; the caller finishes it."""
    import wandb

    run_path.mkdir(parents=True, exist_ok=True)  # wandb writes into run_path/wandb
    return wandb.init(
        dir=str(run_path),
        project=os.environ.get("WANDB_PROJECT", "spatial-mllm"),
        group=run_path.name,
        job_type=job_type,
        name=name or f"{run_path.name}-{job_type}",
        config=config,
        mode=wandb_mode(),
        reinit="finish_previous",  # the pipeline runs several jobs in one driver process
        settings=wandb.Settings(console="off", silent=True),
    )


def artifact_name(run_path: Path, kind: str) -> str:
    """`<run_dir name>-<kind>`, with characters W&B refuses in names replaced by '-'."""
    return re.sub(r"[^A-Za-z0-9_.-]", "-", f"{run_path.name}-{kind}")


def log_reference_artifact(run, name: str, kind: str, files: dict[str, Path], metadata: dict | None = None):
    """Log an artifact of `file://` references: `files` maps the name inside the artifact to a
    file or folder (a folder's files are listed one by one). Nothing is uploaded."""
    import wandb

    artifact = wandb.Artifact(name, type=kind, metadata=metadata or {})
    for entry, path in files.items():
        path = Path(path).resolve()
        # A folder's files are added one by one: the same entries as a folder reference, without
        # wandb printing a line per folder.
        inside = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
        for file in inside:
            name_in = entry if file == path else f"{entry}/{file.relative_to(path).as_posix()}"
            artifact.add_reference(file.as_uri(), name=name_in)
    return run.log_artifact(artifact)
