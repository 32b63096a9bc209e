"""Balanced answer letters across a dataset, as VSI-Bench balances them.

Generators place each scene's answers by a seeded rotation (`questions/_common.LetterRotation`),
which evens letters out within a scene but leaves a set of many small scenes off by a few. The
build then walks its records in write order and moves each multiple-choice answer to the next
letter of a per-type rotation (`LetterBalancer`), so every letter of a type is the answer within
one of the others' counts. Moving an answer permutes the options, the other options keeping their
order; relative distance (and camera-object relative distance) lists its candidates in the question
in option order, so the question is rewritten with them. Easy relative direction keeps VSI-Bench's
fixed `A. left`, `B. right` (and obj_obj_rel_position the same): their generators balance by which
candidates they take.
"""

from __future__ import annotations

from typing import Any

from data_gen.qa.questions._common import LETTERS, lettered

FIXED_ORDER_TYPES = frozenset({"object_rel_direction_easy", "obj_obj_rel_position"})  # "A. left", "B. right"
LISTING_TYPES = frozenset({"object_rel_distance", "camera_obj_rel_distance"})  # "(a, b, c, d)" in the question


def option_texts(options: list[str]) -> list[str]:
    """["A. chair", "B. sofa"] -> ["chair", "sofa"]."""
    return [o.split(". ", 1)[1] for o in options]


def reletter(record: dict[str, Any], letter: str) -> dict[str, Any]:
    """`record` (a multiple-choice QA record) with its correct option moved to `letter`."""
    texts = option_texts(record["options"])
    if record["question_type"] in FIXED_ORDER_TYPES:
        raise ValueError(f"{record['question_type']} keeps a fixed option order")
    position = LETTERS.index(letter)
    if position >= len(texts):
        raise ValueError(f"letter {letter} for {len(texts)} options")
    correct = texts[LETTERS.index(record["ground_truth"])]
    others = [t for t in texts if t != correct]
    order = [*others[:position], correct, *others[position:]]
    question = record["question"]
    if record["question_type"] in LISTING_TYPES:  # "(a, b, c, d)" in the question follows the options
        listed = "(" + ", ".join(texts) + ")"
        if listed not in question:
            raise ValueError(f"record {record['id']}: the question does not list its options as {listed}")
        question = question.replace(listed, "(" + ", ".join(order) + ")")
    return {**record, "question": question, "options": lettered(order), "ground_truth": letter}


class LetterBalancer:
    """Gives the multiple-choice records of each type, in the order seen, the answer letters A, B,
    C, ... in turn (from a per-type start), rewriting them with `reletter`."""

    def __init__(self, start: int = 0):
        self.start = start
        self.seen: dict[str, int] = {}

    def __call__(self, record: dict[str, Any]) -> dict[str, Any]:
        qt = record["question_type"]
        if record["problem_type"] != "multiple_choice" or qt in FIXED_ORDER_TYPES:
            return record
        k = self.seen.get(qt, 0)
        self.seen[qt] = k + 1
        return reletter(record, LETTERS[(self.start + k) % len(record["options"])])
