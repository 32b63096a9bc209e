"""ARKitScenes' 3DOD layout read into a `Scan` (`read_arkit_scene`; `arkitscenes_write.write_arkit_scene`
is the inverse, for synthetic fixtures).

A scene folder `<video_id>/` holds:
- `<video_id>_3dod_mesh.ply`: the mesh (vertex colours, faces);
- `<video_id>_3dod_annotation.json`: `data` = objects, each with `label` and
  `segments.obbAligned` = {`centroid` [3], `axesLengths` [3] (full lengths), `normalizedAxes` [9]:
  a 3x3 matrix, row-major, whose ROWS are the box axes}; `skipped` true marks an unusable scene;
- `<video_id>_frames/`: `lowres_wide/<video_id>_<t>.png` (RGB) and `lowres_depth/<same name>` (uint16
  millimetres, 0 = none), `t` the frame time in seconds with 3 decimals; `lowres_wide_intrinsics/
  <same stem>.pincam` (one line: width height fx fy cx cy); `lowres_wide.traj` (a line per pose:
  time, axis-angle rotation in radians (3), translation in metres (3), the WORLD-TO-CAMERA transform).

Everything is in one gravity-aligned world, z up, metres; cameras are OpenCV (x right, y down, z
forward). So the axis alignment is the identity. Frames are numbered 0.. in time order (the depth
files listed); a frame takes the trajectory pose at its time (to 5 ms, as ARKitScenes' own loader
matches them), and one without is skipped as damaged. The intrinsics are the first frame's (they
vary by a fraction of a pixel). The frame rate is measured from the frame times. Boxes are the
annotation's own (`Instance.box`); an instance's vertices are the mesh vertices inside its box (for
visibility). Malformed objects are skipped with the reason (`Scan.skipped_instances`).
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import numpy as np
from scipy.spatial.transform import Rotation

from data_gen.scans.codecs import DEPTH_SHIFT_MM, decode_image, read_text
from data_gen.scans.ply import read_ply
from data_gen.scans.scan import (
    MAX_BAD_FRAME_FRACTION,
    AnnotatedBox,
    FrameError,
    Instance,
    Scan,
    ScanError,
    SkippedInstance,
    check_frame_damage,
)
from data_gen.scans.scan_frames import CHECKS, FileFrames, PoseTable, _image_problem

POSE_TOLERANCE_S = 0.005
BOX_MARGIN = 0.02  # metres around a box within which mesh vertices count as the object's


def is_arkit_scene(scene_dir: str | Path) -> bool:
    root = Path(scene_dir)
    return (root / f"{root.name}_3dod_annotation.json").is_file()


def read_arkit_scene(scene_dir: str | Path, *, max_bad_frame_fraction: float = MAX_BAD_FRAME_FRACTION,
                     frame_check: str = "headers") -> Scan:  # fmt: skip
    """Read one ARKitScenes 3DOD scene folder (the module docstring's layout). Raises ScanError
    naming the file for what cannot be read; damaged frames are skipped up to max_bad_frame_fraction."""
    if frame_check not in CHECKS:
        raise ValueError(f"frame_check must be one of {CHECKS}, got {frame_check!r}")
    root = Path(scene_dir)
    name = root.name
    mesh = read_ply(root / f"{name}_3dod_mesh.ply")
    vertices = mesh.vertices.astype(np.float64)
    instances, skipped = read_boxes(root / f"{name}_3dod_annotation.json", vertices)
    frames, intrinsic, size, fps = open_frames(root / f"{name}_frames", name, frame_check)
    check_frame_damage(root, frames, max_bad_frame_fraction)
    return Scan(
        name=name, axis_alignment=np.eye(4), vertices=mesh.vertices, vertex_colors=mesh.colors, faces=mesh.faces,
        seg_indices=np.arange(len(vertices), dtype=np.int64), instances=instances, intrinsic_color=intrinsic,
        intrinsic_depth=intrinsic.copy(), color_size=size, depth_size=size, frames=frames,
        num_frames=len(frames.ids) + len(frames.skipped), dataset="arkitscenes", fps=fps,
        skipped_instances=skipped, max_bad_frame_fraction=max_bad_frame_fraction,
    )  # fmt: skip


def read_boxes(path: Path, vertices: np.ndarray) -> tuple[list[Instance], list[SkippedInstance]]:
    """The annotation's objects as instances with their boxes (ids 1.. in file order)."""
    try:
        doc = json.loads(read_text(path))
    except json.JSONDecodeError as e:
        raise ScanError(path, f"not valid JSON ({e.msg}, line {e.lineno})") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("data"), list):
        raise ScanError(path, "needs a `data` list of objects")
    if doc.get("skipped") is True:
        raise ScanError(path, "the annotation marks this scene as skipped")
    instances, skipped = [], []
    for k, obj in enumerate(doc["data"], 1):
        label = obj.get("label", "") if isinstance(obj, dict) else ""
        try:
            obb = obj["segments"]["obbAligned"]
            center = np.asarray(obb["centroid"], dtype=np.float64).reshape(3)
            axes = np.asarray(obb["normalizedAxes"], dtype=np.float64).reshape(3, 3)
            extents = np.asarray(obb["axesLengths"], dtype=np.float64).reshape(3)
        except (KeyError, TypeError, ValueError) as e:
            skipped.append(SkippedInstance(k, str(label), f"data[{k - 1}]: no readable segments.obbAligned ({e})"))
            continue
        if not (np.isfinite(center).all() and np.isfinite(axes).all() and np.isfinite(extents).all()) or (extents < 0).any():
            skipped.append(SkippedInstance(k, str(label), f"data[{k - 1}]: a non-finite or negative box value"))
            continue
        if np.abs(axes @ axes.T - np.eye(3)).max() > 1e-3:
            skipped.append(SkippedInstance(k, str(label), f"data[{k - 1}]: normalizedAxes is not a rotation"))
            continue
        local = (vertices - center) @ axes.T  # [V, 3] in the box's axes
        inside = np.flatnonzero((np.abs(local) <= extents / 2 + BOX_MARGIN).all(axis=1))
        instances.append(Instance(k, str(label), inside.astype(np.int64), AnnotatedBox(center, axes, extents)))
    return instances, skipped


