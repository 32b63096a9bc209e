"""ScanNet's scene-folder layout: `read_scan` (files -> aligned `Scan`) and `write_scan` (the inverse).

A scene folder `scans/<scene>/` holds `<scene>.txt` (key = value lines, incl. axisAlignment),
`<scene>_vh_clean_2.ply`, `<scene>_vh_clean_2.0.010000.segs.json`, `<scene>.aggregation.json`
and the RGB-D stream, either exported (`color/`, `depth/`, `pose/`, `intrinsic/`) or as
`<scene>.sens`. Files hold the UNALIGNED frame, as ScanNet ships them; `read_scan` applies
axisAlignment exactly once and `write_scan` undoes it, so they round-trip.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
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
    read_text,
)
from data_gen.scans.ply import read_ply, write_ply
from data_gen.scans.scan import SCANNET_FPS, Frames, Instance, Scan, ScanError
from data_gen.scans.scan_frames import ExportedFrames, SensFrames, read_matrix_txt
from data_gen.scans.sens import SensFile, SensFrame, SensHeader, write_sens

logger = logging.getLogger(__name__)

_INTRINSIC_KEYS = ("fx", "fy", "mx", "my")


@dataclass(frozen=True)
class _Stream:
    frames: Frames
    intrinsic_color: np.ndarray
    intrinsic_depth: np.ndarray
    color_size: tuple[int, int] | None  # None: not known from the stream itself
    depth_size: tuple[int, int] | None
    num_frames: int


# --- reading ---


def read_scan(scene_dir: str | Path) -> Scan:
    """Read one ScanNet-layout scene folder; geometry and poses come back axis-aligned."""
    root = Path(scene_dir)
    name = root.name
    if not root.is_dir():
        raise ScanError(root, "missing scene folder")
    info_path = root / f"{name}.txt"
    info = read_info(info_path)
    align = _axis_alignment(info, info_path)

    mesh = read_ply(root / f"{name}_vh_clean_2.ply")
    seg_path = root / f"{name}_vh_clean_2.0.010000.segs.json"
    seg_indices = _read_seg_indices(seg_path, len(mesh.vertices))
    agg_path = root / f"{name}.aggregation.json"
    instances = _read_instances(agg_path, seg_indices)

    stream = _open_exported(root, info, info_path, align) if (root / "color").is_dir() else \
        _open_sens(root / f"{name}.sens", info, info_path, align)
    if stream.frames.skipped:
        logger.warning("%s: %d of %d frames have a non-finite pose and are skipped",
                       root, len(stream.frames.skipped), stream.num_frames)

    vertices = mesh.vertices.astype(np.float64) @ align[:3, :3].T + align[:3, 3]  # [V, 3]
    return Scan(
        name=name,
        axis_alignment=align,
        vertices=vertices.astype(np.float32),
        vertex_colors=mesh.colors,
        faces=mesh.faces,
        seg_indices=seg_indices,
        instances=instances,
        intrinsic_color=stream.intrinsic_color,
        intrinsic_depth=stream.intrinsic_depth,
        color_size=stream.color_size or _info_size(info, info_path, "color"),
        depth_size=stream.depth_size or _info_size(info, info_path, "depth"),
        frames=stream.frames,
        num_frames=stream.num_frames,
        scene_type=info.get("sceneType", "Unknown"),
        dataset=info.get("dataset", "scannet"),
        fps=_info_float(info, info_path, "fps") if "fps" in info else SCANNET_FPS,
        info=info,
    )


def read_info(path: Path) -> dict[str, str]:
    """Every `key = value` line of `<scene>.txt`, values as text."""
    text = read_text(path)
    info: dict[str, str] = {}
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        key, sep, value = line.partition("=")
        if not sep or not key.strip():
            raise ScanError(path, f"line {n} is not 'key = value': {line!r}")
        info[key.strip()] = value.strip()
    return info


def _info_float(info: dict[str, str], path: Path, key: str) -> float:
    if key not in info:
        raise ScanError(path, f"missing key {key!r}")
    try:
        return float(info[key])
    except ValueError:
        raise ScanError(path, f"{key} is not a number: {info[key]!r}") from None


def _info_int(info: dict[str, str], path: Path, key: str) -> int:
    value = _info_float(info, path, key)
    if not value.is_integer() or value < 0:
        raise ScanError(path, f"{key} is not a count: {info[key]!r}")
    return int(value)


def _info_size(info: dict[str, str], path: Path, kind: str) -> tuple[int, int]:
    return _info_int(info, path, f"{kind}Width"), _info_int(info, path, f"{kind}Height")


def _info_intrinsic(info: dict[str, str], path: Path, kind: str) -> np.ndarray:
    fx, fy, mx, my = (_info_float(info, path, f"{k}_{kind}") for k in _INTRINSIC_KEYS)
    return np.array([[fx, 0, mx, 0], [0, fy, my, 0], [0, 0, 1, 0], [0, 0, 0, 1]], dtype=np.float64)


def _axis_alignment(info: dict[str, str], path: Path) -> np.ndarray:
    if "axisAlignment" not in info:
        return np.eye(4)
    try:
        values = [float(v) for v in info["axisAlignment"].split()]
    except ValueError:
        values = []
    if len(values) != 16 or not np.isfinite(values).all():
        raise ScanError(path, f"axisAlignment must be 16 finite numbers, got {info['axisAlignment']!r}")
    return np.array(values, dtype=np.float64).reshape(4, 4)  # row-major, as ScanNet writes it


def _read_json(path: Path) -> Any:
    try:
        with open(path, "rb") as f:
            return json.load(f)
    except FileNotFoundError:
        raise ScanError(path, "missing file") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ScanError(path, f"truncated or invalid JSON: {e}") from None
    except OSError as e:
        raise ScanError(path, f"cannot read: {e}") from None


def _read_seg_indices(path: Path, num_vertices: int) -> np.ndarray:
    doc = _read_json(path)
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


def _read_instances(path: Path, seg_indices: np.ndarray) -> list[Instance]:
    doc = _read_json(path)
    groups = doc.get("segGroups") if isinstance(doc, dict) else None
    if not isinstance(groups, list):
        raise ScanError(path, "no 'segGroups' list")
    # Group vertex ids by segment once (sort), instead of one isin pass per object.
    order = np.argsort(seg_indices, kind="stable")
    segs, starts, counts = np.unique(seg_indices[order], return_index=True, return_counts=True)
    instances = []
    for k, g in enumerate(groups):
        try:
            object_id = int(g["objectId"] if "objectId" in g else g["id"])
            label = str(g["label"])
            segments = np.array(g["segments"], dtype=np.int64).reshape(-1)
        except (KeyError, TypeError, ValueError, OverflowError):
            raise ScanError(path, f"segGroups[{k}] needs objectId (or id), label and a segments list") from None
        rows = np.searchsorted(segs, segments)
        known = (rows < len(segs)) & (segs[np.minimum(rows, len(segs) - 1)] == segments) if len(segs) else \
            np.zeros(len(segments), dtype=bool)
        if not known.all():
            raise ScanError(path, f"segGroups[{k}] ({label!r}) refers to unknown segments "
                                  f"{segments[~known][:5].tolist()}")
        parts = [order[starts[r]:starts[r] + counts[r]] for r in np.unique(rows)]
        vertex_ids = np.sort(np.concatenate(parts)) if parts else np.zeros(0, dtype=np.int64)
        instances.append(Instance(object_id=object_id, label=label, vertex_ids=vertex_ids.astype(np.int64)))
    return instances


def _open_exported(root: Path, info: dict[str, str], info_path: Path, align: np.ndarray) -> _Stream:
    frames = ExportedFrames.open(root, align)
    listed = frames.table.frame_ids
    stream_len = int(listed[-1]) + 1 if len(listed) else 0
    if "numColorFrames" in info:  # an export may be subsampled; the stream is as long as the .txt says
        stream_len = max(stream_len, _info_int(info, info_path, "numColorFrames"))
    intr = root / "intrinsic"
    k_color = read_matrix_txt(intr / "intrinsic_color.txt") if (intr / "intrinsic_color.txt").exists() else \
        _info_intrinsic(info, info_path, "color")
    k_depth = read_matrix_txt(intr / "intrinsic_depth.txt") if (intr / "intrinsic_depth.txt").exists() else \
        _info_intrinsic(info, info_path, "depth")
    return _Stream(frames, k_color, k_depth, None, None, stream_len)


def _open_sens(path: Path, info: dict[str, str], info_path: Path, align: np.ndarray) -> _Stream:
    if not path.exists():
        raise ScanError(path, "missing file (and no exported color/ folder)")
    sens = SensFile(path)
    h = sens.header
    return _Stream(SensFrames.open(sens, align), h.intrinsic_color, h.intrinsic_depth,
                   (h.color_width, h.color_height), (h.depth_width, h.depth_height), len(sens))


# --- writing ---


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


def _stream_frames(scan: Scan, unalign: np.ndarray) -> Iterator[tuple[int, np.ndarray, np.ndarray, np.ndarray]]:
    """(index, file-frame pose, colour, depth units) for every listed frame, ascending."""
    frames = scan.frames
    for i in sorted(set(frames.ids) | set(frames.skipped)):
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
    listed = sorted(set(scan.frames.ids) | set(scan.frames.skipped))
    if listed != list(range(scan.num_frames)):
        raise ValueError(f"a .sens stream needs frames 0..{scan.num_frames - 1}; the scan lists {len(listed)}")
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
