"""Stage 2: the QA dataset under run_dir/dataset, built by Ray Data from the scans."""

from __future__ import annotations

import hashlib
from pathlib import Path

from pipelines.config import RunConfig
from pipelines.run_meta import is_complete, write_meta

STAGE = "build_dataset"


def _scans_fingerprint(scans: Path) -> str:
    """Cheap change detector for the stage skip (names, sizes, mtimes). Per-scene caching
    inside the build uses real content hashes, so a re-run after a change is still cheap."""
    h = hashlib.sha256()
    if scans.is_dir():
        for p in sorted(scans.rglob("*")):
            if p.is_file():
                st = p.stat()
                h.update(f"{p.relative_to(scans)}:{st.st_size}:{st.st_mtime_ns}\n".encode())
    return h.hexdigest()[:16]


def dataset_hash(cfg: RunConfig) -> str:
    return cfg.section_hash("seed", "data.qa", "data.build") + _scans_fingerprint(cfg.scans_path())


def run(cfg: RunConfig, log=print) -> Path:
    """Build run_dir/dataset (skipped when already built from the same scans and settings)."""
    out = cfg.run_path / "dataset"
    key = dataset_hash(cfg)
    if is_complete(out, key):
        log(f"[{STAGE}] already complete: {out}")
        return out
    from data_gen.build import build_dataset
    from pipelines.ray_env import ensure_ray

    ensure_ray()
    build_dataset(
        cfg.scans_path(), out, cfg.run_path / "cache" / "dataset", cfg.data.qa, cfg.data.build, cfg.seed, log=log
    )
    write_meta(out, STAGE, key, cfg.model_dump(mode="json"), {"scans": str(cfg.scans_path())})
    return out
