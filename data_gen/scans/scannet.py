"""ScanNet's scene-folder layout read into an aligned `Scan` (`read_scan`; `scannet_write.write_scan`
is the inverse). `read_scan`, `read_color_frames` and `color_frame_ids` also read an ARKitScenes
3DOD scene folder (`arkitscenes.py`, recognised by its `<video_id>_3dod_annotation.json`) and a
ScanNet++ one (`scannetpp.py`, by its `scans/mesh_aligned_0.05.ply`), so everything downstream
reads any of the three sources through them.

A scene folder `scans/<scene>/` holds `<scene>.txt` (key = value lines, incl. axisAlignment),
`<scene>_vh_clean_2.ply`, `<scene>_vh_clean_2.0.010000.segs.json`, `<scene>.aggregation.json`
and the RGB-D stream, found in this order (the first present is read):

1. the export: `color/<n>.jpg`, `depth/<n>.png`, `pose/<n>.txt` (`<n>` plain or zero-padded, any
   subset of the stream's frames), intrinsics from `intrinsic/intrinsic_{color,depth}.txt` or else
   from `<scene>.txt` (fx_color, ...);
2. the C++ exporter's flat layout: `_info.txt` with `frame-<n>.color.jpg`, `frame-<n>.depth.pgm`,
   `frame-<n>.pose.txt` beside it, either in the scene folder itself or in one subfolder of it
   (the exporter writes to whatever folder it is given; two such subfolders are an error). Sizes,
   intrinsics (`m_calibration{Color,Depth}Intrinsic`, 16 numbers row-major) and the depth shift come
   from `_info.txt`, falling back to `<scene>.txt` / 1000; the extrinsics are not used;
3. `<scene>.sens`.

Files hold the UNALIGNED frame, as ScanNet ships them; `read_scan` applies axisAlignment exactly
once and `write_scan` undoes it, so they round-trip. `write_scan` writes the export (plain names)
or `.sens`.

Damage. Real scans have a few broken frames and annotations; neither is fatal on its own.
- Frames: listing checks every frame's files (`scan_frames.py`: missing pose/colour/depth, a pose
  that is not a numeric rigid 4x4, an empty, truncated or garbage image, depth of the wrong size).
  A damaged frame is skipped: it leaves `frames.ids` and appears in `frames.skipped` /
  `Scan.skipped_frames` with its reason. The scene is rejected (ScanError naming it and the counts)
  only when more than `max_bad_frame_fraction` of its listed frames are damaged (default 10%: a few
  bad frames of ~1,650 change no question; more means a broken copy or export whose other frames are
  not to be trusted either). Tracking-lost frames (non-finite poses) are skipped as before and are
  not damage. Damage that only decoding shows (corrupt compressed data behind valid headers) is
  found where a frame is read: `frames.color(i)` / `depth(i)` raise `FrameError(frame=i)`, a
  ScanError (so by default the scene is rejected, never half-processed). A reader of many frames
  may catch it and go on with `scan.without_frames({e.frame: str(e)})`: the frame is skipped and
  counted like the listed damage, against the same threshold (the scan keeps the one it was read
  with). `frame_check="decode"` moves all of it to listing (every image decoded once, slow).
- Annotations (`annotations.py`): a repeated, unknown-segment or malformed segGroup is skipped
  with its reason in `Scan.skipped_instances`.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from data_gen.scans.annotations import read_instances, read_seg_indices
from data_gen.scans.arkitscenes import (
    arkit_color_frame_ids,
    is_arkit_scene,
    read_arkit_color_frames,
    read_arkit_scene,
)
from data_gen.scans.codecs import (
    DEPTH_SHIFT_MM,
    decode_image,
    read_text,
)
from data_gen.scans.ply import read_ply
from data_gen.scans.scan import (
    MAX_BAD_FRAME_FRACTION,
    NON_FINITE_POSE,
    SCANNET_FPS,
    FrameError,
    Frames,
    Scan,
    ScanError,
    check_frame_damage,
)
from data_gen.scans.scan_frames import (
    CHECKS,
    EXPORT_KINDS,
    FLAT_KINDS,
    FileFrames,
    SensFrames,
    list_frame_files,
    read_matrix_txt,
)
from data_gen.scans.scannetpp import (
    is_scannetpp_scene,
    read_scannetpp_color_frames,
    read_scannetpp_scene,
    scannetpp_color_frame_ids,
)
from data_gen.scans.sens import SensFile, read_sens_header

logger = logging.getLogger(__name__)

_INTRINSIC_KEYS = ("fx", "fy", "mx", "my")
FLAT_INFO = "_info.txt"  # the C++ exporter's metadata file, beside its frame-<n>.* files
_EXPORT_DIRS = ("color", "depth", "pose")


@dataclass(frozen=True)
class ScanStream:
    """A scene's RGB-D stream alone (`read_scan_stream`): frames with aligned poses, intrinsics."""

    frames: Frames
    intrinsic_color: np.ndarray
    intrinsic_depth: np.ndarray
    color_size: tuple[int, int]  # (width, height)
    depth_size: tuple[int, int]
    num_frames: int


