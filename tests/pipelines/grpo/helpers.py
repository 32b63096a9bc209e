"""Helpers for the GRPO stage tests: the settings the stage runs share."""

from __future__ import annotations

from pathlib import Path

GRPO_STEPS = 4


def grpo_overrides(data: Path, run_dir: Path) -> list[str]:
    """Tiny model, 2 CPU workers (ZeRO-3, fp32) each with one reward actor, GRPO_STEPS steps of
    2 workers x 2 prompts x 4 rollouts; num_iterations 2, beta 0.04, loss dapo."""
    return [
        f"run_dir={run_dir}", f"data.scans_dir={data / 'scans'}", "model.preset=tiny", "model.dtype=fp32",
        "train.num_workers=2", "train.cpus_per_worker=0.5", "train.zero_stage=3", "train.wandb=false",
        f"grpo.max_steps={GRPO_STEPS}", "grpo.prompts_per_step=2", "grpo.micro_batch_prompts=1",
        "grpo.num_generations=4", "grpo.max_completion_length=16", "grpo.num_frames=4", "grpo.num_iterations=2",
        "grpo.beta=0.04", "grpo.loss_type=dapo", "grpo.lr_llm=1e-3", "grpo.lr_connector=1e-3",
        "grpo.save_steps=0", "grpo.sample_every=2", "grpo.num_samples=3",
        "grpo.reward_pool.num_actors=1", "grpo.reward_pool.num_cpus=0.25",
    ]  # fmt: skip
