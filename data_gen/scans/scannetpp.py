"""ScanNet++'s scene layout read into a `Scan` (`read_scannetpp_scene`; `scannetpp_write` is the
inverse, for synthetic fixtures). The iPhone stream is read: it has depth, which the questions need.

A scene folder `<scene_id>/` holds:
- `scans/mesh_aligned_0.05.ply` (the aligned mesh: metres, z up), `scans/segments.json` (`segIndices`,
  one per vertex) and `scans/segments_anno.json` (`segGroups`: `objectId`, `label` (free text),
  `segments` = segment ids, values of `segIndices`), read as ScanNet's segments and aggregation;
- `iphone/rgb/frame_<n>.jpg` (every video frame, `<n>` 6 digits from 0), `iphone/depth/frame_<n>.png`
  (uint16 millimetres, 256x192), and the poses: `iphone/colmap/` when present (COLMAP's text model:
  `images.txt` world-to-camera quaternion + translation per registered image, `cameras.txt` the
  camera, read as a pinhole as the toolkit does for the iPhone; only registered frames are listed),
  else `iphone/pose_intrinsic_imu.json`: per `frame_<n>`, `aligned_pose` (4x4 camera-to-world in the
  mesh frame, OpenCV axes) and `intrinsic` (3x3, at the colour size). The raw `pose` is not the
  mesh's frame and is not read.

Objects' boxes are fitted to their vertices, as for ScanNet (the annotation's `obb` axes are not
documented). Colour intrinsics are the first listed frame's; depth intrinsics the same scaled to the
depth size. The frame rate is measured from the frames' `timestamp`s when present, else the
iPhone's 60 fps. A frame without a pose or an image is skipped as damaged.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
from PIL import Image

from data_gen.scans.annotations import read_instances, read_seg_indices
from data_gen.scans.codecs import DEPTH_SHIFT_MM, read_text
from data_gen.scans.ply import read_ply
from data_gen.scans.scan import MAX_BAD_FRAME_FRACTION, FrameError, Scan, ScanError, check_frame_damage
from data_gen.scans.scan_frames import CHECKS, FileFrames, PoseTable, _image_problem

IPHONE_FPS = 60.0
MESH = "scans/mesh_aligned_0.05.ply"
POSES = "iphone/pose_intrinsic_imu.json"
_FRAME = re.compile(r"frame_(\d{6})")


def is_scannetpp_scene(scene_dir: str | Path) -> bool:
    return (Path(scene_dir) / MESH).is_file()


def read_scannetpp_scene(scene_dir: str | Path, *, max_bad_frame_fraction: float = MAX_BAD_FRAME_FRACTION,
                         frame_check: str = "headers") -> Scan:  # fmt: skip
    """Read one ScanNet++ scene folder (the module docstring's layout, iPhone stream). Raises
    ScanError naming the file; damaged frames are skipped up to max_bad_frame_fraction."""
    if frame_check not in CHECKS:
        raise ValueError(f"frame_check must be one of {CHECKS}, got {frame_check!r}")
    root = Path(scene_dir)
    mesh = read_ply(root / MESH)
    seg_indices = read_seg_indices(root / "scans/segments.json", len(mesh.vertices))
    instances, skipped = read_instances(root / "scans/segments_anno.json", seg_indices)
    frames, k_color, color_size, k_depth, depth_size, fps = open_iphone(root, frame_check)
    check_frame_damage(root, frames, max_bad_frame_fraction)
    return Scan(
        name=root.name, axis_alignment=np.eye(4), vertices=mesh.vertices, vertex_colors=mesh.colors, faces=mesh.faces,
        seg_indices=seg_indices, instances=instances, intrinsic_color=k_color, intrinsic_depth=k_depth,
        color_size=color_size, depth_size=depth_size, frames=frames, num_frames=len(frames.ids) + len(frames.skipped),
        dataset="scannetpp", fps=fps, skipped_instances=skipped, max_bad_frame_fraction=max_bad_frame_fraction,
    )  # fmt: skip


def _pose_file(root: Path) -> dict:
    try:
        doc = json.loads(read_text(root / POSES))
    except json.JSONDecodeError as e:
        raise ScanError(root / POSES, f"not valid JSON ({e.msg}, line {e.lineno})") from None
    if not isinstance(doc, dict) or not doc:
        raise ScanError(root / POSES, "needs an object of frames (frame_000000: {aligned_pose, intrinsic})")
    return doc


def _image_size(path: Path) -> tuple[int, int]:
    try:
        with Image.open(path) as im:
            return im.size
    except OSError as e:
        raise ScanError(path, f"cannot read the image size ({e})") from None


def _quaternion_matrix(w: float, x: float, y: float, z: float) -> np.ndarray:
    """The rotation of a unit quaternion (COLMAP's QW QX QY QZ order)."""
    n = np.sqrt(w * w + x * x + y * y + z * z)
    w, x, y, z = w / n, x / n, y / n, z / n
    return np.array([[1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)],
                     [2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)],
                     [2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)]])  # fmt: skip


