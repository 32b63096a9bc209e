"""Lazy `Frames` over a scan on disk: one file per frame and kind, or a `.sens` stream.

Layouts (file names; `<n>` is the frame number, in decimal, zero-padded or not: `0`, `000000`):

- the export (ScanNet's python SensReader and its variants): `color/<n>.jpg`, `depth/<n>.png`
  (16-bit greyscale PNG, depth units), `pose/<n>.txt` (4x4 camera-to-world, 4 lines of 4 numbers);
- the C++ exporter's flat layout (SensReader/c++, `saveToImages`): `frame-<n>.color.jpg` (`.png`
  when the stream's colour is PNG or raw), `frame-<n>.depth.pgm` (16-bit binary PGM, big-endian,
  depth units; `.depth.png` is read too), `frame-<n>.pose.txt`, all in one folder;
- `.sens`: the frames of the stream, numbered 0..N-1.

A frame's id is its number: an export that kept every k-th frame lists 0, k, 2k, ... A frame is
listed when any of its files exists. Listing reads every pose (and axis-aligns it) and checks each
image file's container from its first and last bytes (`codecs.*_problem`): a missing pose, colour
or depth file, a pose that is not a numeric rigid 4x4, an empty, truncated or garbage image, or a
depth image of the wrong size makes the frame *damaged*: it leaves `ids` and enters `skipped` with
the reason (`<file>: <problem>`). A pose that is not finite (ScanNet's -inf, tracking lost) skips
the frame with NON_FINITE_POSE, as before; that is not damage. `check="decode"` decodes every
image while listing instead (exact, and as slow as reading the whole scan).

Images decode only in `color(i)` / `depth(i)`. What passes the container check but still fails to
decode (corrupt compressed data) raises `FrameError` (a ScanError with the frame id) there.

All classes hold paths, names and arrays, no open files, so they pickle into Ray tasks.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from data_gen.scans.codecs import (
    DEPTH_SHIFT_MM,
    PGM_HEAD_BYTES,
    decode_image,
    decode_pgm16,
    decode_png16,
    jpeg_problem,
    pgm16_problem,
    png_problem,
    read_head_tail,
    read_text,
)
from data_gen.scans.scan import NON_FINITE_POSE, FrameError, ScanError
from data_gen.scans.sens import SensFile

__all__ = ["CHECKS", "EXPORT_KINDS", "FLAT_KINDS", "NON_FINITE_POSE", "FileFrames", "PoseTable", "SensFrames",
           "list_frame_files", "pose_problem", "read_matrix_txt", "read_pose"]

CHECKS = ("headers", "decode")  # how listing checks the images: container bytes, or a full decode
_RIGID_TOL = 1e-2  # |R^T R - I| and the bottom row; text poses carry ~6 digits


@dataclass(frozen=True)
class PoseTable:
    """Aligned poses of the listed frames, and which of them are usable."""

    source: Path  # named in errors
    frame_ids: np.ndarray  # [M] int64 listed frame indices, ascending
    poses: np.ndarray  # [M, 4, 4] float64 aligned; non-finite rows kept as in the file, damaged rows NaN
    ids: list[int]
    skipped: dict[int, str]

    @classmethod
    def build(cls, source: Path, frame_ids: np.ndarray, file_poses: np.ndarray, axis_alignment: np.ndarray,
              damaged: dict[int, str] | None = None) -> PoseTable:
        damaged = damaged or {}
        frame_ids = np.asarray(frame_ids, dtype=np.int64)
        bad = np.array([int(i) in damaged for i in frame_ids], dtype=bool)  # [M]
        finite = np.isfinite(file_poses).all(axis=(1, 2)) & ~bad  # [M]
        poses = file_poses.astype(np.float64).copy()
        poses[finite] = axis_alignment @ poses[finite]  # align exactly once, here
        poses[bad] = np.nan
        ids = [int(i) for i in frame_ids[finite]]
        skipped = {int(i): damaged.get(int(i), NON_FINITE_POSE) for i in frame_ids[~finite]}
        return cls(source, frame_ids, poses, ids, skipped)

    def pose(self, i: int) -> np.ndarray:
        row = int(np.searchsorted(self.frame_ids, i))
        if row >= len(self.frame_ids) or self.frame_ids[row] != i:
            raise ScanError(self.source, f"no frame {i}")
        reason = self.skipped.get(int(i))
        if reason is not None and reason != NON_FINITE_POSE:
            raise FrameError(i, self.source, f"frame {i} is damaged: {reason}")
        return self.poses[row].copy()


class _PoseTableFrames:
    """ids, skipped and pose() come from the pose table; subclasses decode the images."""

    table: PoseTable

    @property
    def ids(self) -> list[int]:
        return self.table.ids

    @property
    def skipped(self) -> dict[int, str]:
        return self.table.skipped

    def pose(self, i: int) -> np.ndarray:
        return self.table.pose(i)


# --- one file per frame and kind: the export and the C++ exporter's flat layout ---


@dataclass(frozen=True)
class _Kind:
    """How a layout names one kind of frame file: `folder/<pattern>`, group 1 the frame number."""

    folder: str  # relative to the stream folder; "" for the folder itself
    pattern: re.Pattern[str]
    missing: str  # the name of an absent file, formatted with the frame number's digits

    def rel(self, name: str) -> str:
        return f"{self.folder}/{name}" if self.folder else name


EXPORT_KINDS = (
    _Kind("color", re.compile(r"(\d+)\.jpg"), "{}.jpg"),
    _Kind("depth", re.compile(r"(\d+)\.png"), "{}.png"),
    _Kind("pose", re.compile(r"(\d+)\.txt"), "{}.txt"),
)
FLAT_KINDS = (
    _Kind("", re.compile(r"frame-(\d+)\.color\.(?:jpg|png)"), "frame-{}.color.jpg"),
    _Kind("", re.compile(r"frame-(\d+)\.depth\.(?:pgm|png)"), "frame-{}.depth.pgm"),
    _Kind("", re.compile(r"frame-(\d+)\.pose\.txt"), "frame-{}.pose.txt"),
)


def list_frame_files(root: Path, kind: _Kind, names: list[str] | None = None) -> dict[int, tuple[str, str]]:
    """Frame id -> (path relative to root, the number's digits as written) of every file of `kind`.

    `names`: the folder's listing when the caller has it. Two files for one frame (`0.jpg` and
    `000000.jpg`) are a ScanError: which one is meant is unknowable.
    """
    folder = root / kind.folder if kind.folder else root
    if names is None:
        try:
            names = os.listdir(folder)
        except FileNotFoundError:
            raise ScanError(folder, "missing folder (an export needs color/, depth/ and pose/)") from None
        except OSError as e:
            raise ScanError(folder, f"cannot list: {e}") from e
    out: dict[int, tuple[str, str]] = {}
    for name in sorted(names):
        m = kind.pattern.fullmatch(name)
        if m is None:
            continue
        i = int(m[1])
        if i in out:
            raise ScanError(folder, f"two files for frame {i}: {out[i][0]} and {kind.rel(name)}")
        out[i] = (kind.rel(name), m[1])
    return out


@dataclass(frozen=True)
class FileFrames(_PoseTableFrames):
    """Frames stored one file per frame and kind under `root` (see the module docstring)."""

    root: Path
    color_files: dict[int, str]  # frame id -> path relative to root
    depth_files: dict[int, str]
    depth_shift: float  # depth units per metre
    depth_size: tuple[int, int] | None  # (w, h) every depth image must have; None: unchecked
    table: PoseTable

    @classmethod
    def open_export(cls, root: Path, axis_alignment: np.ndarray, depth_size: tuple[int, int] | None,
                    check: str = "headers") -> FileFrames:
        """`color/`, `depth/`, `pose/` under the scene folder `root`."""
        files = [list_frame_files(root, kind) for kind in EXPORT_KINDS]
        return cls._open(root, EXPORT_KINDS, files, axis_alignment, DEPTH_SHIFT_MM, depth_size, check)

    @classmethod
    def open_flat(cls, folder: Path, axis_alignment: np.ndarray, depth_shift: float,
                  depth_size: tuple[int, int] | None, check: str = "headers", named_from: Path | None = None
                  ) -> FileFrames:
        """`frame-<n>.*` files in `folder` (the C++ exporter's output folder); skip reasons name the
        files relative to `named_from` (the scene folder), default `folder`."""
        try:
            names = os.listdir(folder)
        except OSError as e:
            raise ScanError(folder, f"cannot list: {e}") from e
        files = [list_frame_files(folder, kind, names) for kind in FLAT_KINDS]
        prefix = "" if named_from is None or named_from == folder else f"{folder.relative_to(named_from)}/"
        return cls._open(folder, FLAT_KINDS, files, axis_alignment, depth_shift, depth_size, check, prefix)

    @classmethod
    def _open(cls, root: Path, kinds: tuple[_Kind, ...], files: list[dict[int, tuple[str, str]]],
              axis_alignment: np.ndarray, depth_shift: float, depth_size: tuple[int, int] | None,
              check: str, prefix: str = "") -> FileFrames:
        if check not in CHECKS:
            raise ValueError(f"check must be one of {CHECKS}, got {check!r}")
        color, depth, pose = files
        frame_ids = np.array(sorted(set(color) | set(depth) | set(pose)), dtype=np.int64)
        file_poses = np.full((len(frame_ids), 4, 4), np.nan)
        damaged: dict[int, str] = {}
        for row, i in enumerate(frame_ids.tolist()):
            digits = next(f[i][1] for f in files if i in f)
            missing = [k.rel(k.missing.format(digits)) for k, f in zip(kinds, files, strict=True) if i not in f]
            if missing:
                damaged[i] = f"{prefix}{missing[0]}: missing file"
                continue
            try:
                file_poses[row] = read_pose(root / pose[i][0])
            except ScanError as e:
                damaged[i] = f"{prefix}{pose[i][0]}: {e.problem}"
                continue
            problem = _image_problem(root, color[i][0], depth[i][0], depth_size, check)
            if problem is not None:
                damaged[i] = prefix + problem
        return cls(root, {i: c[0] for i, c in color.items()}, {i: d[0] for i, d in depth.items()},
                   float(depth_shift), depth_size, PoseTable.build(root, frame_ids, file_poses, axis_alignment, damaged))

    def color(self, i: int) -> np.ndarray:
        path = self.root / self._file(self.color_files, i, "colour")
        try:
            return decode_image(path, where=path, mode="RGB")
        except ScanError as e:
            raise FrameError(i, e.path, e.problem) from None

    def depth(self, i: int) -> np.ndarray:
        path = self.root / self._file(self.depth_files, i, "depth")
        try:
            units = _decode_depth_file(path, self.depth_size)
        except ScanError as e:
            raise FrameError(i, e.path, e.problem) from None
        return np.divide(units, np.float32(self.depth_shift), dtype=np.float32)  # = units.astype(f32) / f32(shift)

    def _file(self, files: dict[int, str], i: int, what: str) -> str:
        rel = files.get(int(i))
        if rel is None:
            raise FrameError(i, self.root, f"no {what} file for frame {i}")
        return rel

    def __len__(self) -> int:
        return len(self.table.frame_ids)


def _image_problem(root: Path, color_rel: str, depth_rel: str, depth_size: tuple[int, int] | None,
                   check: str) -> str | None:
    """The first problem of a frame's colour and depth files, as `<file>: <problem>`, or None."""
    try:
        head, tail, _ = read_head_tail(root / color_rel)
        problem = (png_problem(head, tail) if color_rel.endswith(".png") else jpeg_problem(head, tail))
        if problem is None and check == "decode":
            decode_image(root / color_rel, where=root / color_rel, mode="RGB")
    except ScanError as e:
        problem = e.problem
    except OSError as e:
        problem = f"cannot read: {e}"
    if problem is not None:
        return f"{color_rel}: {problem}"
    path = root / depth_rel
    try:
        if depth_rel.endswith(".pgm"):
            head, _, size = read_head_tail(path, PGM_HEAD_BYTES, 0)
            problem = pgm16_problem(head, size, depth_size)
        else:
            head, tail, _ = read_head_tail(path)
            problem = png_problem(head, tail, depth16=True, size=depth_size)
        if problem is None and check == "decode":
            _decode_depth_file(path, depth_size)
    except ScanError as e:
        problem = e.problem
    except OSError as e:
        problem = f"cannot read: {e}"
    return None if problem is None else f"{depth_rel}: {problem}"


def _decode_depth_file(path: Path, depth_size: tuple[int, int] | None) -> np.ndarray:
    """[h, w] uint16 depth units of a `.png` or `.pgm` depth file; ScanError naming it."""
    if path.suffix == ".pgm":
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            raise ScanError(path, "missing file") from None
        except OSError as e:
            raise ScanError(path, f"cannot read: {e}") from None
        units = decode_pgm16(data, where=path)
    else:
        units = decode_png16(path)
    if depth_size is not None and units.shape != (depth_size[1], depth_size[0]):
        raise ScanError(path, f"depth is {units.shape[1]}x{units.shape[0]}, expected {depth_size[0]}x{depth_size[1]}")
    return units


# --- .sens ---


@dataclass(frozen=True)
class SensFrames(_PoseTableFrames):
    """Frames of a `.sens` stream, decoded by seeking to the indexed byte offsets."""

    sens: SensFile
    table: PoseTable

    @classmethod
    def open(cls, sens: SensFile, axis_alignment: np.ndarray, check: str = "headers") -> SensFrames:
        if check not in CHECKS:
            raise ValueError(f"check must be one of {CHECKS}, got {check!r}")
        frame_ids = np.arange(len(sens), dtype=np.int64)
        poses = sens.poses
        damaged = sens.container_problems()
        for i in frame_ids.tolist():
            if i in damaged:
                continue
            problem = pose_problem(poses[i])
            if problem is None and check == "decode":
                problem = _sens_decode_problem(sens, i)
            if problem is not None:
                damaged[i] = problem
        return cls(sens, PoseTable.build(sens.path, frame_ids, poses, axis_alignment, damaged))

    def color(self, i: int) -> np.ndarray:
        try:
            return self.sens.color(i)
        except ScanError as e:
            raise FrameError(i, e.path, e.problem) from None

    def depth(self, i: int) -> np.ndarray:
        try:
            return self.sens.depth(i)
        except ScanError as e:
            raise FrameError(i, e.path, e.problem) from None

    def __len__(self) -> int:
        return len(self.sens)


def _sens_decode_problem(sens: SensFile, i: int) -> str | None:
    for what, decode in (("colour", sens.color), ("depth", sens.depth_raw)):
        try:
            decode(i)
        except ScanError as e:
            return f"{what}: {e.problem}"
    return None


# --- poses ---


def read_matrix_txt(path: Path) -> np.ndarray:
    """A 4x4 matrix written as 4 lines of 4 numbers (poses, intrinsics); `-inf` is allowed."""
    text = read_text(path)
    rows = [line.split() for line in text.splitlines() if line.strip()]
    if not rows:
        raise ScanError(path, "empty file, expected a 4x4 matrix")
    widths = sorted({len(r) for r in rows})
    if len(rows) != 4 or widths != [4]:
        shape = f"{len(rows)}x{widths[0]}" if len(widths) == 1 else f"{len(rows)} rows of {widths} values"
        raise ScanError(path, f"expected a 4x4 matrix, got {shape}")
    try:
        return np.array(rows, dtype=np.float64)
    except ValueError:
        raise ScanError(path, "non-numeric value in 4x4 matrix") from None


def pose_problem(pose: np.ndarray) -> str | None:
    """Why a camera-to-world matrix is garbage (not a rotation plus translation), or None.

    Non-finite poses pass: they are ScanNet's "tracking lost", skipped as NON_FINITE_POSE."""
    pose = np.asarray(pose, dtype=np.float64)
    if not np.isfinite(pose).all():
        return None
    rot = pose[:3, :3]
    if (np.abs(pose[3] - [0, 0, 0, 1]).max() > _RIGID_TOL or np.abs(rot.T @ rot - np.eye(3)).max() > _RIGID_TOL
            or np.linalg.det(rot) < 0):
        return "not a rigid camera-to-world transform"
    return None


def read_pose(path: Path) -> np.ndarray:
    """One pose file: a 4x4 rigid transform, or non-finite (tracking lost); ScanError otherwise."""
    pose = read_matrix_txt(path)
    problem = pose_problem(pose)
    if problem is not None:
        raise ScanError(path, problem)
    return pose
