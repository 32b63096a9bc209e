"""The in-memory form of one ScanNet-style scan: the contract between reader, writer and generator.

Everything here is in the *aligned* frame (ScanNet's `axisAlignment` already applied: floor at
z = 0, +z up). The writer un-aligns when it writes files; the reader aligns exactly once.
Camera axes follow ScanNet: x right, y down, z forward; poses are camera-to-world.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import NamedTuple, Protocol

import numpy as np

from data_gen.errors import InputError

SCANNET_FPS = 24.0  # VSI-Bench videos of ScanNet scenes are 24 fps; times = frame index / fps
NON_FINITE_POSE = "non-finite pose"  # the skip reason of a tracking-lost frame (ScanNet writes -inf)
MAX_BAD_FRAME_FRACTION = 0.1  # default: a scene with more damaged frames than this is rejected


class ScanError(InputError):
    """A scan input is missing or malformed. The message names the file and the problem."""

    def __init__(self, path: str | Path, problem: str):
        self.path = str(path)
        self.problem = problem
        super().__init__(f"{path}: {problem}")


class FrameError(ScanError):
    """One frame's image cannot be decoded (found when it is read, after the listing passed it).

    A ScanError, so a caller that rejects the scene on ScanError still does; a caller that reads
    many frames may catch it instead and carry on with `scan.without_frames({e.frame: str(e)})`,
    which skips and counts the frame (see `scannet.py`, "Damage").
    """

    def __init__(self, frame: int, path: str | Path, problem: str):
        self.frame = int(frame)
        super().__init__(path, problem)


class SkippedInstance(NamedTuple):
    """A segGroup of the aggregation file that did not become an Instance, and why."""

    object_id: int | None  # None when the group has no readable objectId / id
    label: str
    reason: str


class AnnotatedBox(NamedTuple):
    """An object's box as a source annotates it (ARKitScenes' `obbAligned`), aligned frame."""

    center: np.ndarray  # [3] metres
    axes: np.ndarray  # [3, 3] unit box axes as rows
    extents: np.ndarray  # [3] full side lengths along the axes, metres


@dataclass(frozen=True)
class Instance:
    """One annotated object (a segGroup of the aggregation file, or an annotated box)."""

    object_id: int
    label: str
    vertex_ids: np.ndarray  # [K] int64 indices into Scan.vertices
    box: AnnotatedBox | None = None  # the source's own box, used as the object's box when given


class Frames(Protocol):
    """Lazy access to the RGB-D stream. Listing frames reads no image."""

    @property
    def ids(self) -> list[int]:
        """Usable frame indices (finite poses), ascending."""

    @property
    def skipped(self) -> dict[int, str]:
        """Frame index -> why it is not usable: NON_FINITE_POSE (tracking lost), or the damage
        found when the frames were listed (a missing, truncated or garbage file, named)."""

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
        return {i: NON_FINITE_POSE for i in range(len(self.poses)) if not np.isfinite(self.poses[i]).all()}

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
    skipped_instances: list[SkippedInstance] = field(default_factory=list)  # segGroups not read, with why
    max_bad_frame_fraction: float = MAX_BAD_FRAME_FRACTION  # the damage allowed (read_scan's argument)

    @property
    def skipped_frames(self) -> list[tuple[int, str]]:
        """(frame id, reason) of every listed frame that is not in `frames.ids`, ascending. Reasons
        other than NON_FINITE_POSE are damage, and count against `max_bad_frame_fraction`."""
        return sorted(self.frames.skipped.items())

    def without_frames(self, damaged: dict[int, str]) -> Scan:
        """This scan with `damaged` frames (found when read: FrameError) skipped as damage.

        Raises ScanError, naming the scene and the counts, when the damage then exceeds
        max_bad_frame_fraction of the listed frames, and re-raises for a frame already skipped (so a
        caller's retry loop cannot spin)."""
        again = sorted(set(damaged) & set(self.frames.skipped))
        if again:
            raise ScanError(self.name, f"frame {again[0]} is already skipped ({self.frames.skipped[again[0]]})")
        frames = DroppedFrames(self.frames, {int(i): r for i, r in damaged.items()})
        check_frame_damage(self.name, frames, self.max_bad_frame_fraction)
        return replace(self, frames=frames)


class DroppedFrames:
    """`frames` with some usable frames moved to `skipped` (damage found after listing)."""

    def __init__(self, frames: Frames, dropped: dict[int, str]):
        self._frames = frames
        self._dropped = dict(dropped)

    @property
    def ids(self) -> list[int]:
        return [i for i in self._frames.ids if i not in self._dropped]

    @property
    def skipped(self) -> dict[int, str]:
        return dict(sorted({**self._frames.skipped, **self._dropped}.items()))

    def pose(self, i: int) -> np.ndarray:
        self._check(i)
        return self._frames.pose(i)

    def color(self, i: int) -> np.ndarray:
        self._check(i)
        return self._frames.color(i)

    def depth(self, i: int) -> np.ndarray:
        self._check(i)
        return self._frames.depth(i)

    def _check(self, i: int) -> None:
        if i in self._dropped:
            raise FrameError(i, f"frame {i}", f"damaged: {self._dropped[i]}")

    def __len__(self) -> int:
        return len(self._frames)  # type: ignore[arg-type]


def check_frame_damage(where: str | Path, frames: Frames, max_fraction: float) -> list[tuple[int, str]]:
    """The damaged frames (skipped for another reason than NON_FINITE_POSE), ascending; ScanError
    naming `where` and the counts when there are more than max_fraction of the listed frames."""
    skipped = frames.skipped
    listed = len(frames.ids) + len(skipped)
    damaged = [(i, r) for i, r in sorted(skipped.items()) if r != NON_FINITE_POSE]
    if len(damaged) > max_fraction * listed:
        first = "; ".join(f"frame {i}: {r}" for i, r in damaged[:3]) + ("; ..." if len(damaged) > 3 else "")
        raise ScanError(where, f"{len(damaged)} of {listed} frames are damaged, more than "
                               f"max_bad_frame_fraction={max_fraction:g} allows ({first})")
    return damaged