# --- reading ---


def read_scan(scene_dir: str | Path, *, max_bad_frame_fraction: float = MAX_BAD_FRAME_FRACTION,
              frame_check: str = "headers") -> Scan:
    """Read one ScanNet scene folder (any layout of the module docstring); geometry and poses come
    back axis-aligned.

    max_bad_frame_fraction: the fraction of listed frames that may be damaged (skipped, with their
        reasons in `Scan.skipped_frames`); more raises ScanError. 0 rejects any damage, 1 none.
        Non-finite poses (tracking lost) are not damage.
    frame_check: "headers" checks each image's container bytes while listing (cheap; damage that
        only decoding shows surfaces as FrameError when the frame is read), "decode" decodes them.
    """
    if is_arkit_scene(scene_dir):
        return read_arkit_scene(scene_dir, max_bad_frame_fraction=max_bad_frame_fraction, frame_check=frame_check)
    if is_scannetpp_scene(scene_dir):
        return read_scannetpp_scene(scene_dir, max_bad_frame_fraction=max_bad_frame_fraction, frame_check=frame_check)
    root, info, info_path, align = _scene_info(scene_dir, max_bad_frame_fraction, frame_check)
    name = root.name
    mesh = read_ply(root / f"{name}_vh_clean_2.ply")
    seg_path = root / f"{name}_vh_clean_2.0.010000.segs.json"
    seg_indices = read_seg_indices(seg_path, len(mesh.vertices))
    agg_path = root / f"{name}.aggregation.json"
    instances, skipped_instances = read_instances(agg_path, seg_indices)
    if skipped_instances:
        logger.warning("%s: %d segGroups skipped, first: %s", agg_path, len(skipped_instances), skipped_instances[0])

    stream = _open_stream(root, info, info_path, align, frame_check)
    _check_damage(root, stream.frames, max_bad_frame_fraction)

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
        color_size=stream.color_size,
        depth_size=stream.depth_size,
        frames=stream.frames,
        num_frames=stream.num_frames,
        scene_type=info.get("sceneType", "Unknown"),
        dataset=info.get("dataset", "scannet"),
        fps=_info_float(info, info_path, "fps") if "fps" in info else SCANNET_FPS,
        info=info,
        skipped_instances=skipped_instances,
        max_bad_frame_fraction=max_bad_frame_fraction,
    )


def read_scan_stream(scene_dir: str | Path, *, max_bad_frame_fraction: float = MAX_BAD_FRAME_FRACTION,
                     frame_check: str = "headers") -> ScanStream:
    """The RGB-D stream of a scene folder alone, as `read_scan` reads it (same layouts, alignment,
    damage rules): what a worker that shows frames needs. The mesh, segments and annotations are
    not read, so opening a real-size scan costs its info file and frame listing only."""
    root, info, info_path, align = _scene_info(scene_dir, max_bad_frame_fraction, frame_check)
    stream = _open_stream(root, info, info_path, align, frame_check)
    _check_damage(root, stream.frames, max_bad_frame_fraction)
    return stream


