"""The in-memory form of one ScanNet-style scan: the contract between reader, writer and generator.

Everything here is in the *aligned* frame (ScanNet's `axisAlignment` already applied: floor at
z = 0, +z up). The writer un-aligns when it writes files; the reader aligns exactly once.
Camera axes follow ScanNet: x right, y down, z forward; poses are camera-to-world.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import numpy as np

from data_gen.errors import InputError

SCANNET_FPS = 24.0  # VSI-Bench videos of ScanNet scenes are 24 fps; times = frame index / fps


class ScanError(InputError):
    """A scan input is missing or malformed. The message names the file and the problem."""

    def __init__(self, path: str | Path, problem: str):
        self.path = str(path)
        self.problem = problem
        super().__init__(f"{path}: {problem}")


@dataclass(frozen=True)
class Instance:
    """One annotated object (a segGroup of the aggregation file)."""

    object_id: int
    label: str
    vertex_ids: np.ndarray  # [K] int64 indices into Scan.vertices


class Frames(Protocol):
    """Lazy access to the RGB-D stream. Listing frames reads no image."""

    @property
    def ids(self) -> list[int]:
        """Usable frame indices (finite poses), ascending."""

    @property
    def skipped(self) -> dict[int, str]:
        """Frame index -> why it is not usable (e.g. non-finite pose)."""

    def pose(self, i: int) -> np.ndarray:
        """[4, 4] float64 camera-to-world in the aligned frame."""

    def color(self, i: int) -> np.ndarray:
        """[H, W, 3] uint8 RGB."""

    def depth(self, i: int) -> np.ndarray:
        """[h, w] float32 metres; 0 = no measurement."""


@dataclass
class InMemoryFrames:
    """Frames already in memory (the generator's output, or tests)."""

    poses: np.ndarray  # [N, 4, 4] aligned camera-to-world; non-finite rows are skipped
    colors: list[np.ndarray]  # N x [H, W, 3] uint8
    depths: list[np.ndarray]  # N x [h, w] float32 metres

    @property
    def ids(self) -> list[int]:
        return [i for i in range(len(self.poses)) if np.isfinite(self.poses[i]).all()]

    @property
    def skipped(self) -> dict[int, str]:
        return {i: "non-finite pose" for i in range(len(self.poses)) if not np.isfinite(self.poses[i]).all()}

    def pose(self, i: int) -> np.ndarray:
        return np.asarray(self.poses[i], dtype=np.float64)

    def color(self, i: int) -> np.ndarray:
        return self.colors[i]

    def depth(self, i: int) -> np.ndarray:
        return self.depths[i]

    def __len__(self) -> int:
        return len(self.poses)


@dataclass
class Scan:
    """One scene. Geometry and poses in the aligned frame."""

    name: str  # e.g. scene0000_00
    axis_alignment: np.ndarray  # [4, 4] float64: aligned = axis_alignment @ file coordinates
    vertices: np.ndarray  # [V, 3] float32, aligned
    vertex_colors: np.ndarray  # [V, 3] uint8
    faces: np.ndarray  # [F, 3] int32
    seg_indices: np.ndarray  # [V] int64 segment id per vertex
    instances: list[Instance]
    intrinsic_color: np.ndarray  # [4, 4] float64
    intrinsic_depth: np.ndarray  # [4, 4] float64
    color_size: tuple[int, int]  # (width, height)
    depth_size: tuple[int, int]  # (width, height)
    frames: Frames
    num_frames: int  # frames in the stream, usable or not
    scene_type: str = "Unknown"
    dataset: str = "scannet"  # "synthetic" for generated scenes
    fps: float = SCANNET_FPS
    info: dict[str, str] = field(default_factory=dict)  # every key of <scene>.txt, as text