def _frame_time(stem: str) -> str:
    """`<video_id>_<t>` -> `<t>` as written (3 decimals)."""
    return stem.rsplit("_", 1)[-1]


def read_trajectory(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """(times [M], camera-to-world poses [M, 4, 4]) of a `.traj` file, sorted by time."""
    times, poses = [], []
    for n, line in enumerate(read_text(path).splitlines(), 1):
        if not line.strip():
            continue
        try:
            values = [float(v) for v in line.split()]
        except ValueError:
            raise ScanError(path, f"line {n}: not 7 numbers") from None
        if len(values) != 7:
            raise ScanError(path, f"line {n}: {len(values)} numbers, expected 7 (time, rotation, translation)")
        world_to_camera = np.eye(4)
        world_to_camera[:3, :3] = Rotation.from_rotvec(values[1:4]).as_matrix()
        world_to_camera[:3, 3] = values[4:7]
        times.append(values[0])
        poses.append(np.linalg.inv(world_to_camera))
    if not times:
        raise ScanError(path, "no poses")
    order = np.argsort(times, kind="stable")
    return np.asarray(times)[order], np.asarray(poses)[order]


def read_pincam(path: Path) -> tuple[np.ndarray, tuple[int, int]]:
    """([4, 4] intrinsics, (width, height)) of a `.pincam` file."""
    try:
        w, h, fx, fy, cx, cy = (float(v) for v in read_text(path).split())
    except ValueError:
        raise ScanError(path, "needs 6 numbers: width height fx fy cx cy") from None
    k = np.eye(4)
    k[0, 0], k[1, 1], k[0, 2], k[1, 2] = fx, fy, cx, cy
    return k, (int(w), int(h))


def open_frames(folder: Path, name: str, check: str) -> tuple[FileFrames, np.ndarray, tuple[int, int], float]:
    """(frames, intrinsics, (width, height), frames per second) of a `<video_id>_frames` folder."""
    stems, color_names = _stems(folder)
    if not stems:
        raise ScanError(folder / "lowres_depth", "no frames")
    times = np.array([float(_frame_time(s)) for s in stems])
    traj_times, traj_poses = read_trajectory(folder / "lowres_wide.traj")
    nearest = np.clip(np.searchsorted(traj_times, times), 1, len(traj_times) - 1)
    nearest = np.where(np.abs(traj_times[nearest - 1] - times) <= np.abs(traj_times[nearest] - times), nearest - 1, nearest)
    if len(traj_times) == 1:
        nearest = np.zeros(len(times), dtype=np.int64)
    intrinsic, size = read_pincam(folder / "lowres_wide_intrinsics" / f"{stems[0]}.pincam")
    poses = np.full((len(stems), 4, 4), np.nan)
    damaged: dict[int, str] = {}
    for i, stem in enumerate(stems):
        color, depth = f"lowres_wide/{stem}.png", f"lowres_depth/{stem}.png"
        if not (folder / depth).is_file() or f"{stem}.png" not in color_names:
            damaged[i] = f"{color if not (folder / color).is_file() else depth}: missing file"
        elif abs(traj_times[nearest[i]] - times[i]) > POSE_TOLERANCE_S:
            damaged[i] = f"lowres_wide.traj: no pose within {POSE_TOLERANCE_S * 1000:.0f} ms of {_frame_time(stem)} s"
        else:
            poses[i] = traj_poses[nearest[i]]
            problem = _image_problem(folder, color, depth, size, check)
            if problem is not None:
                damaged[i] = problem
    ids = np.arange(len(stems))
    table = PoseTable.build(folder, ids, poses, np.eye(4), damaged)
    frames = FileFrames(folder, {i: f"lowres_wide/{s}.png" for i, s in enumerate(stems)},
                        {i: f"lowres_depth/{s}.png" for i, s in enumerate(stems)}, DEPTH_SHIFT_MM, size, table)  # fmt: skip
    span = times[-1] - times[0]
    fps = (len(times) - 1) / span if len(times) > 1 and span > 0 else 10.0  # ARKitScenes' 3DOD frames are 10 fps
    return frames, intrinsic, size, float(fps)


def _stems(folder: Path) -> tuple[list[str], set[str]]:
    """(frame stems in time order, as `open_frames` numbers them; the colour file names)."""
    try:
        depth_names = [n for n in os.listdir(folder / "lowres_depth") if n.endswith(".png")]
        color_names = set(os.listdir(folder / "lowres_wide"))
    except OSError as e:
        raise ScanError(folder, f"needs lowres_wide/ and lowres_depth/ ({e.strerror})") from None
    frame = re.compile(rf"{re.escape(folder.name.removesuffix('_frames'))}_\d+(?:\.\d+)?\.png")  # <video_id>_<t>.png
    stems = {n[:-4] for n in [*depth_names, *color_names] if frame.fullmatch(n)}
    return sorted(stems, key=lambda s: float(_frame_time(s))), color_names


def arkit_color_frame_ids(scene_dir: str | Path) -> list[int]:
    """The frame ids (as `read_arkit_scene` numbers them) that have a colour image; no image read."""
    root = Path(scene_dir)
    stems, color_names = _stems(root / f"{root.name}_frames")
    return [i for i, s in enumerate(stems) if f"{s}.png" in color_names]


def read_arkit_color_frames(scene_dir: str | Path, ids: list[int]) -> list[np.ndarray]:
    """Colour frames `ids` as HxWx3 uint8 RGB, reading only those images; FrameError names a missing
    or undecodable one."""
    root = Path(scene_dir)
    folder = root / f"{root.name}_frames"
    stems, color_names = _stems(folder)
    out = []
    for i in map(int, ids):
        if not 0 <= i < len(stems) or f"{stems[i]}.png" not in color_names:
            raise FrameError(i, root, f"frame {i} missing (no colour image)")
        path = folder / "lowres_wide" / f"{stems[i]}.png"
        try:
            out.append(decode_image(path, where=path, mode="RGB"))
        except ScanError as e:
            raise FrameError(i, e.path, e.problem) from None
    return out