def read_color_frames(scene_dir: str | Path, ids: list[int]) -> list[np.ndarray]:
    """Colour frames `ids` of a scene folder as HxWx3 uint8 RGB, in the order given, reading only
    those images (an export's or the C++ exporter's files, found by name) or, for `.sens`, its
    frame index and those frames: no mesh, annotations, poses or depth. What a worker that shows a
    scan's frames needs; the ids come from the scan's own listing (`read_scan`), which checked
    them. Missing or undecodable images raise FrameError naming them."""
    if is_arkit_scene(scene_dir):
        return read_arkit_color_frames(scene_dir, ids)
    if is_scannetpp_scene(scene_dir):
        return read_scannetpp_color_frames(scene_dir, ids)
    root = Path(scene_dir)
    if any((root / d).is_dir() for d in _EXPORT_DIRS):
        folder, files = root, list_frame_files(root, EXPORT_KINDS[0])
    elif (flat := _flat_folder(root)) is not None:
        folder, files = flat, list_frame_files(flat, FLAT_KINDS[0])
    else:
        sens = SensFile(_sens_path(root))
        files, folder = {i: (None,) for i in range(len(sens))}, None
    missing = [int(i) for i in ids if int(i) not in files]
    if missing:
        raise FrameError(missing[0], root, f"frame {missing[0]} missing (no colour image; frames "
                                           f"{missing[:5]} of the {len(ids)} asked for)")  # fmt: skip
    out = []
    for i in map(int, ids):
        try:
            out.append(sens.color(i) if folder is None else decode_image(folder / files[i][0], where=folder / files[i][0], mode="RGB"))
        except ScanError as e:
            raise FrameError(i, e.path, e.problem) from None
    return out


def _scene_info(scene_dir: str | Path, max_bad_frame_fraction: float, frame_check: str
                ) -> tuple[Path, dict[str, str], Path, np.ndarray]:
    if not 0.0 <= max_bad_frame_fraction <= 1.0:
        raise ValueError(f"max_bad_frame_fraction must be in [0, 1], got {max_bad_frame_fraction}")
    if frame_check not in CHECKS:
        raise ValueError(f"frame_check must be one of {CHECKS}, got {frame_check!r}")
    root = Path(scene_dir)
    if not root.is_dir():
        raise ScanError(root, "missing scene folder")
    info_path = root / f"{root.name}.txt"
    info = read_info(info_path)
    return root, info, info_path, _axis_alignment(info, info_path)


def _check_damage(root: Path, frames: Frames, max_fraction: float) -> None:
    """Warn about skipped frames; ScanError when more than max_fraction of the listed ones are damaged."""
    listed = len(frames.ids) + len(frames.skipped)
    lost = sum(1 for r in frames.skipped.values() if r == NON_FINITE_POSE)
    if lost:
        logger.warning("%s: %d of %d frames have a non-finite pose and are skipped", root, lost, listed)
    damaged = check_frame_damage(root, frames, max_fraction)
    if damaged:
        first = "; ".join(f"frame {i}: {r}" for i, r in damaged[:3]) + ("; ..." if len(damaged) > 3 else "")
        logger.warning("%s: %d of %d frames are damaged and skipped (%s)", root, len(damaged), listed, first)


def color_frame_ids(scene_dir: str | Path) -> list[int]:
    """The frame ids that have a colour image, from file names (or the `.sens` header) only: cheap,
    no pose read, no image checked. For existence checks before reading; ScanError if no stream."""
    if is_arkit_scene(scene_dir):
        return arkit_color_frame_ids(scene_dir)
    if is_scannetpp_scene(scene_dir):
        return scannetpp_color_frame_ids(scene_dir)
    root = Path(scene_dir)
    if any((root / d).is_dir() for d in _EXPORT_DIRS):
        return sorted(list_frame_files(root, EXPORT_KINDS[0]))
    flat = _flat_folder(root)
    if flat is not None:
        return sorted(list_frame_files(flat, FLAT_KINDS[0]))
    return list(range(read_sens_header(_sens_path(root)).num_frames))


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


def _open_stream(root: Path, info: dict[str, str], info_path: Path, align: np.ndarray, check: str) -> ScanStream:
    """The scene's RGB-D stream: the export, else the C++ exporter's folder, else `.sens`."""
    if any((root / d).is_dir() for d in _EXPORT_DIRS):
        return _open_exported(root, info, info_path, align, check)
    flat = _flat_folder(root)
    if flat is not None:
        return _open_flat(flat, info, info_path, align, check)
    return _open_sens(_sens_path(root), align, check)


