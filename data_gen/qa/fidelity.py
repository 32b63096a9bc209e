"""How faithfully the generators ask a benchmark's questions: its scene annotations (meta_info) and
its questions in, per question type the share of its questions we generate (coverage) and the share
of those whose answer equals ours (agreement).

Each scene's meta_info entry goes through `meta_info.scene_from_entry` and every generator of the
compared types with every cap lifted, so each valid candidate is generated. A benchmark question
is then looked up among ours by its type and the objects it names, read from its text with our
own templates (a question worded otherwise is counted as unparsed, never silently dropped).
Answers agree when the option texts, counts, sizes and room areas are equal, and an absolute
distance of theirs is ours or 0.1 m more: VSI-Bench measures between points sampled on a 5 cm grid
in each box, never nearer than the boxes' exact closest points, which we compute. Route planning (human-written in VSI-Bench) is not compared; appearance
order needs frames, so only whether each question's four categories can be formed is checked.

Question files in VSI-Bench's layout (`scene_name`, `question_type`, `question`, `options`,
`ground_truth`) and in the Spatial-MLLM authors' (`path`, `original_question_type`, `problem`,
`options`, `solution` as `<answer>X</answer>`) are both read.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import Any

from data_gen.errors import InputError
from data_gen.qa.config import QAConfig
from data_gen.qa.letters import option_texts
from data_gen.qa.meta_info import scene_from_entry
from data_gen.qa.questions import (
    GENERATORS,
    obj_appearance_order,
    object_abs_distance,
    object_counting,
    object_rel_distance,
    object_size_estimation,
    room_size_estimation,
)
from data_gen.qa.questions._common import LETTERS
from data_gen.qa.questions._direction import TEMPLATES as DIRECTION_TEMPLATES
from data_gen.qa.scene_records import question_rng
from data_gen.schema import VSI_BENCH_TYPES

# Route planning is human-written in VSI-Bench; appearance order needs frames (appearance_sets).
COMPARED_TYPES: tuple[str, ...] = tuple(t for t in VSI_BENCH_TYPES if t not in ("route_planning", "obj_appearance_order"))
_NAME = r"(?P<{}>[^,?().]+?)"  # an object's category: no comma, question mark, period or parenthesis


def _pattern(template: str, names: tuple[str, ...]) -> re.Pattern:
    """Our question template as a regex whose groups are the named fields (each used once; the easy
    direction template repeats {ori}, whose second use must equal the first)."""
    out = re.escape(" ".join(template.split()))
    for name in names:
        token = re.escape("{" + name + "}")
        out = out.replace(token, _NAME.format(name), 1)
        out = out.replace(token, f"(?P={name})")
    return re.compile(out)


PATTERNS: dict[str, re.Pattern] = {
    "object_counting": _pattern(object_counting.TEMPLATE, ("category",)),
    "object_size_estimation": _pattern(object_size_estimation.TEMPLATE, ("category",)),
    "room_size_estimation": _pattern(room_size_estimation.TEMPLATE, ()),
    "object_abs_distance": _pattern(object_abs_distance.TEMPLATE, ("o1", "o2")),
    "object_rel_distance": _pattern(object_rel_distance.TEMPLATE, ("a", "b", "c", "d", "anchor")),
    **{f"object_rel_direction_{level}": _pattern(t, ("pos", "ori", "query")) for level, t in DIRECTION_TEMPLATES.items()},
}  # fmt: skip


def question_key(question_type: str, question: str) -> tuple | None:
    """What a question asks about, from its text: the objects it names (order only where it
    matters), or None when the text is not one of our templates (whitespace aside)."""
    m = PATTERNS[question_type].fullmatch(" ".join(question.split()))
    if m is None:
        return None
    g = {k: v.strip() for k, v in m.groupdict().items()}
    if question_type in ("object_counting", "object_size_estimation"):
        return (g["category"],)
    if question_type == "room_size_estimation":
        return ()
    if question_type == "object_abs_distance":
        return (frozenset((g["o1"], g["o2"])),)
    if question_type == "object_rel_distance":
        return (g["anchor"], frozenset((g["a"], g["b"], g["c"], g["d"])))
    return (g["pos"], g["ori"], g["query"])


def answer_value(options: list[str] | None, ground_truth: str) -> str | float:
    """A multiple-choice answer as its option's text, a numeric answer as a float."""
    answer = str(ground_truth).strip()
    if options:
        texts = option_texts(options)  # lettered A, B, ... in order, as ours and the benchmark's are
        if len(answer) != 1 or LETTERS.find(answer) not in range(len(texts)):
            raise ValueError(f"answer {answer!r} is not one of the options {options}")
        return texts[LETTERS.index(answer)]
    return float(answer)


