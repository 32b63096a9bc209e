"""Helpers every question generator shares: option lettering, number formatting, and drawing
candidate tuples (pairs, triples, ...) in a seeded random order.

A generator returns partial records: question_type, problem_type, question, options,
ground_truth, rationale and a `meta` dict whose `params` define the question (its id is a hash
of them). `scene_records` adds the scene columns and the frames.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np

LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"


def lettered(items: Sequence[str]) -> list[str]:
    """["chair", "table"] -> ["A. chair", "B. table"]."""
    return [f"{LETTERS[i]}. {item}" for i, item in enumerate(items)]


def shuffled_options(rng: np.random.Generator, items: Sequence[str], correct: str) -> tuple[list[str], str]:
    """Shuffle items with rng, letter them, and return (options, letter of `correct`)."""
    order = [items[i] for i in rng.permutation(len(items))]
    return lettered(order), LETTERS[order.index(correct)]


class LetterRotation:
    """Where the correct option goes, question after question of one type in one scene: a rotation
    through the letters from a seeded start. Each scene's letters are as even as its count allows,
    and the starts vary, so answer letters are balanced across a dataset (VSI-Bench balances them;
    a shuffle per question left the demo's sets at e.g. 10 A vs 4 B)."""

    def __init__(self, rng: np.random.Generator, num_options: int):
        self.num_options = num_options
        self.next = int(rng.integers(num_options))

    def order(self, rng: np.random.Generator, items: Sequence[str], correct: str) -> list[str]:
        """`items` with `correct` at this question's position, the others shuffled around it."""
        if len(items) != self.num_options:
            raise ValueError(f"{len(items)} options, rotation over {self.num_options}")
        others = [items[i] for i in rng.permutation(len(items)) if items[i] != correct]
        position, self.next = self.next, (self.next + 1) % self.num_options
        return [*others[:position], correct, *others[position:]]

    def options(self, rng: np.random.Generator, items: Sequence[str], correct: str) -> tuple[list[str], str]:
        """(lettered options, letter of `correct`), `correct` placed by the rotation."""
        order = self.order(rng, items, correct)
        return lettered(order), LETTERS[order.index(correct)]


def numeric(value: float, digits: int) -> str:
    """A number as answer text: round(value, digits) written with that many decimals."""
    if not math.isfinite(value):
        raise ValueError(f"answer {value} is not finite")
    return f"{value:.{digits}f}"


def r4(x: float) -> float:
    """Round for the meta JSON: 0.1 mm is plenty and keeps the bytes stable."""
    return round(float(x), 4)


def record(
    question_type: str,
    question: str,
    ground_truth: str,
    rationale: str,
    params: dict[str, Any],
    details: dict[str, Any] | None = None,
    options: list[str] | None = None,
) -> dict[str, Any]:
    """A generator's output: everything a record needs that comes from the question itself."""
    return {
        "question_type": question_type,
        "problem_type": "multiple_choice" if options else "numerical",
        "question": question,
        "options": list(options or []),
        "ground_truth": ground_truth,
        "rationale": rationale,
        "meta": {"params": params, **(details or {})},
    }


def shuffled_space(
    rng: np.random.Generator,
    total: int,
    enumerate_all: Callable[[], list[tuple]],
    draw: Callable[[np.random.Generator], tuple],
    max_enumerated: int,
) -> Iterator[tuple]:
    """Distinct candidates of a space of `total` tuples in a seeded random order: all of them,
    shuffled, when total <= max_enumerated; otherwise up to max_enumerated random draws with
    repeats skipped (scenes with many objects have too many 4-subsets to list)."""
    if total <= 0:
        return
    if total <= max_enumerated:
        pool = enumerate_all()
        for i in rng.permutation(len(pool)):
            yield pool[i]
        return
    seen: set[tuple] = set()
    for _ in range(max_enumerated):
        t = draw(rng)
        if t not in seen:
            seen.add(t)
            yield t


def pooled_combinations(
    rng: np.random.Generator, pools: list[list[int]], r: int, max_enumerated: int
) -> Iterator[tuple[int, tuple[int, ...]]]:
    """Distinct (pool index, sorted r-combination of that pool) in a seeded random order, over every
    pool (e.g. an anchor and the categories it may be compared with). A draw from a pool too small
    yields (index, ()), which callers skip."""
    total = sum(math.comb(len(pool), r) for pool in pools)

    def enumerate_all() -> list[tuple]:
        return [(k, combo) for k, pool in enumerate(pools) for combo in itertools.combinations(pool, r)]

    def draw(g: np.random.Generator) -> tuple:
        k = int(g.integers(len(pools)))
        if len(pools[k]) < r:
            return (k, ())
        return (k, tuple(sorted(int(j) for j in g.choice(pools[k], r, replace=False))))

    return shuffled_space(rng, total, enumerate_all, draw, max_enumerated)


def random_tuples(
    rng: np.random.Generator, n: int, r: int, ordered: bool, max_enumerated: int
) -> Iterator[tuple[int, ...]]:
    """Distinct r-tuples of range(n) in random order: permutations if ordered, else sorted
    combinations."""
    if r > n or r <= 0:
        return iter(())
    total = math.perm(n, r) if ordered else math.comb(n, r)
    make = itertools.permutations if ordered else itertools.combinations

    def draw(g: np.random.Generator) -> tuple[int, ...]:
        t = tuple(int(i) for i in g.choice(n, size=r, replace=False))
        return t if ordered else tuple(sorted(t))

    return shuffled_space(rng, total, lambda: list(make(range(n), r)), draw, max_enumerated)


def take_valid(
    candidates: Iterator[Any], build: Callable[[Any], dict[str, Any] | None], cap: int
) -> list[dict[str, Any]]:
    """Build records from candidates in order, skipping rejected ones (None), until cap (-1: all)."""
    out: list[dict[str, Any]] = []
    if cap == 0:
        return out
    for c in candidates:
        rec = build(c)
        if rec is not None:
            out.append(rec)
            if len(out) == cap:
                break
    return out


def take_balanced(
    candidates: Iterator[Any], build: Callable[[Any], dict[str, Any] | None], cap: int
) -> list[dict[str, Any]]:
    """`take_valid` for types whose options have a fixed order (easy direction: A. left, B. right):
    a record whose letter is already ahead of another's waits, and is used only when the candidates
    run out before cap, so a scene's answer letters are as even as its candidates allow."""
    out: list[dict[str, Any]] = []
    waiting: list[dict[str, Any]] = []
    counts: dict[str, int] = {}
    if cap == 0:
        return out
    for c in candidates:
        rec = build(c)
        if rec is None:
            continue
        letters = {chr(ord("A") + k) for k in range(len(rec["options"]))}
        least = min(counts.get(x, 0) for x in letters)
        if counts.get(rec["ground_truth"], 0) > least:
            waiting.append(rec)
            continue
        out.append(rec)
        counts[rec["ground_truth"]] = counts.get(rec["ground_truth"], 0) + 1
        if len(out) == cap:
            return out
    return (out + waiting)[:cap] if cap > 0 else out + waiting


def degrees(x: float) -> str:
    return f"{x:.1f}°"