def _colmap_lines(path: Path) -> list[str]:
    return [line for line in read_text(path).splitlines() if not line.startswith("#")]


def read_colmap(folder: Path) -> tuple[dict[str, np.ndarray], np.ndarray | None]:
    """COLMAP's text model in `folder`: ({image file name: camera-to-world [4, 4]}, the first
    camera's [4, 4] intrinsics (pinhole part of PINHOLE / OPENCV / SIMPLE_*), or None). images.txt
    holds world-to-camera (QW QX QY QZ TX TY TZ), each image line followed by its 2D points line."""
    poses: dict[str, np.ndarray] = {}
    lines = _colmap_lines(folder / "images.txt")
    for n in range(0, len(lines), 2):
        parts = lines[n].split()
        if len(parts) < 10:
            if parts:
                raise ScanError(folder / "images.txt", f"image line {n // 2 + 1}: needs IMAGE_ID QW QX QY QZ TX TY TZ CAMERA_ID NAME")
            continue
        try:
            q, t = [float(v) for v in parts[1:5]], [float(v) for v in parts[5:8]]
        except ValueError:
            raise ScanError(folder / "images.txt", f"image line {n // 2 + 1}: not numbers") from None
        world_to_camera = np.eye(4)
        world_to_camera[:3, :3], world_to_camera[:3, 3] = _quaternion_matrix(*q), t
        poses[Path(" ".join(parts[9:])).name] = np.linalg.inv(world_to_camera)  # a "video/" prefix dropped
    k = None
    cameras = folder / "cameras.txt"
    if cameras.is_file():
        for line in _colmap_lines(cameras):
            parts = line.split()
            if len(parts) < 5:
                continue
            model, params = parts[1], [float(v) for v in parts[4:]]
            fx, fy, cx, cy = (params[0], params[0], params[1], params[2]) if model.startswith("SIMPLE") else params[:4]
            k = np.eye(4)
            k[0, 0], k[1, 1], k[0, 2], k[1, 2] = fx, fy, cx, cy
            break
    return poses, k


