"""Lazy `Frames` over a scan on disk: the exported folders or a `.sens` stream.

Poses are read (and axis-aligned) when the scene is listed; images decode only in `color(i)` /
`depth(i)`. Both classes hold paths and arrays, no open files, so they pickle into Ray tasks.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from data_gen.scans.codecs import DEPTH_SHIFT_MM, decode_image, decode_png16, read_text
from data_gen.scans.scan import ScanError
from data_gen.scans.sens import SensFile

NON_FINITE_POSE = "non-finite pose"


@dataclass(frozen=True)
class PoseTable:
    """Aligned poses of the listed frames, and which of them are usable."""

    source: Path  # named in errors
    frame_ids: np.ndarray  # [M] int64 listed frame indices, ascending
    poses: np.ndarray  # [M, 4, 4] float64 aligned; non-finite rows kept as in the file
    ids: list[int]
    skipped: dict[int, str]

    @classmethod
    def build(cls, source: Path, frame_ids: np.ndarray, file_poses: np.ndarray, axis_alignment: np.ndarray) -> PoseTable:
        finite = np.isfinite(file_poses).all(axis=(1, 2))  # [M]
        poses = file_poses.astype(np.float64).copy()
        poses[finite] = axis_alignment @ poses[finite]  # align exactly once, here
        ids = [int(i) for i in frame_ids[finite]]
        skipped = {int(i): NON_FINITE_POSE for i in frame_ids[~finite]}
        return cls(source, np.asarray(frame_ids, dtype=np.int64), poses, ids, skipped)

    def pose(self, i: int) -> np.ndarray:
        row = int(np.searchsorted(self.frame_ids, i))
        if row >= len(self.frame_ids) or self.frame_ids[row] != i:
            raise ScanError(self.source, f"no frame {i}")
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


@dataclass(frozen=True)
class ExportedFrames(_PoseTableFrames):
    """`color/<i>.jpg`, `depth/<i>.png` (uint16 mm) and `pose/<i>.txt` under one scene folder."""

    root: Path
    table: PoseTable

    @classmethod
    def open(cls, root: Path, axis_alignment: np.ndarray) -> ExportedFrames:
        pose_dir = root / "pose"
        try:
            names = os.listdir(pose_dir)
        except FileNotFoundError:
            raise ScanError(pose_dir, "missing folder (color/ exists, so exported frames need pose/)") from None
        except OSError as e:
            raise ScanError(pose_dir, f"cannot list: {e}") from e
        frame_ids = np.array(sorted(int(m[1]) for n in names if (m := re.fullmatch(r"(\d+)\.txt", n))),
                             dtype=np.int64)
        file_poses = np.empty((len(frame_ids), 4, 4), dtype=np.float64)
        for row, i in enumerate(frame_ids):
            file_poses[row] = read_matrix_txt(pose_dir / f"{i}.txt")
        return cls(root, PoseTable.build(pose_dir, frame_ids, file_poses, axis_alignment))

    def color(self, i: int) -> np.ndarray:
        path = self.root / "color" / f"{i}.jpg"
        return decode_image(path, where=path, mode="RGB")

    def depth(self, i: int) -> np.ndarray:
        units = decode_png16(self.root / "depth" / f"{i}.png")
        return np.divide(units, np.float32(DEPTH_SHIFT_MM), dtype=np.float32)  # = units.astype(f32) / f32(shift)

    def __len__(self) -> int:
        return len(self.table.frame_ids)


@dataclass(frozen=True)
class SensFrames(_PoseTableFrames):
    """Frames of a `.sens` stream, decoded by seeking to the indexed byte offsets."""

    sens: SensFile
    table: PoseTable

    @classmethod
    def open(cls, sens: SensFile, axis_alignment: np.ndarray) -> SensFrames:
        frame_ids = np.arange(len(sens), dtype=np.int64)
        return cls(sens, PoseTable.build(sens.path, frame_ids, sens.poses, axis_alignment))

    def color(self, i: int) -> np.ndarray:
        return self.sens.color(i)

    def depth(self, i: int) -> np.ndarray:
        return self.sens.depth(i)

    def __len__(self) -> int:
        return len(self.sens)


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