def answers_agree(question_type: str, ours: str | float, theirs: str | float) -> bool:
    """Equal, but for an absolute distance: theirs may be ours or 0.1 m more (module docstring)."""
    if question_type == "object_abs_distance" and not isinstance(ours, str) and not isinstance(theirs, str):
        return round(theirs - ours, 6) in (0.0, 0.1)
    return ours == theirs


@dataclass(frozen=True)
class BenchmarkQuestion:
    scene: str
    question_type: str
    question: str
    options: list[str]
    ground_truth: str


def benchmark_questions(rows: list[dict[str, Any]]) -> tuple[list[BenchmarkQuestion], Counter]:
    """(the compared types' questions of a question file, in either layout (module docstring);
    how many of every other type it holds, by name, so that no type vanishes unseen)."""
    out, others = [], Counter()
    for k, row in enumerate(rows):
        try:
            qtype = row.get("question_type") or row["original_question_type"]
            if qtype not in COMPARED_TYPES:
                others[str(qtype)] += 1
                continue
            scene = row.get("scene_name") or PurePosixPath(row["path"]).stem
            question = row.get("question") or row["problem"]
            truth = row.get("ground_truth")
            if truth is None:
                truth = re.sub(r"</?answer>", "", row["solution"]).strip()
        except (KeyError, TypeError, AttributeError) as e:
            raise InputError(f"question {k}: neither VSI-Bench's nor the authors' layout ({type(e).__name__}: {e})") from None
        out.append(BenchmarkQuestion(str(scene), qtype, str(question), list(row.get("options") or []), str(truth)))
    return out, others


@dataclass
class TypeFidelity:
    """One question type's figures; `missed` and `differs` name each question for a reader."""

    asked: int = 0
    generated: int = 0
    agreed: int = 0  # same answer (answers_agree)
    exact: int = 0  # the very same answer text
    unparsed: list[str] = field(default_factory=list)
    missed: list[str] = field(default_factory=list)
    differs: list[str] = field(default_factory=list)

    @property
    def coverage(self) -> float | None:
        """Generated / asked; None when the benchmark asks none."""
        return self.generated / self.asked if self.asked else None

    @property
    def agreement(self) -> float | None:
        """Same answer / generated; None when none was generated."""
        return self.agreed / self.generated if self.generated else None


@dataclass
class Fidelity:
    """`measure`'s result: per compared type its figures, and the question types not compared."""

    types: dict[str, TypeFidelity]
    not_compared: dict[str, int]

    def total(self) -> TypeFidelity:
        out = TypeFidelity()
        for f in self.types.values():
            out.asked, out.generated = out.asked + f.asked, out.generated + f.generated
            out.agreed, out.exact = out.agreed + f.agreed, out.exact + f.exact
        return out


def generated_index(scene: str, entry: dict[str, Any], config: QAConfig, seed: int = 0) -> dict[tuple, dict]:
    """(type, question key) -> our record, for every compared question the scene's entry supports."""
    meta = scene_from_entry(scene, entry)
    index: dict[tuple, dict] = {}
    for qtype in COMPARED_TYPES:
        for rec in GENERATORS[qtype](meta, question_rng(seed, scene, qtype), config):
            index[(qtype, question_key(qtype, rec["question"]))] = rec
    return index


def exhaustive(config: QAConfig) -> QAConfig:
    """`config` with every cap lifted: every valid candidate of every compared type."""
    caps = {**config.max_per_type, **{t: -1 for t in COMPARED_TYPES}}
    return config.model_copy(update={"max_per_type": caps, "max_enumerated": 10**9})


