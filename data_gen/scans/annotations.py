"""ScanNet's annotation files: the segs file (`segIndices`: a segment id per mesh vertex) and the
aggregation file (`segGroups`: `{objectId, label, segments}`), read into instances.

A segGroup whose objectId was already read (scene0217_00 lists groups twice), one referring to
segments absent from the segs file, or a malformed one is skipped with its reason; the first valid
group of an objectId is kept, so nothing counts twice.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from data_gen.scans.scan import Instance, ScanError, SkippedInstance


def read_json(path: Path) -> Any:
    try:
        with open(path, "rb") as f:
            return json.load(f)
    except FileNotFoundError:
        raise ScanError(path, "missing file") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ScanError(path, f"truncated or invalid JSON: {e}") from None
    except OSError as e:
        raise ScanError(path, f"cannot read: {e}") from None


def read_seg_indices(path: Path, num_vertices: int) -> np.ndarray:
    doc = read_json(path)
    seg = doc.get("segIndices") if isinstance(doc, dict) else None
    if not isinstance(seg, list):
        raise ScanError(path, "no 'segIndices' list")
    try:
        out = np.array(seg, dtype=np.int64)
    except (ValueError, TypeError, OverflowError):
        raise ScanError(path, "segIndices must be integers") from None
    if out.shape != (num_vertices,):
        raise ScanError(path, f"segIndices has {out.size} entries, mesh has {num_vertices} vertices")
    return out


def read_instances(path: Path, seg_indices: np.ndarray) -> tuple[list[Instance], list[SkippedInstance]]:
    """The aggregation's segGroups as instances, and the groups skipped (see the module docstring)."""
    doc = read_json(path)
    groups = doc.get("segGroups") if isinstance(doc, dict) else None
    if not isinstance(groups, list):
        raise ScanError(path, "no 'segGroups' list")
    # Group vertex ids by segment once (sort), instead of one isin pass per object.
    order = np.argsort(seg_indices, kind="stable")
    segs, starts, counts = np.unique(seg_indices[order], return_index=True, return_counts=True)
    instances: list[Instance] = []
    skipped: list[SkippedInstance] = []
    kept: dict[int, tuple[str, np.ndarray]] = {}  # object id -> (label, segments) of the group read
    for k, g in enumerate(groups):
        try:
            object_id = int(g["objectId"] if "objectId" in g else g["id"])
            label = str(g["label"])
            segments = np.array(g["segments"], dtype=np.int64).reshape(-1)
        except (KeyError, TypeError, ValueError, OverflowError):
            oid, label = _group_id_label(g)
            skipped.append(SkippedInstance(oid, label, f"segGroups[{k}] needs objectId (or id), label and a "
                                                       "segments list of integers"))
            continue
        if object_id in kept:
            first_label, first_segments = kept[object_id]
            same = first_label == label and np.array_equal(np.unique(first_segments), np.unique(segments))
            skipped.append(SkippedInstance(object_id, label, f"segGroups[{k}] repeats objectId {object_id} "
                                           + ("(an exact duplicate)" if same else f"(first read as {first_label!r})")))
            continue
        rows = np.searchsorted(segs, segments)
        known = (rows < len(segs)) & (segs[np.minimum(rows, len(segs) - 1)] == segments) if len(segs) else \
            np.zeros(len(segments), dtype=bool)
        if not known.all():
            unknown = np.unique(segments[~known])
            skipped.append(SkippedInstance(object_id, label, f"segGroups[{k}]: {len(unknown)} of "
                                           f"{len(np.unique(segments))} segments are not in the segs file "
                                           f"{unknown[:5].tolist()}"))
            continue
        parts = [order[starts[r]:starts[r] + counts[r]] for r in np.unique(rows)]
        vertex_ids = np.sort(np.concatenate(parts)) if parts else np.zeros(0, dtype=np.int64)
        kept[object_id] = (label, segments)
        instances.append(Instance(object_id=object_id, label=label, vertex_ids=vertex_ids.astype(np.int64)))
    return instances, skipped


def _group_id_label(g: Any) -> tuple[int | None, str]:
    """Whatever id and label a malformed segGroup has, for the skip report."""
    if not isinstance(g, dict):
        return None, ""
    try:
        oid = int(g["objectId"] if "objectId" in g else g["id"])
    except (KeyError, TypeError, ValueError, OverflowError):
        oid = None
    return oid, str(g.get("label", ""))
