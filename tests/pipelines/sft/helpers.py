"""Helpers for the SFT tests: run folders, shared overrides."""

from __future__ import annotations

import json
from pathlib import Path

SFT_STEPS = 4  # the stage tests' runs: 4 steps of 4 samples over 10 records


def run_dir_with_data(sft_data: Path, run_dir: Path) -> Path:
    """A fresh run_dir whose dataset/ is the shared one (a symlink: nothing is copied)."""
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "dataset").symlink_to(sft_data / "dataset", target_is_directory=True)
    return run_dir


def tiny_overrides(sft_data: Path, run_dir: Path) -> list[str]:
    """The settings every Ray test shares: tiny model, 2 CPU workers, 4 frames, batch 4."""
    return [
        f"run_dir={run_dir}",
        f"data.scans_dir={sft_data / 'scans'}",
        "model.preset=tiny",
        "model.dtype=fp32",
        "train.num_workers=2",
        "train.cpus_per_worker=0.5",
        "train.data_tasks_per_worker=1",
        "train.data_cpus_per_task=0.25",
        "train.wandb=false",
        "sft.global_batch_size=4",
        "sft.micro_batch_size=1",
        "sft.num_frames=4",
        "sft.lr_llm=1e-3",
        "sft.lr_connector=1e-3",
        "sft.warmup_ratio=0.2",
        "sft.save_steps=0",
    ]


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