def measure(meta_info: dict[str, dict], rows: list[dict[str, Any]], config: QAConfig | None = None) -> Fidelity:
    """Per compared type, how many of the benchmark's questions we generate and answer alike.
    Questions on scenes missing from `meta_info` raise InputError naming them."""
    config = exhaustive(config or QAConfig())
    questions, others = benchmark_questions(rows)
    absent = sorted({q.scene for q in questions} - set(meta_info))
    if absent:
        raise InputError(f"questions on {len(absent)} scene(s) without a meta_info entry: {absent[:5]}")
    figures = {t: TypeFidelity() for t in COMPARED_TYPES}
    indexes: dict[str, dict] = {}
    for q in questions:
        fig = figures[q.question_type]
        fig.asked += 1
        label = f"{q.scene}: {q.question.splitlines()[0]}"
        key = question_key(q.question_type, q.question)
        if key is None:
            fig.unparsed.append(label)
            fig.missed.append(label)
            continue
        if q.scene not in indexes:
            indexes[q.scene] = generated_index(q.scene, meta_info[q.scene], config)
        ours = indexes[q.scene].get((q.question_type, key))
        if ours is None:
            fig.missed.append(label)
            continue
        fig.generated += 1
        mine = answer_value(ours["options"], ours["ground_truth"])
        theirs = answer_value(q.options, q.ground_truth)
        fig.exact += mine == theirs
        if answers_agree(q.question_type, mine, theirs):
            fig.agreed += 1
        else:
            fig.differs.append(f"{label} -> ours {mine}, theirs {theirs}")
    return Fidelity(figures, dict(sorted(others.items())))


def count_agreement(meta_info: dict[str, dict], config: QAConfig | None = None) -> tuple[int, list[str], list[str]]:
    """(counts compared, mismatches, where the entry's boxes disagree with its own counts).

    Every count the counting generator asks of each scene, and every category it leaves out, is
    compared with the entry's `object_counts` (VSI-Bench asks each category with more than one
    instance). Counting reads object_counts, so a mismatch means a wiring fault; the third list
    shows where the boxes alone (exact repeats once) would have given another count."""
    config = exhaustive(config or QAConfig())
    compared, wrong, boxes_differ = 0, [], []
    for scene, entry in sorted(meta_info.items()):
        meta = scene_from_entry(scene, entry)
        asked = {r["meta"]["params"]["category"]: int(r["ground_truth"])
                 for r in GENERATORS["object_counting"](meta, question_rng(0, scene, "object_counting"), config)}  # fmt: skip
        stated = entry.get("object_counts", {})
        in_boxes = Counter(o.category for o in meta.objects)
        for category, n in sorted(stated.items()):
            compared += 1
            if asked.get(category, 1) != n:
                wrong.append(f"{scene}: {category} ours {asked.get(category, 'not asked')}, theirs {n}")
            if in_boxes.get(category, 0) != n:
                boxes_differ.append(f"{scene}: {category} object_counts {n}, boxes {in_boxes.get(category, 0)}")
        wrong += [f"{scene}: {c} asked, not in object_counts" for c in sorted(set(asked) - set(stated))]
    return compared, wrong, boxes_differ


APPEARANCE = _pattern(obj_appearance_order.TEMPLATE, ("a", "b", "c", "d"))


def appearance_sets(meta_info: dict[str, dict], rows: list[dict[str, Any]]) -> tuple[int, list[str]]:
    """(appearance-order questions, those whose four categories are not all objects of their scene's
    entry): without frames, all meta_info can show is that each question's set can be formed."""
    asked, unformable = 0, []
    for row in rows:
        if (row.get("question_type") or row.get("original_question_type")) != "obj_appearance_order":
            continue
        asked += 1
        scene = row.get("scene_name") or PurePosixPath(row["path"]).stem
        question = row.get("question") or row["problem"]
        m = APPEARANCE.fullmatch(question.strip())
        present = set(scene_from_entry(scene, meta_info[scene]).counts) if scene in meta_info else set()
        if m is None or not {v.strip() for v in m.groupdict().values()} <= present:
            unformable.append(f"{scene}: {question}")
    return asked, unformable


def report(fidelity: Fidelity) -> str:
    """A table: per type asked, generated (coverage), same answer (agreement), the very same answer
    text; then the totals and the types not compared."""

    def pct(x: float | None) -> str:
        return "-" if x is None else f"{x:.1%}"

    head = f"{'type':32s} {'asked':>6s} {'generated':>10s} {'coverage':>9s} {'same':>6s} {'agreement':>10s} {'exact':>6s}"
    lines = [head]
    for t, f in [*fidelity.types.items(), ("all", fidelity.total())]:
        lines.append(f"{t:32s} {f.asked:6d} {f.generated:10d} {pct(f.coverage):>9s} {f.agreed:6d} {pct(f.agreement):>10s} {f.exact:6d}")
    if fidelity.not_compared:
        lines.append("not compared: " + ", ".join(f"{t} {n}" for t, n in fidelity.not_compared.items()))
    return "\n".join(lines)
