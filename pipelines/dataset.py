"""Stage 2: the QA dataset under run_dir/dataset, built by Ray Data from the scans."""

from __future__ import annotations

from pathlib import Path

from pipelines.config import RunConfig
from pipelines.run_meta import files_fingerprint, is_complete, write_meta

STAGE = "build_dataset"


def dataset_hash(cfg: RunConfig) -> str:
    """Settings, the input (scans or meta_info file), and the label files by content (an edited
    label map rebuilds)."""
    from data_gen.qa.labels import LabelMapping

    settings = cfg.section_hash("seed", "data.qa", "data.build", "data.meta_info", "data.meta_info_dataset")
    if cfg.data.meta_info:
        return settings + files_fingerprint(Path(cfg.data.meta_info))
    labels = LabelMapping.load(cfg.data.qa, cfg.scans_path()).digest()
    return settings + files_fingerprint(cfg.scans_path()) + labels


def run(cfg: RunConfig, log=print) -> Path:
    """Build run_dir/dataset (skipped when already built from the same scans and settings)."""
    out = cfg.run_path / "dataset"
    key = dataset_hash(cfg)
    if is_complete(out, key):
        log(f"[{STAGE}] already complete: {out}")
        return out
    from data_gen.build.run import DatasetBuildError, build_dataset, list_scenes
    from pipelines.ray_env import ensure_ray

    meta_info = Path(cfg.data.meta_info) if cfg.data.meta_info else None
    if meta_info is None:
        if not list_scenes(cfg.scans_path()):  # a missing or empty folder fails before Ray starts
            raise DatasetBuildError(f"{cfg.scans_path()}: no scene folders")
        ensure_ray(cfg.log_level)
    card = build_dataset(
        None if meta_info else cfg.scans_path(),
        out,
        cfg.run_path / "cache" / "dataset",
        cfg.data.qa,
        cfg.data.build,
        cfg.seed,
        log=log,
        meta_info=meta_info,
        meta_info_dataset=cfg.data.meta_info_dataset,
    )
    log_dataset_to_wandb(cfg, out, card)
    source = {"meta_info": str(meta_info)} if meta_info else {"scans": str(cfg.scans_path())}
    write_meta(out, STAGE, key, cfg.model_dump(mode="json"), source)
    return out


def log_dataset_to_wandb(cfg: RunConfig, out: Path, card: dict) -> None:
    """The build's W&B run: counts per split and question type in the summary, and the dataset
    (card, README, stats plot, rejects, shards) as a `dataset` artifact of file references."""
    from pipelines.wandb_run import artifact_name, log_reference_artifact, start_run

    run = start_run(cfg.run_path, STAGE, cfg.model_dump(mode="json"))
    try:
        summary = {f"dataset/{split}/rows": c["total"] for split, c in card["counts"].items()}
        for split, c in card["counts"].items():
            summary.update({f"dataset/{split}/{qtype}": n for qtype, n in c["by_type"].items()})
        summary["dataset/rejected_scenes"] = len(card["rejects"])
        run.summary.update(summary)
        files = {
            p.name: p for p in sorted(out.iterdir()) if not p.name.startswith(".") and p.name != "meta.json"
        }
        meta = {
            "config_hash": card["config_hash"],
            "rows": {s: c["total"] for s, c in card["counts"].items()},
        }
        log_reference_artifact(run, artifact_name(cfg.run_path, "dataset"), "dataset", files, meta)
    finally:
        run.finish()
