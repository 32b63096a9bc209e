"""Stage hand-off: each stage's folder gets a `meta.json` (resolved config, its hash, code version,
inputs) written last, so "meta.json with the same hash" means "finished with these settings"."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import time
from pathlib import Path
from typing import Any

META = "meta.json"


def code_version() -> str:
    """The git commit of the code, or "unknown" outside a checkout (e.g. a Ray job package)."""
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=Path(__file__).parent, capture_output=True, text=True, timeout=5
        )
        return out.stdout.strip() or "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def tmp_name(path: Path) -> Path:
    """Where to write `path` before renaming it into place (hidden, unique per process)."""
    return path.with_name(f".{path.name}.tmp{os.getpid()}")


def write_text_atomic(path: Path, text: str) -> None:
    """Write text under a temporary name, then rename: readers never see half a file."""
    tmp = tmp_name(path)
    tmp.write_text(text)
    os.replace(tmp, path)


def write_json_atomic(path: Path, payload: Any) -> None:
    write_text_atomic(path, json.dumps(payload, indent=2, sort_keys=True) + "\n")


def files_fingerprint(path: Path) -> str:
    """Names, sizes and mtimes of the files under a folder, or of one file: a cheap change detector
    for stage skips (the dataset build's own cache hashes contents)."""
    h = hashlib.sha256()
    if path.is_file():
        st = path.stat()
        h.update(f"{path.name}:{st.st_size}:{st.st_mtime_ns}".encode())
    elif path.is_dir():
        for p in sorted(path.rglob("*")):
            if p.is_file():
                st = p.stat()
                h.update(f"{p.relative_to(path)}:{st.st_size}:{st.st_mtime_ns}\n".encode())
    return h.hexdigest()[:16]


def write_meta(folder: Path, stage: str, config_hash: str, config: dict, inputs: dict[str, str]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    write_json_atomic(
        folder / META,
        {
            "stage": stage,
            "config_hash": config_hash,
            "config": config,
            "code_version": code_version(),
            "inputs": inputs,
            "finished_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        },
    )


def read_meta(folder: Path) -> dict | None:
    try:
        return json.loads((folder / META).read_text())
    except (OSError, json.JSONDecodeError):
        return None


def is_complete(folder: Path, config_hash: str) -> bool:
    meta = read_meta(folder)
    return meta is not None and meta.get("config_hash") == config_hash
