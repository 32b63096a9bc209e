"""VSI-Bench's scene annotation format (thinking-in-space `data/meta_info/*_meta_info_*.json`), both ways.

One JSON object keyed by scene name; per scene:

    {"room_size": 23.4, "room_center": [x, y, z], "object_counts": {"chair": 2, ...},
     "object_bbox": {"chair": [{"centroid": [3], "axesLengths": [3], "normalizedAxes": [9],
                                "min": [3], "max": [3]}, ...], ...}}

Boxes are `obb.Box3D.to_meta_info` (rows of normalizedAxes = the box axes). What we write adds
three keys VSI-Bench's readers ignore, so that scans -> meta_info -> questions asks exactly what
scans -> questions asks: `object_id` on each box, and `dataset` and `fps` per scene. A file
without them (VSI-Bench's own) gets ids in file order and the dataset the caller names.

Built from a meta_info entry, a scene has no frames: every question type but appearance order.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from data_gen.errors import InputError
from data_gen.qa.metadata import ObjectMeta, SceneMetadata
from data_gen.qa.obb import Box3D
from data_gen.scans.scan import SCANNET_FPS


class MetaInfoError(InputError):
    """A meta_info file or entry that cannot be used; names the file or scene and the problem."""


def scene_entry(meta: SceneMetadata) -> dict[str, Any]:
    """One scene's meta_info entry."""
    boxes: dict[str, list[dict]] = {}
    for o in meta.objects:  # by object id, so each category's list keeps that order
        boxes.setdefault(o.category, []).append({**o.box.to_meta_info(), "object_id": o.object_id})
    return {
        "room_size": meta.room_area,
        "room_center": list(meta.room_center),
        "object_counts": meta.counts,
        "object_bbox": dict(sorted(boxes.items())),
        "dataset": meta.dataset,
        "fps": meta.fps,
    }


def scene_from_entry(name: str, entry: dict[str, Any], dataset: str = "scannet") -> SceneMetadata:
    """The metadata questions are asked from, for a scene known only by its meta_info entry: its
    boxes (exact repeats once), its `object_counts` as the instance counts, no first appearances
    (no frames). An entry is a curated annotation, so the raw-scan filters (`qa.fragment_ratio`,
    `qa.min_instance_vertices`) do not apply: an entry we wrote had them applied when it was built
    from its scan, and VSI-Bench's count every annotated instance."""
    try:
        objects = []
        next_id = 0
        for category, entries in sorted(entry["object_bbox"].items()):
            for box in _distinct(entries):
                object_id = int(box.get("object_id", next_id))
                objects.append((ObjectMeta(object_id, str(category), Box3D.from_meta_info(box), 0), None))
                next_id = max(next_id, object_id) + 1
        area = float(entry["room_size"])
        centre = tuple(float(v) for v in entry.get("room_center", (0.0, 0.0, 0.0)))
        stated = entry.get("object_counts")
        counts = None if stated is None else {str(c): int(n) for c, n in stated.items()}
    except InputError as e:
        raise MetaInfoError(f"scene {name}: {e}") from None
    except (KeyError, TypeError, ValueError, AttributeError) as e:
        raise MetaInfoError(f"scene {name}: malformed meta_info entry ({type(e).__name__}: {e})") from None
    if len({o.object_id for o, _ in objects}) != len(objects):
        raise MetaInfoError(f"scene {name}: two boxes share an object_id")
    kept = sorted((o for o, _ in objects), key=lambda o: o.object_id)
    return SceneMetadata(
        scene_name=name,
        dataset=str(entry.get("dataset", dataset)),
        fps=float(entry.get("fps", SCANNET_FPS)),
        floor_z=min((float(o.box.bounds()[0][2]) for o in kept), default=0.0),
        room_area=area,
        room_center=centre if len(centre) == 3 else (0.0, 0.0, 0.0),
        objects=kept,
        first_appearance={},
        annotated_counts=counts,
    )


def _distinct(boxes: list[dict]) -> list[dict]:
    """A category's boxes with exact repeats dropped. VSI-Bench's ScanNet meta_info lists some
    instances twice with identical values (every printer in 8 of its 88 scenes: 2 boxes where
    `object_counts` says 1, 6 where it says 3), and its questions treat each as one object. Boxes
    with their own, different `object_id`s are kept: they are two objects that coincide."""
    seen, out = set(), []
    for box in boxes:
        try:
            geometry = [np.ravel(np.asarray(box[k], dtype=np.float64)) for k in ("centroid", "axesLengths", "normalizedAxes")]
        except (KeyError, TypeError, ValueError):
            out.append(box)  # malformed: Box3D.from_meta_info names the problem
            continue
        key = (box.get("object_id"), *np.concatenate(geometry).tolist())
        if key not in seen:
            seen.add(key)
            out.append(box)
    return out


def write_meta_info(path: Path, scenes: list[SceneMetadata]) -> None:
    """All scenes' entries, keyed and sorted by scene name."""
    doc = {m.scene_name: scene_entry(m) for m in sorted(scenes, key=lambda m: m.scene_name)}
    path.write_text(json.dumps(doc, indent=1, sort_keys=True) + "\n")


def read_meta_info(path: str | Path) -> dict[str, dict[str, Any]]:
    """scene name -> entry, from a meta_info JSON file. Raises MetaInfoError naming the file."""
    path = Path(path)
    try:
        doc = json.loads(path.read_text())
    except FileNotFoundError:
        raise MetaInfoError(f"{path}: no such meta_info file") from None
    except (OSError, json.JSONDecodeError, UnicodeDecodeError) as e:
        raise MetaInfoError(f"{path}: not a meta_info JSON file ({e})") from None
    if not isinstance(doc, dict) or not doc or not all(isinstance(v, dict) for v in doc.values()):
        raise MetaInfoError(f"{path}: expected an object of scene name -> {{room_size, object_bbox, ...}}")
    missing = [name for name, e in doc.items() if "object_bbox" not in e or "room_size" not in e]
    if missing:
        raise MetaInfoError(f"{path}: scene(s) {missing[:5]} lack room_size or object_bbox")
    return doc
