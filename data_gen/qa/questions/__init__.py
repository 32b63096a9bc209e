"""One module per VSI-Bench question type; each exposes `generate(meta, rng, config) -> list[dict]`.

GENERATORS is an explicit dict (no decorators), in the order records are produced: VSI-Bench's
types, then the camera-motion types (`data_gen.schema.CAMERA_MOTION_TYPES`, asked from the poses
of the frames a record shows, `_camera.py`). route_planning is planned on the scan's free space
(`qa/floor_grid.py`, `qa/route.py`); the benchmark's own routes are human-written.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from data_gen.qa.config import QAConfig
from data_gen.qa.metadata import SceneMetadata
from data_gen.qa.questions import (
    camera_displacement,
    camera_movement_direction,
    camera_obj_abs_distance,
    camera_obj_rel_distance,
    obj_appearance_order,
    obj_obj_rel_position,
    object_abs_distance,
    object_counting,
    object_rel_direction_easy,
    object_rel_direction_hard,
    object_rel_direction_medium,
    object_rel_distance,
    object_size_estimation,
    room_size_estimation,
    route_planning,
)

# What the generators ask, as a version: bump it when a rule changes what a scene asks while no
# config value changes (the build's scene cache keys include it, so cached scenes are redone).
RULES_VERSION = 2

Generator = Callable[[SceneMetadata, np.random.Generator, QAConfig], list[dict[str, Any]]]

GENERATORS: dict[str, Generator] = {
    "object_counting": object_counting.generate,
    "object_size_estimation": object_size_estimation.generate,
    "room_size_estimation": room_size_estimation.generate,
    "object_abs_distance": object_abs_distance.generate,
    "object_rel_distance": object_rel_distance.generate,
    "object_rel_direction_easy": object_rel_direction_easy.generate,
    "object_rel_direction_medium": object_rel_direction_medium.generate,
    "object_rel_direction_hard": object_rel_direction_hard.generate,
    "obj_appearance_order": obj_appearance_order.generate,
    "route_planning": route_planning.generate,
    "camera_displacement": camera_displacement.generate,
    "camera_movement_direction": camera_movement_direction.generate,
    "camera_obj_abs_distance": camera_obj_abs_distance.generate,
    "camera_obj_rel_distance": camera_obj_rel_distance.generate,
    "obj_obj_rel_position": obj_obj_rel_position.generate,
}
