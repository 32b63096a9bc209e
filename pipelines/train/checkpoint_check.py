"""Which checkpoint a re-run may resume from: complete ones only, and the settings that differ.

`checkpointing.save` ends every checkpoint with `complete.json` (MANIFEST), written by rank 0 after
every rank has written its files: each file's path and size. Ray Train registers a checkpoint only
once every rank has reported it, so a write cut off mid-way is never one Ray hands back; what can
still break is a registered checkpoint whose files are later deleted or truncated (a full or flaky
disk, a clean-up). Before a run starts, `set_aside_broken` checks Ray's registered checkpoints
newest first against their manifests, moves the broken ones to `<stage>/checkpoints_broken/` and
rewrites Ray Train's run snapshot (`checkpoint_manager_snapshot.json`, Ray 2.60's format: the
checkpoint list and the latest) without them, so Ray hands back the newest complete one. A
checkpoint from before manifests existed is taken as complete.

Hand-written on purpose: Ray Train has no API to drop a registered checkpoint, and its snapshot
refuses to load when a listed folder is missing.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

MANIFEST = "complete.json"
SNAPSHOT = "checkpoint_manager_snapshot.json"


def write_manifest(folder: Path) -> None:
    """Every file under `folder` with its size, written last, atomically (rank 0, after a barrier)."""
    files = {str(p.relative_to(folder)): p.stat().st_size for p in sorted(folder.rglob("*"))
             if p.is_file() and p.name != MANIFEST}  # fmt: skip
    tmp = folder / f".{MANIFEST}.tmp"
    tmp.write_text(json.dumps({"files": files}, indent=1) + "\n")
    os.replace(tmp, folder / MANIFEST)


def checkpoint_problem(folder: Path) -> str | None:
    """Why the checkpoint in `folder` cannot be resumed from (the first missing or cut-off file), or
    None. Without a manifest (an older checkpoint) only its folder and trainer state are checked."""
    if not folder.is_dir():
        return "the folder is missing"
    manifest = folder / MANIFEST
    if not manifest.is_file():
        return None if (folder / "trainer_state.json").is_file() else "no trainer_state.json"
    try:
        files = json.loads(manifest.read_text())["files"]
    except (OSError, ValueError, KeyError, TypeError) as e:
        return f"{MANIFEST} cannot be read ({e})"
    for rel, size in files.items():
        path = folder / rel
        if not path.is_file():
            return f"{rel} is missing"
        if path.stat().st_size != size:
            return f"{rel} holds {path.stat().st_size} of its {size} bytes"
    return None


def set_aside_broken(experiment_dir: Path, log, tag: str) -> list[str]:
    """Move the registered checkpoints that are broken (`checkpoint_problem`) out of Ray's sight,
    newest first until a complete one, and say so; returns their folder names."""
    snapshot_path = experiment_dir / SNAPSHOT
    if not snapshot_path.is_file():
        return []
    snapshot: dict[str, Any] = json.loads(snapshot_path.read_text())
    results = snapshot.get("checkpoint_results", [])
    order = sorted(range(len(results)), key=lambda k: snapshot["checkpoint_report_indices"][k], reverse=True)
    broken: list[str] = []
    for k in order:
        name = results[k]["checkpoint_dir_name"]
        problem = checkpoint_problem(experiment_dir / name)
        if problem is None:
            break
        broken.append(name)
        aside = experiment_dir.parent / f"{experiment_dir.name}_broken" / name
        if (experiment_dir / name).exists():
            aside.parent.mkdir(parents=True, exist_ok=True)
            shutil.rmtree(aside, ignore_errors=True)
            os.replace(experiment_dir / name, aside)
        log(f"[{tag}] checkpoint {name} is incomplete ({problem}); set aside in {aside.parent}")
    if not broken:
        return []
    indices = snapshot["checkpoint_report_indices"]
    keep = [k for k in range(len(results)) if results[k]["checkpoint_dir_name"] not in broken]
    snapshot["checkpoint_results"] = [results[k] for k in keep]
    snapshot["checkpoint_report_indices"] = [indices[k] for k in keep]
    if keep:
        newest = max(keep, key=lambda k: indices[k])
        snapshot["latest_checkpoint_result"] = results[newest]
        log(f"[{tag}] resuming from the newest complete checkpoint, {results[newest]['checkpoint_dir_name']}")
    else:
        snapshot["latest_checkpoint_result"] = None
        log(f"[{tag}] no complete checkpoint is left: starting from the beginning")
    for key in ("validated_checkpoint_dir_names", "timed_out_validation_checkpoint_dir_names",
                "failed_validation_checkpoint_dir_names"):  # fmt: skip
        snapshot[key] = [n for n in snapshot.get(key, []) if n not in broken]
    tmp = snapshot_path.with_name(f".{SNAPSHOT}.tmp")
    tmp.write_text(json.dumps(snapshot))
    os.replace(tmp, snapshot_path)
    return broken


def differing_settings(saved: dict, current: dict) -> list[str]:
    """`key: saved -> current` for every named setting that differs (flat dicts of settings)."""
    keys = sorted(set(saved) | set(current))
    return [f"{k}: {saved.get(k, '(unset)')!r} -> {current.get(k, '(unset)')!r}" for k in keys if saved.get(k) != current.get(k)]
