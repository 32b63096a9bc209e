"""A `Scan` written in ARKitScenes' 3DOD layout (`arkitscenes.py` reads it): what synthetic fixtures
use to test that reader and a build over mixed sources without downloads.

The scan's aligned frame is written as the world (ARKitScenes' is gravity-aligned, z up). Each
instance becomes an annotation object: its label as `label_of` names it, its box its own
`Instance.box` or else an upright box (yaw only, as ARKitScenes annotates) around its vertices.
Frames get times `start_s + i / scan.fps`; colour PNG, depth PNG in millimetres, a `.pincam` per
frame and the world-to-camera trajectory. Written into a temporary sibling, then renamed.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image
from scipy.spatial import ConvexHull
from scipy.spatial.transform import Rotation

from data_gen.scans.codecs import encode_png16, metres_to_units
from data_gen.scans.ply import write_ply
from data_gen.scans.scan import AnnotatedBox, Instance, Scan
from data_gen.scans.scannet_write import _move_into_place


def upright_box(points: np.ndarray) -> AnnotatedBox:
    """The smallest-area floor rectangle around points [N, 3] (an edge of their hull is one side) x
    their height: axes rows (x-side, y-side, up)."""
    xy = points[:, :2]
    try:
        hull = xy[ConvexHull(xy).vertices]
    except Exception:  # flat or too few points: axis-aligned
        hull = xy
    best = None
    for a, b in zip(hull, np.roll(hull, -1, axis=0), strict=True):
        edge = b - a
        if not np.hypot(*edge):
            continue
        u = edge / np.hypot(*edge)
        v = np.array([-u[1], u[0]])
        pu, pv = xy @ u, xy @ v
        area = np.ptp(pu) * np.ptp(pv)
        if best is None or area < best[0]:
            best = (area, u, v, pu, pv)
    if best is None:
        best = (0.0, np.array([1.0, 0.0]), np.array([0.0, 1.0]), xy[:, 0], xy[:, 1])
    _, u, v, pu, pv = best
    z = points[:, 2]
    centre_xy = u * (pu.min() + pu.max()) / 2 + v * (pv.min() + pv.max()) / 2
    axes = np.array([[u[0], u[1], 0.0], [v[0], v[1], 0.0], [0.0, 0.0, 1.0]])
    return AnnotatedBox(np.array([*centre_xy, (z.min() + z.max()) / 2]), axes,
                        np.array([np.ptp(pu), np.ptp(pv), np.ptp(z)]))  # fmt: skip


def write_arkit_scene(scan: Scan, scene_dir: str | Path, *, label_of: Callable[[Instance], str | None] = lambda i: i.label,
                      start_s: float = 100.0) -> Path:  # fmt: skip
    """Write `scan` as `scene_dir` (named after the video id) in the 3DOD layout; returns the folder.
    Instances whose `label_of` is None are left out of the annotation."""
    if tuple(scan.depth_size) != tuple(scan.color_size):
        raise ValueError(f"{scan.name}: ARKitScenes' colour and depth frames share one size, got {scan.color_size} "
                         f"and {scan.depth_size}")  # fmt: skip
    final = Path(scene_dir)
    vid = final.name
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{vid}.tmp-", dir=final.parent))
    try:
        os.chmod(tmp, 0o755)
        write_ply(tmp / f"{vid}_3dod_mesh.ply", scan.vertices, scan.vertex_colors, scan.faces)
        objects = []
        for inst in scan.instances:
            label = label_of(inst)
            if label is None or not len(inst.vertex_ids):
                continue
            box = inst.box or upright_box(scan.vertices[inst.vertex_ids].astype(np.float64))
            objects.append({"uid": f"{vid}-{inst.object_id}", "label": label, "segments": {"obbAligned": {
                "centroid": [float(v) for v in box.center], "axesLengths": [float(v) for v in box.extents],
                "normalizedAxes": [float(v) for v in np.asarray(box.axes).reshape(-1)]}}})  # fmt: skip
        (tmp / f"{vid}_3dod_annotation.json").write_text(json.dumps({"data": objects, "skipped": False}, indent=1))
        _write_frames(scan, tmp / f"{vid}_frames", vid, start_s)
        _move_into_place(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return final


def _write_frames(scan: Scan, folder: Path, vid: str, start_s: float) -> None:
    for sub in ("lowres_wide", "lowres_depth", "lowres_wide_intrinsics"):
        (folder / sub).mkdir(parents=True)
    k = scan.intrinsic_color
    w, h = scan.color_size
    lines = []
    for i in scan.frames.ids:
        stem = f"{vid}_{start_s + i / scan.fps:.3f}"
        Image.fromarray(scan.frames.color(i)).save(folder / "lowres_wide" / f"{stem}.png")
        (folder / "lowres_depth" / f"{stem}.png").write_bytes(encode_png16(metres_to_units(scan.frames.depth(i))))
        (folder / "lowres_wide_intrinsics" / f"{stem}.pincam").write_text(
            f"{w} {h} {k[0, 0]:.6f} {k[1, 1]:.6f} {k[0, 2]:.6f} {k[1, 2]:.6f}\n")  # fmt: skip
        world_to_camera = np.linalg.inv(scan.frames.pose(i))
        rotation = Rotation.from_matrix(world_to_camera[:3, :3]).as_rotvec()
        lines.append(" ".join(f"{v:.9f}" for v in [start_s + i / scan.fps, *rotation, *world_to_camera[:3, 3]]))
    (folder / "lowres_wide.traj").write_text("\n".join(lines) + "\n")