def _open_exported(root: Path, info: dict[str, str], info_path: Path, align: np.ndarray, check: str) -> ScanStream:
    color_size, depth_size = _info_size(info, info_path, "color"), _info_size(info, info_path, "depth")
    frames = FileFrames.open_export(root, align, depth_size, check)
    intr = root / "intrinsic"
    k_color = read_matrix_txt(intr / "intrinsic_color.txt") if (intr / "intrinsic_color.txt").exists() else \
        _info_intrinsic(info, info_path, "color")
    k_depth = read_matrix_txt(intr / "intrinsic_depth.txt") if (intr / "intrinsic_depth.txt").exists() else \
        _info_intrinsic(info, info_path, "depth")
    stream_len = _stream_len(frames, _info_int(info, info_path, "numColorFrames") if "numColorFrames" in info else 0)
    return ScanStream(frames, k_color, k_depth, color_size, depth_size, stream_len)


def _flat_folder(root: Path) -> Path | None:
    """The folder of the C++ exporter's output: the scene folder or its one subfolder with `_info.txt`."""
    if (root / FLAT_INFO).is_file():
        return root
    try:
        entries = sorted(os.scandir(root), key=lambda e: e.name)
    except OSError as e:
        raise ScanError(root, f"cannot list: {e}") from e
    found = [Path(e.path) for e in entries if e.is_dir() and (Path(e.path) / FLAT_INFO).is_file()]
    if len(found) > 1:
        raise ScanError(root, f"{len(found)} subfolders hold a C++ export ({', '.join(p.name for p in found)}); "
                              "keep one")
    if found:
        return found[0]
    if any(FLAT_KINDS[2].pattern.fullmatch(e.name) for e in entries):
        raise ScanError(root / FLAT_INFO, "missing file (frame-<n>.pose.txt files are here; the C++ exporter "
                                          "writes _info.txt beside them)")
    return None


def _open_flat(folder: Path, info: dict[str, str], info_path: Path, align: np.ndarray, check: str) -> ScanStream:
    meta_path = folder / FLAT_INFO
    meta = read_info(meta_path)

    def size(kind: str) -> tuple[int, int]:
        keys = (f"m_{kind}Width", f"m_{kind}Height")
        if all(k in meta for k in keys):
            return _info_int(meta, meta_path, keys[0]), _info_int(meta, meta_path, keys[1])
        return _info_size(info, info_path, kind)

    def intrinsic(kind: str) -> np.ndarray:
        key = f"m_calibration{kind.capitalize()}Intrinsic"
        return _info_matrix(meta, meta_path, key) if key in meta else _info_intrinsic(info, info_path, kind)

    shift = _info_float(meta, meta_path, "m_depthShift") if "m_depthShift" in meta else DEPTH_SHIFT_MM
    if not np.isfinite(shift) or shift <= 0:
        raise ScanError(meta_path, f"m_depthShift must be a positive number, got {meta['m_depthShift']!r}")
    color_size, depth_size = size("color"), size("depth")
    frames = FileFrames.open_flat(folder, align, shift, depth_size, check, named_from=info_path.parent)
    listed_len = _info_int(meta, meta_path, "m_frames.size") if "m_frames.size" in meta else 0
    return ScanStream(frames, intrinsic("color"), intrinsic("depth"), color_size, depth_size,
                   _stream_len(frames, listed_len))


def _info_matrix(info: dict[str, str], path: Path, key: str) -> np.ndarray:
    """16 numbers on one line (trailing space allowed), a row-major 4x4."""
    try:
        values = [float(v) for v in info[key].split()]
    except ValueError:
        values = []
    if len(values) != 16 or not np.isfinite(values).all():
        raise ScanError(path, f"{key} must be 16 finite numbers, got {info[key]!r}")
    return np.array(values, dtype=np.float64).reshape(4, 4)


def _stream_len(frames: FileFrames, stated: int) -> int:
    """Frames in the stream: an export may hold a subset, so the largest of the stated count and the
    last listed frame + 1."""
    listed = frames.table.frame_ids
    return max(int(listed[-1]) + 1 if len(listed) else 0, stated)


def _sens_path(root: Path) -> Path:
    path = root / f"{root.name}.sens"
    if not path.exists():
        raise ScanError(path, "missing file (and no export: no color/, depth/, pose/ folders, no C++ "
                              f"exporter's {FLAT_INFO} in the scene folder or a subfolder)")
    return path


def _open_sens(path: Path, align: np.ndarray, check: str) -> ScanStream:
    sens = SensFile(path)
    h = sens.header
    return ScanStream(SensFrames.open(sens, align, check), h.intrinsic_color, h.intrinsic_depth,
                   (h.color_width, h.color_height), (h.depth_width, h.depth_height), len(sens))
