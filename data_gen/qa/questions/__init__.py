"""One module per VSI-Bench question type; each exposes `generate(meta, rng, config) -> list[dict]`.

GENERATORS is an explicit dict (no decorators), in the order records are produced.
route_planning is not generated yet (its benchmark questions are human-written).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from data_gen.qa.config import QAConfig
from data_gen.qa.metadata import SceneMetadata
from data_gen.qa.questions import (
    obj_appearance_order,
    object_abs_distance,
    object_counting,
    object_rel_direction_easy,
    object_rel_direction_hard,
    object_rel_direction_medium,
    object_rel_distance,
    object_size_estimation,
    room_size_estimation,
)

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
}
