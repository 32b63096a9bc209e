"""Scene splits and the question mix: pure, deterministic choices over (id, type, scene) rows."""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Iterable

from data_gen.build.config import MIX_GROUPS

GROUP_OF = {qtype: group for group, qtypes in MIX_GROUPS.items() for qtype in qtypes}


def stable_unit(*parts: object) -> float:
    """A number in [0, 1) from a hash of the parts: the same on every machine and Python run."""
    digest = hashlib.sha256("\x1f".join(map(str, parts)).encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def split_scenes(scenes: Iterable[str], val_fraction: float, seed: int) -> dict[str, str]:
    """scene -> "train" | "val". Whole scenes only, so no scene is in two splits. At least one val
    scene when val_fraction > 0 and there are two or more scenes."""
    order = sorted(scenes, key=lambda s: (stable_unit("split", seed, s), s))
    n_val = round(len(order) * val_fraction)
    if val_fraction > 0 and len(order) >= 2:
        n_val = min(max(n_val, 1), len(order) - 1)
    return {s: ("val" if i < n_val else "train") for i, s in enumerate(order)}


def select_mix(
    rows: list[tuple[str, str]], mix: dict[str, float], target_total: int, seed: int
) -> tuple[set[str], dict]:
    """Choose record ids so that question groups follow `mix` (percent shares).

    rows: (id, question_type) of one split's candidates. target_total 0 keeps the largest total
    the scarcest group allows. Groups with no candidates drop out of the mix (the rest are
    renormalised) and are reported. Within a group, records are taken in a seeded hash order.
    Returns (kept ids, report)."""
    by_group: dict[str, list[str]] = defaultdict(list)
    for rid, qtype in rows:
        if qtype in GROUP_OF:
            by_group[GROUP_OF[qtype]].append(rid)
    wanted = {g: share for g, share in mix.items() if share > 0}
    active = {g: share for g, share in wanted.items() if by_group.get(g)}
    report = {"missing_groups": sorted(set(wanted) - set(active)), "available": {g: len(v) for g, v in by_group.items()}}
    if not active:
        return set(), {**report, "quota": {}}
    norm = sum(active.values())
    shares = {g: s / norm for g, s in active.items()}
    most = min(len(by_group[g]) / p for g, p in shares.items())  # largest total the mix allows
    total = min(target_total, most) if target_total else most
    quota = {g: min(len(by_group[g]), int(round(total * p))) for g, p in shares.items()}
    kept: set[str] = set()
    for g, ids in by_group.items():
        ranked = sorted(ids, key=lambda rid: (stable_unit("mix", seed, rid), rid))
        kept.update(ranked[: quota.get(g, 0)])
    return kept, {**report, "quota": quota}
