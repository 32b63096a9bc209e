"""`write_scan`: a `Scan` as a ScanNet scene folder, the inverse of `scannet.read_scan`.

Files hold the UNALIGNED frame, as ScanNet ships them (axisAlignment undone), in the export layout
(`color/<i>.jpg`, `depth/<i>.png`, `pose/<i>.txt`, `intrinsic/`) or as one `.sens`. Damaged frames
are not written. Atomic per scene and deterministic: the same Scan gives the same bytes.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from data_gen.scans.codecs import (
    COLOR_JPEG,
    DEPTH_SHIFT_MM,
    DEPTH_ZLIB_USHORT,
    encode_color,
    encode_depth,
    encode_png16,
    metres_to_units,
)
from data_gen.scans.ply import write_ply
from data_gen.scans.scan import NON_FINITE_POSE, SCANNET_FPS, Frames, Instance, Scan
from data_gen.scans.sens import SensFrame, SensHeader, write_sens


def write_scan(scan: Scan, scene_dir: str | Path, *, sens: bool = False) -> Path:
    """Write `scan` as a ScanNet scene folder (files in the unaligned frame); returns the folder.

    Atomic per scene: everything is written into a temporary sibling, then renamed into place.
    Deterministic: the same Scan gives the same bytes.
    """
    final = Path(scene_dir)
    if final.name != scan.name:
        raise ValueError(f"scene folder {final} must be named after the scan ({scan.name})")
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{scan.name}.tmp-", dir=final.parent))
    try:
        os.chmod(tmp, 0o755)  # mkdtemp makes it 0700
        _write_files(scan, tmp, sens)
        _move_into_place(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return final


def _move_into_place(tmp: Path, final: Path) -> None:
    if not final.exists():
        os.rename(tmp, final)
        return
    old = tmp.with_name(tmp.name + ".old")  # unique, since tmp is
    os.rename(final, old)
    os.rename(tmp, final)
    if old.is_dir():
        shutil.rmtree(old, ignore_errors=True)
    else:
        old.unlink()


def _write_files(scan: Scan, out: Path, sens: bool) -> None:
    unalign = np.linalg.inv(scan.axis_alignment)
    name = scan.name
    (out / f"{name}.txt").write_text(_info_text(scan), encoding="utf-8")
    file_vertices = np.asarray(scan.vertices, np.float64) @ unalign[:3, :3].T + unalign[:3, 3]  # [V, 3]
    write_ply(out / f"{name}_vh_clean_2.ply", file_vertices, scan.vertex_colors, scan.faces)
    seg_file = f"{name}_vh_clean_2.0.010000.segs.json"
    seg_indices = np.asarray(scan.seg_indices, dtype=np.int64)
    _write_json(out / seg_file, {"params": {}, "sceneId": name, "segIndices": seg_indices.tolist()})
    _write_json(out / f"{name}.aggregation.json", {
        "sceneId": name, "appId": "data_gen", "segmentsFile": seg_file,
        "segGroups": [_seg_group(inst, seg_indices) for inst in scan.instances],
    })
    if sens:
        _write_sens_stream(scan, out / f"{name}.sens", unalign)
    else:
        _write_exported(scan, out, unalign)


def _write_json(path: Path, doc: dict[str, Any]) -> None:
    path.write_text(json.dumps(doc, sort_keys=True, separators=(",", ":")), encoding="utf-8")


def _seg_group(inst: Instance, seg_indices: np.ndarray) -> dict[str, Any]:
    vertex_ids = np.asarray(inst.vertex_ids, dtype=np.int64)
    segments = np.unique(seg_indices[vertex_ids])
    # ScanNet stores instances as whole segments; anything else would not read back the same.
    if np.isin(seg_indices, segments).sum() != len(np.unique(vertex_ids)):
        raise ValueError(f"instance {inst.object_id} ({inst.label}) does not cover whole segments; "
                         "give each object its own segment ids")
    return {"id": int(inst.object_id), "objectId": int(inst.object_id), "label": inst.label,
            "segments": segments.tolist()}


def _fmt(x: float) -> str:
    return repr(float(x))  # shortest text that round-trips exactly; deterministic


def _matrix_text(m: np.ndarray) -> str:
    return "".join(" ".join(_fmt(v) for v in row) + "\n" for row in np.asarray(m).reshape(4, 4))


def _info_text(scan: Scan) -> str:
    info = dict(scan.info)
    kc, kd = np.asarray(scan.intrinsic_color), np.asarray(scan.intrinsic_depth)
    info.update({
        "axisAlignment": " ".join(_fmt(v) for v in np.asarray(scan.axis_alignment).reshape(16)),
        "colorWidth": str(scan.color_size[0]), "colorHeight": str(scan.color_size[1]),
        "depthWidth": str(scan.depth_size[0]), "depthHeight": str(scan.depth_size[1]),
        "numColorFrames": str(scan.num_frames), "numDepthFrames": str(scan.num_frames),
        "sceneType": scan.scene_type,
    })
    for kind, k in (("color", kc), ("depth", kd)):
        info.update({f"fx_{kind}": _fmt(k[0, 0]), f"fy_{kind}": _fmt(k[1, 1]),
                     f"mx_{kind}": _fmt(k[0, 2]), f"my_{kind}": _fmt(k[1, 2])})
    # Not ScanNet keys: only written when they differ from ScanNet's, so real scenes stay as shipped.
    if scan.dataset != "scannet":
        info["dataset"] = scan.dataset
    if scan.fps != SCANNET_FPS:
        info["fps"] = _fmt(scan.fps)
    for key, value in info.items():
        if "=" in key or "\n" in key + value:
            raise ValueError(f"info entry {key!r} = {value!r} cannot be written as one 'key = value' line")
    return "".join(f"{key} = {info[key]}\n" for key in sorted(info))


def _written_ids(frames: Frames) -> list[int]:
    """The frames a writer writes: the usable ones and the tracking-lost ones (their images are
    fine; ScanNet keeps them), not the damaged ones (nothing to write)."""
    return sorted(set(frames.ids) | {i for i, r in frames.skipped.items() if r == NON_FINITE_POSE})


def _stream_frames(scan: Scan, unalign: np.ndarray) -> Iterator[tuple[int, np.ndarray, np.ndarray, np.ndarray]]:
    """(index, file-frame pose, colour, depth units) for every written frame, ascending."""
    frames = scan.frames
    for i in _written_ids(frames):
        pose = np.asarray(frames.pose(i), dtype=np.float64)
        # Unusable poses are written as ScanNet does: all -inf.
        file_pose = unalign @ pose if np.isfinite(pose).all() else np.full((4, 4), -np.inf)
        color, depth = np.asarray(frames.color(i)), np.asarray(frames.depth(i))
        w, h = scan.color_size
        dw, dh = scan.depth_size
        if color.shape != (h, w, 3) or depth.shape != (dh, dw):
            raise ValueError(f"frame {i}: colour {color.shape} / depth {depth.shape} do not match "
                             f"color_size {scan.color_size} / depth_size {scan.depth_size}")
        yield i, file_pose, color, metres_to_units(depth, DEPTH_SHIFT_MM)


def _write_exported(scan: Scan, out: Path, unalign: np.ndarray) -> None:
    for sub in ("color", "depth", "pose", "intrinsic"):
        (out / sub).mkdir()
    intr = out / "intrinsic"
    (intr / "intrinsic_color.txt").write_text(_matrix_text(scan.intrinsic_color), encoding="utf-8")
    (intr / "intrinsic_depth.txt").write_text(_matrix_text(scan.intrinsic_depth), encoding="utf-8")
    (intr / "extrinsic_color.txt").write_text(_matrix_text(np.eye(4)), encoding="utf-8")
    (intr / "extrinsic_depth.txt").write_text(_matrix_text(np.eye(4)), encoding="utf-8")
    for i, file_pose, color, depth_units in _stream_frames(scan, unalign):
        (out / "pose" / f"{i}.txt").write_text(_matrix_text(file_pose), encoding="utf-8")
        (out / "color" / f"{i}.jpg").write_bytes(encode_color(color, COLOR_JPEG))
        (out / "depth" / f"{i}.png").write_bytes(encode_png16(depth_units))


def _write_sens_stream(scan: Scan, path: Path, unalign: np.ndarray) -> None:
    listed = _written_ids(scan.frames)
    if listed != list(range(scan.num_frames)):
        raise ValueError(f"a .sens stream needs frames 0..{scan.num_frames - 1}; the scan has {len(listed)} "
                         "(a subsampled export, or damaged frames)")
    header = SensHeader(
        intrinsic_color=scan.intrinsic_color, extrinsic_color=np.eye(4),
        intrinsic_depth=scan.intrinsic_depth, extrinsic_depth=np.eye(4),
        color_width=scan.color_size[0], color_height=scan.color_size[1],
        depth_width=scan.depth_size[0], depth_height=scan.depth_size[1],
        color_compression=COLOR_JPEG, depth_compression=DEPTH_ZLIB_USHORT, depth_shift=DEPTH_SHIFT_MM,
    )
    step_us = 1e6 / scan.fps  # timestamps derive from the frame index only (determinism)
    write_sens(path, header, (
        SensFrame(pose, encode_color(color, COLOR_JPEG), encode_depth(units, DEPTH_ZLIB_USHORT),
                  round(i * step_us), round(i * step_us))
        for i, pose, color, units in _stream_frames(scan, unalign)
    ))
