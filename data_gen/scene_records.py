"""One scan -> its complete QA records: metadata, every question generator, frame selection.

This is the per-scene function the Ray Data build maps over scenes. It is pure (no Ray) and
deterministic: the same scan, config and seed give identical records, because every random
choice draws from a generator seeded by (seed, scene name, question type) through sha256.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from data_gen.config import QAConfig
from data_gen.frame_selection import pad_positions, scan_frame_geometry, select_frames, uniform_indices
from data_gen.metadata import scene_metadata
from data_gen.questions import GENERATORS
from data_gen.scan import Scan, ScanError
from data_gen.schema import COLUMNS, canonical_json, record_id, validate_record
from data_gen.seeding import stable_rng


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
    points, confidences = scan_frame_geometry(scan, candidates, config.depth_stride)
    if not any(len(p) for p in points):
        raise ScanError(scan.name, f"none of the {len(candidates)} candidate frames has a depth measurement")
    chosen = select_frames(
        points, confidences, config.num_frames, config.conf_threshold, config.voxel_divisions
    )
    if config.pad_frames:
        chosen = pad_positions(chosen, len(candidates), config.num_frames)
    frame_indices = [candidates[p] for p in chosen]
    return frame_indices, uniform_indices(ids, len(frame_indices))


def scene_records(scan: Scan, config: QAConfig, seed: int) -> list[dict[str, Any]]:
    """Every question of every type for one scan, as records matching RECORD_SCHEMA.

    Raises ScanError (with the reason) for a scene with no usable frame, no annotated
    non-structural object, or a degenerate room.
    """
    if seed < 0:
        raise ValueError(f"seed must be >= 0, got {seed}")
    meta = scene_metadata(scan, config)
    frame_indices, uniform = scene_frames(scan, config)
    records: list[dict[str, Any]] = []
    for question_type, generate in GENERATORS.items():
        for q in generate(meta, question_rng(seed, scan.name, question_type), config):
            rec = {
                "id": record_id(scan.name, question_type, q["meta"]["params"]),
                "dataset": scan.dataset,
                "scene_name": scan.name,
                "question_type": q["question_type"],
                "problem_type": q["problem_type"],
                "question": q["question"],
                "options": list(q["options"]),
                "ground_truth": q["ground_truth"],
                "rationale": q["rationale"],
                "video": scan.name,  # the scene folder, relative to the scans root
                "frame_indices": list(frame_indices),
                "uniform_indices": list(uniform),
                "meta": canonical_json(q["meta"]),
            }
            rec = {c: rec[c] for c in COLUMNS}  # schema column order
            validate_record(rec)
            records.append(rec)
    return records
