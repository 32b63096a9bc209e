"""Per-scene results cached under a key of (scene content, settings), so a killed build restarted
with the same inputs redoes no finished scene, and a changed scene or config is never reused."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

_CHUNK = 1 << 20


def scene_content_hash(scene_dir: Path) -> str:
    """sha256 over every file's relative path and bytes, in sorted order."""
    h = hashlib.sha256()
    for path in sorted(p for p in scene_dir.rglob("*") if p.is_file()):
        h.update(str(path.relative_to(scene_dir)).encode() + b"\0")
        with open(path, "rb") as f:
            while chunk := f.read(_CHUNK):
                h.update(chunk)
        h.update(b"\0")
    return h.hexdigest()


def cache_key(scene_dir: Path, settings_hash: str) -> str:
    return hashlib.sha256(f"{scene_content_hash(scene_dir)}:{settings_hash}".encode()).hexdigest()[:24]


def cache_path(cache_dir: Path, scene: str, key: str) -> Path:
    return cache_dir / f"{scene}-{key}.parquet"


def write_table_atomic(table: pa.Table, path: Path) -> None:
    """Parquet under a temporary name, then rename: a killed writer leaves no half file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    pq.write_table(table, tmp, compression="zstd")
    os.replace(tmp, path)