def open_iphone(root: Path, check: str) -> tuple[FileFrames, np.ndarray, tuple[int, int], np.ndarray, tuple[int, int], float]:
    """(frames, colour intrinsics, colour size, depth intrinsics, depth size, fps) of `iphone/`.
    Poses and intrinsics come from `iphone/colmap/` when it is there (the frames it registered),
    else from `pose_intrinsic_imu.json`'s `aligned_pose` and `intrinsic`."""
    colmap = root / "iphone/colmap"
    use_colmap = (colmap / "images.txt").is_file()
    if use_colmap:
        poses, k = read_colmap(colmap)
        json_doc = _pose_file(root) if (root / POSES).is_file() else {}  # for timestamps
        entries = {}
        for name, pose in poses.items():
            if m := _FRAME.fullmatch(Path(name).stem):
                extra = {} if k is None else {"intrinsic": k[:3, :3].tolist()}
                entries[int(m[1])] = {**json_doc.get(m[0], {}), "aligned_pose": pose.tolist(), **extra}
        if not entries:
            raise ScanError(colmap / "images.txt", "registers no frame_<n>.jpg of iphone/rgb")
    else:
        entries = {int(m[1]): v for key, v in _pose_file(root).items() if (m := _FRAME.fullmatch(key))}
    rgb = {int(m[1]): f"iphone/rgb/{n}" for n in _listing(root / "iphone/rgb") if (m := _FRAME.fullmatch(n[:-4])) and n.endswith(".jpg")}
    depth = {int(m[1]): f"iphone/depth/{n}" for n in _listing(root / "iphone/depth") if (m := _FRAME.fullmatch(n[:-4])) and n.endswith(".png")}
    if use_colmap:  # only the frames COLMAP registered are listed
        rgb = {i: f for i, f in rgb.items() if i in entries}
        depth = {i: f for i, f in depth.items() if i in entries}
    ids = sorted(set(rgb) | set(depth) | set(entries))
    if not ids or not rgb or not depth:
        raise ScanError(root / "iphone", "no frames (needs rgb/frame_<n>.jpg, depth/frame_<n>.png and their poses)")
    first = next(i for i in ids if i in rgb and i in depth)
    color_size, depth_size = _image_size(root / rgb[first]), _image_size(root / depth[first])
    k_color = np.eye(4)
    try:
        k_color[:3, :3] = np.asarray(entries[first]["intrinsic"], dtype=np.float64).reshape(3, 3)
    except (KeyError, TypeError, ValueError):
        raise ScanError(root / POSES, f"frame_{first:06d}: needs a 3x3 `intrinsic`") from None
    k_depth = k_color.copy()
    k_depth[0, :3] *= depth_size[0] / color_size[0]
    k_depth[1, :3] *= depth_size[1] / color_size[1]
    poses = np.full((len(ids), 4, 4), np.nan)
    damaged: dict[int, str] = {}
    for row, i in enumerate(ids):
        name = f"frame_{i:06d}"
        if i not in rgb or i not in depth:
            damaged[i] = f"iphone/{'rgb' if i not in rgb else 'depth'}/{name}: missing file"
            continue
        try:
            pose = np.asarray(entries[i]["aligned_pose"], dtype=np.float64).reshape(4, 4)
        except (KeyError, TypeError, ValueError):
            damaged[i] = f"{POSES}: {name} has no 4x4 aligned_pose"
            continue
        poses[row] = pose
        problem = _image_problem(root, rgb[i], depth[i], depth_size, check)
        if problem is not None:
            damaged[i] = problem
    table = PoseTable.build(root, np.asarray(ids), poses, np.eye(4), damaged)
    frames = FileFrames(root, rgb, depth, DEPTH_SHIFT_MM, depth_size, table)
    stamps = [float(entries[i]["timestamp"]) for i in ids if isinstance(entries.get(i), dict) and "timestamp" in entries[i]]
    span = stamps[-1] - stamps[0] if len(stamps) > 1 else 0.0
    fps = (len(stamps) - 1) / span if span > 0 else IPHONE_FPS
    return frames, k_color, color_size, k_depth, depth_size, float(fps)


def _listing(folder: Path) -> list[str]:
    try:
        return sorted(p.name for p in folder.iterdir())
    except OSError as e:
        raise ScanError(folder, f"cannot list ({e.strerror})") from None


def scannetpp_color_frame_ids(scene_dir: str | Path) -> list[int]:
    """The frame ids that have a colour image (from file names only)."""
    return sorted(int(m[1]) for n in _listing(Path(scene_dir) / "iphone/rgb") if (m := _FRAME.fullmatch(n[:-4])))


def read_scannetpp_color_frames(scene_dir: str | Path, ids: list[int]) -> list[np.ndarray]:
    """Colour frames `ids` as HxWx3 uint8 RGB, reading only those images; FrameError names a missing
    or undecodable one."""
    from data_gen.scans.codecs import decode_image

    out = []
    for i in map(int, ids):
        path = Path(scene_dir) / f"iphone/rgb/frame_{i:06d}.jpg"
        if not path.is_file():
            raise FrameError(i, path, f"frame {i} missing (no colour image)")
        try:
            out.append(decode_image(path, where=path, mode="RGB"))
        except ScanError as e:
            raise FrameError(i, e.path, e.problem) from None
    return out
