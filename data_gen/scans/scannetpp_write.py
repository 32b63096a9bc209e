"""A `Scan` written in ScanNet++'s layout (`scannetpp.py` reads it; iPhone stream), for synthetic
fixtures: the aligned frame as the mesh's, every vertex its own segment (as current releases
have it), instances as `segGroups` under `label_of`'s names, colour JPEG, depth PNG in millimetres
and `aligned_pose` + `intrinsic` per frame, with times `i / scan.fps`. Written into a temporary
sibling, then renamed."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np

from data_gen.scans.codecs import encode_color, encode_png16, metres_to_units
from data_gen.scans.ply import write_ply
from data_gen.scans.scan import Instance, Scan
from data_gen.scans.scannet_write import _move_into_place


def write_scannetpp_scene(scan: Scan, scene_dir: str | Path, *,
                          label_of: Callable[[Instance], str | None] = lambda i: i.label) -> Path:  # fmt: skip
    """Write `scan` as the ScanNet++ scene folder `scene_dir`; returns it. Instances whose
    `label_of` is None are left out of the annotation."""
    final = Path(scene_dir)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.tmp-", dir=final.parent))
    try:
        os.chmod(tmp, 0o755)
        for sub in ("scans", "iphone/rgb", "iphone/depth"):
            (tmp / sub).mkdir(parents=True)
        write_ply(tmp / "scans/mesh_aligned_0.05.ply", scan.vertices, scan.vertex_colors, scan.faces)
        (tmp / "scans/segments.json").write_text(json.dumps({"segIndices": list(range(len(scan.vertices)))}))
        groups = [{"id": inst.object_id, "objectId": inst.object_id, "label": label,
                   "segments": [int(v) for v in inst.vertex_ids]}
                  for inst in scan.instances if (label := label_of(inst)) is not None]  # fmt: skip
        (tmp / "scans/segments_anno.json").write_text(json.dumps({"segGroups": groups}))
        k = scan.intrinsic_color[:3, :3]
        entries = {}
        for i in scan.frames.ids:
            name = f"frame_{i:06d}"
            (tmp / "iphone/rgb" / f"{name}.jpg").write_bytes(encode_color(scan.frames.color(i)))
            (tmp / "iphone/depth" / f"{name}.png").write_bytes(encode_png16(metres_to_units(scan.frames.depth(i))))
            entries[name] = {"timestamp": i / scan.fps, "intrinsic": k.tolist(),
                             "aligned_pose": np.asarray(scan.frames.pose(i)).tolist()}  # fmt: skip
        (tmp / "iphone/pose_intrinsic_imu.json").write_text(json.dumps(entries))
        _move_into_place(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return final
