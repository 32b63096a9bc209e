"""Stage 1: synthetic ScanNet-style scans under run_dir/scans (skipped when data.scans_dir is given)."""

from __future__ import annotations

from pathlib import Path

from pipelines.config import RunConfig
from pipelines.run_meta import is_complete, write_meta

STAGE = "synth_scans"


def scans_hash(cfg: RunConfig) -> str:
    return cfg.section_hash("seed", "data.synthetic")


def run(cfg: RunConfig, log=print) -> Path:
    """Write cfg.data.synthetic.num_scenes scenes to run_dir/scans; a no-op when already done."""
    from data_gen.synthetic.scenes import synthesize_scans

    out = cfg.scans_path()
    if cfg.data.scans_dir:
        log(f"[{STAGE}] skipped: data.scans_dir = {out}")
        return out
    syn = cfg.data.synthetic
    if is_complete(out, scans_hash(cfg)):
        log(f"[{STAGE}] already complete: {out}")
        return out
    log(
        f"[{STAGE}] writing {syn.num_scenes} scenes ({syn.num_frames} frames, {syn.width}x{syn.height}) to {out}"
    )
    scenes = synthesize_scans(
        cfg.run_path,
        syn.num_scenes,
        cfg.seed,
        num_frames=syn.num_frames,
        width=syn.width,
        height=syn.height,
        sens=syn.sens,
        layout=syn.layouts,
        **syn.sizes(),
    )
    _log_wandb(cfg, len(scenes))
    write_meta(out, STAGE, scans_hash(cfg), cfg.model_dump(mode="json"), {"scenes": str(len(scenes))})
    log(f"[{STAGE}] done: {len(scenes)} scenes in {out}")
    return out


def _log_wandb(cfg: RunConfig, num_scenes: int) -> None:
    """A W&B run for this job too, so the run_dir's group shows every stage (no artifact: the
    dataset artifact describes what was built from these scans)."""
    from pipelines.wandb_run import start_run

    syn = cfg.data.synthetic
    run = start_run(cfg.run_path, STAGE, cfg.model_dump(mode="json"))
    run.summary.update({"scans/scenes": num_scenes, "scans/frames_per_scene": syn.num_frames})
    run.finish()
