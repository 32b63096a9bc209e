"""What each question rule costs: per question type, the candidates examined, the questions asked
and how many candidates each rule rejected, over every candidate of a scene (caps lifted, so the
count does not depend on where a cap stopped). A scene with more candidates of a type than
`qa.max_enumerated` is counted over that many random draws, as the build draws them. The dataset
card sums it over the built scenes, so a user sees what a margin costs before changing it.

Rules are named by the config key that sets them (`qa.rel_distance_margin (two candidates)`), or
by the bin for easy direction's discarded "back".
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable

from data_gen.qa.config import QAConfig
from data_gen.qa.metadata import SceneMetadata
from data_gen.qa.questions import GENERATORS
from data_gen.qa.scene_records import question_rng
from data_gen.schema import VSI_BENCH_TYPES

# The VSI-Bench types whose candidates rules reject (counting and sizes only need the instances).
RULED_TYPES: tuple[str, ...] = tuple(
    t for t in VSI_BENCH_TYPES if t.startswith(("object_abs_distance", "object_rel_", "obj_appearance_order"))
)


def scene_rule_costs(meta: SceneMetadata, config: QAConfig, seed: int) -> dict[str, Counter]:
    """type -> Counter of "candidates", "asked" and each rule's rejections, for the ruled types the
    config asks (cap != 0). Draws from the same generators as the build, seeded the same way."""
    asked = [t for t in RULED_TYPES if config.cap(t) != 0]
    lifted = config.model_copy(update={"max_per_type": {**config.max_per_type, **{t: -1 for t in asked}}})
    out = {}
    for qtype in asked:
        tally = Counter({"candidates": 0, "asked": 0})
        GENERATORS[qtype](meta, question_rng(seed, meta.scene_name, qtype), lifted, tally=tally)
        out[qtype] = tally
    return out


def rule_costs(scenes: Iterable[SceneMetadata], config: QAConfig, seed: int) -> dict[str, dict[str, int]]:
    """`scene_rule_costs` summed over scenes: type -> {"candidates", "asked", rule: rejected}."""
    total: dict[str, Counter] = {}
    for meta in scenes:
        for qtype, tally in scene_rule_costs(meta, config, seed).items():
            total.setdefault(qtype, Counter()).update(tally)
    return {t: {"candidates": c["candidates"], "asked": c["asked"], **dict(sorted((k, v) for k, v in c.items()
            if k not in ("candidates", "asked")))} for t, c in sorted(total.items())}  # fmt: skip
