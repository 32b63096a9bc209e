"""object_rel_direction_easy: the easy level of relative direction (geometry in _direction.py)."""

from __future__ import annotations

from collections import Counter
from typing import Any

import numpy as np

from data_gen.qa.config import QAConfig
from data_gen.qa.metadata import SceneMetadata
from data_gen.qa.questions._direction import generate_direction

QUESTION_TYPE = "object_rel_direction_easy"


def generate(
    meta: SceneMetadata, rng: np.random.Generator, config: QAConfig, tally: Counter | None = None
) -> list[dict[str, Any]]:
    return generate_direction(meta, rng, config, "easy", tally)
