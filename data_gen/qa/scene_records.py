"""One scan -> its complete QA records: metadata, every question generator, frame selection.

This is the per-scene function the Ray Data build maps over scenes. It is pure (no Ray) and
deterministic: the same scan, config and seed give identical records, because every random
choice draws from a generator seeded by (seed, scene name, question type) through sha256.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from typing import Any

import numpy as np

from data_gen.qa.config import QAConfig
from data_gen.qa.frame_selection import coverage_positions, scan_frame_coords, uniform_indices
from data_gen.qa.labels import LabelMapping
from data_gen.qa.metadata import SceneMetadata, scene_metadata
from data_gen.qa.questions import GENERATORS
from data_gen.qa.visibility import visibility_frame_ids
from data_gen.scans.scan import FrameError, Frames, Scan, ScanError
from data_gen.schema import CAMERA_MOTION_TYPES, COLUMNS, canonical_json, record_id, validate_record
from data_gen.seeding import stable_rng


class SharedDepthFrames:
    """A scan's frames, with the depth of `shared` frames decoded once for two readers.

    Appearance times (visibility) and frame selection both read the depth of the frames that are
    visibility steps *and* selection candidates. The first read of such a frame keeps the array,
    the second takes it back out, so each depth image is decoded once per scene and at most the
    shared frames a first reader got to are held at a time. Cached arrays are read-only.
    """

    def __init__(self, frames: Frames, shared: Iterable[int]):
        self._frames = frames
        self._shared = frozenset(int(i) for i in shared)
        self._kept: dict[int, np.ndarray] = {}

    @property
    def ids(self) -> list[int]:
        return self._frames.ids

    @property
    def skipped(self) -> dict[int, str]:
        return self._frames.skipped

    def pose(self, i: int) -> np.ndarray:
        return self._frames.pose(i)

    def color(self, i: int) -> np.ndarray:
        return self._frames.color(i)

    def depth(self, i: int) -> np.ndarray:
        if i not in self._shared:
            return self._frames.depth(i)
        kept = self._kept.pop(i, None)
        if kept is not None:
            return kept
        depth = np.asarray(self._frames.depth(i)).view()  # a view: the source array stays writeable
        depth.flags.writeable = False
        self._kept[i] = depth
        return depth

    def __len__(self) -> int:
        return len(self._frames)  # type: ignore[arg-type]


def _share_depth(scan: Scan, config: QAConfig) -> Scan:
    """The scan with its frames wrapped so the depth frames both metadata and selection read decode once."""
    ids = scan.frames.ids
    try:
        steps = visibility_frame_ids(ids, float(config.fps or scan.fps), config.visibility_step_s)
    except (ValueError, OverflowError):  # a broken fps: left for scene_metadata to report
        return scan
    shared = set(uniform_indices(ids, config.num_candidates)) & set(steps)
    return dataclasses.replace(scan, frames=SharedDepthFrames(scan.frames, shared)) if shared else scan


def question_rng(seed: int, scene_name: str, question_type: str) -> np.random.Generator:
    """The generator one question type draws from in one scene."""
    return stable_rng("questions", seed, scene_name, question_type)


def scene_frames(scan: Scan, config: QAConfig) -> tuple[list[int], list[int]]:
    """(space-aware frame_indices, uniform_indices) as stream frame indices, equal length.

    Candidates are num_candidates evenly spaced usable frames; their true depth and poses are the
    geometry. Raises ScanError when no frame is usable or no candidate has a depth measurement.
    """
    ids = scan.frames.ids
    if not ids:
        raise ScanError(scan.name, "no usable frame (every pose is non-finite)")
    candidates = uniform_indices(ids, config.num_candidates)
    xyz, bounds = scan_frame_coords(scan, candidates, config.depth_stride)
    if not xyz.shape[1]:
        raise ScanError(scan.name, f"none of the {len(candidates)} candidate frames has a depth measurement")
    # True geometry: confidence 1 everywhere (None), as for video frames (pipelines/sample_frames).
    chosen = coverage_positions(xyz, bounds, None, config.num_frames, config.conf_threshold,
                                config.voxel_divisions, config.pad_frames)  # fmt: skip
    frame_indices = [candidates[p] for p in chosen]
    return frame_indices, uniform_indices(ids, len(frame_indices))


def scene_records(
    scan: Scan, config: QAConfig, seed: int, labels: LabelMapping | None = None
) -> list[dict[str, Any]]:
    """Every question of every type for one scan, as records matching RECORD_SCHEMA. `labels`
    maps its instance labels to categories (default: `LabelMapping.load(config)`).

    Raises ScanError (with the reason) for a scene with no usable frame, no annotated object in
    the vocabulary, or a degenerate room.
    """
    return scene_qa(scan, config, seed, labels)[0]


def scene_qa(
    scan: Scan, config: QAConfig, seed: int, labels: LabelMapping | None = None
) -> tuple[list[dict[str, Any]], SceneMetadata]:
    """(`scene_records`, the scene metadata they were asked from).

    A frame whose image turns out undecodable (FrameError) is skipped and counted, and the scene
    redone without it (scans.scan.Scan.without_frames): only more damage than the scan's threshold
    rejects the scene. The loop ends: a frame is never skipped twice."""
    if seed < 0:
        raise ValueError(f"seed must be >= 0, got {seed}")
    while True:
        try:
            shared = _share_depth(scan, config)
            meta = scene_metadata(shared, config, labels)
            frame_indices, uniform = scene_frames(shared, config)
            break
        except FrameError as e:
            scan = scan.without_frames({e.frame: str(e)})
    meta = dataclasses.replace(meta, **shown_camera_fields(scan, uniform))
    records = metadata_records(meta, config, seed, video=scan.name, frame_indices=frame_indices,
                               uniform_indices=uniform)  # fmt: skip
    return records, meta


def shown_camera_fields(scan: Scan, frames: list[int]) -> dict[str, tuple]:
    """SceneMetadata's fields for the frames every record shows: their ids, the camera-to-world pose
    [3, 4] of each (row-major) and the colour camera (fx, fy, cx, cy, width, height)."""
    k = scan.intrinsic_color
    return {
        "shown_frames": tuple(int(i) for i in frames),
        "shown_poses": tuple(tuple(float(v) for v in scan.frames.pose(i)[:3].reshape(-1)) for i in frames),
        "shown_camera": (float(k[0, 0]), float(k[1, 1]), float(k[0, 2]), float(k[1, 2]), *map(float, scan.color_size)),
    }


def metadata_records(
    meta: SceneMetadata,
    config: QAConfig,
    seed: int,
    *,
    video: str,
    frame_indices: list[int] | tuple[int, ...] = (),
    uniform_indices: list[int] | tuple[int, ...] = (),
) -> list[dict[str, Any]]:
    """Every question the metadata supports, as records: `video` is the scene folder (relative to
    the scans root) and the frame lists are the scene's (empty when built from metadata alone)."""
    records: list[dict[str, Any]] = []
    for question_type, generate in GENERATORS.items():
        # Camera-motion questions name frames by their place among those shown: both lists are those.
        shown = (meta.shown_frames,) * 2 if question_type in CAMERA_MOTION_TYPES else (frame_indices, uniform_indices)
        for q in generate(meta, question_rng(seed, meta.scene_name, question_type), config):
            rec = {
                "id": record_id(meta.scene_name, question_type, q["meta"]["params"]),
                "dataset": meta.dataset,
                "scene_name": meta.scene_name,
                "question_type": q["question_type"],
                "problem_type": q["problem_type"],
                "question": q["question"],
                "options": list(q["options"]),
                "ground_truth": q["ground_truth"],
                "rationale": q["rationale"],
                "video": video,
                "frame_indices": list(shown[0]),
                "uniform_indices": list(shown[1]),
                "meta": canonical_json(q["meta"]),
            }
            rec = {c: rec[c] for c in COLUMNS}  # schema column order
            validate_record(rec)
            records.append(rec)
    return records
