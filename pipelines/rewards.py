"""Reward functions shared by GRPO training and evaluation. Pure: no Ray, no torch, no I/O.

    score("<think>...</think><answer>3.2</answer>", "numerical", "3.0")
    -> {"format": 1.0, "accuracy": 0.9, "total": 1.9}

- `mean_relative_accuracy(pred, gt)`: VSI-Bench's MRA, the share of thresholds
  theta in {0.50, 0.55, ..., 0.95} with |pred - gt| / |gt| <= 1 - theta (gt = 0: 1 if pred == 0).
- `parse_answer(text, problem_type)`: the last closed `<answer>...</answer>` span (else the whole
  text) read as a number (`numerical`) or an option letter (`multiple_choice`); None = no answer.
- `score(completion, problem_type, ground_truth)`: format (0/1), accuracy (0/1 for multiple
  choice, MRA for numerical) and their weighted sum.
- `length_bonus(...)`: Video-R1's group-level length bonus, applied after per-sample scoring.
- `accuracy(completion, problem_type, ground_truth, rule=..., answer_tag=...)`: evaluation's
  score under a named rule: `official` (VSI-Bench's scorer exactly, `official_token`),
  `lenient` (the `parse_answer` reading GRPO trains with) or `spatial_mllm` (the authors' own
  scorer, `spatial_mllm_scoring.py`).
- `open_ended` answers (ScanQA, SQA3D): `exact_match`, 1 when the answer equals any accepted answer
  (the ground truth may be a list of them) after `normalize_text`: lower case, punctuation and the
  articles a/an/the dropped, whitespace collapsed (SQuAD's normalisation). Both rules and GRPO's
  accuracy reward (with grpo.open_ended=exact_match) use it.

Nothing here raises on a completion, whatever its text. A bad `problem_type` or a ground truth
that does not parse is a data bug and raises ValueError (reward actors count it as an error).
"""

from __future__ import annotations

import bisect
import functools
import math
import re
from collections.abc import Sequence

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

PROBLEM_TYPES = ("numerical", "multiple_choice", "open_ended")
SCORING_RULES = ("official", "lenient", "spatial_mllm")

# VSI-Bench computes the thresholds as np.linspace(0.50, 0.95, 10) and compares against 1 - theta;
# the same floats here make boundary cases (|p - g| / |g| == 0.1) score as the benchmark does.
_MRA_TOLERANCES = tuple(float(1 - theta) for theta in np.linspace(0.5, 0.95, 10))
_MRA_ASCENDING = sorted(_MRA_TOLERANCES)

# First number: sign, thousands separators (groups of exactly three digits), decimals, exponent.
# `parse_number` finds the first digit with a plain scan and matches from there (a search with
# this pattern tries every position and is several times slower on long reasoning texts).
_NUMBER = re.compile(
    r"[-+]?(?:(?:[0-9]{1,3}(?:,[0-9]{3})+(?![0-9])|[0-9]+)(?:\.[0-9]+)?|\.[0-9]+)(?:[eE][-+]?[0-9]+)?"
)
_DIGIT = re.compile(r"[0-9]")
# "nan"/"inf" as words (ASCII, any case): when one comes before the first number, there is no answer.
_SPECIAL = re.compile(r"\b(?:[nN][aA][nN]|[iI][nN][fF](?:[iI][nN][iI][tT][yY])?)\b")

_PUNCTUATION = re.compile(r"[^\w\s]")
_ARTICLES = re.compile(r"\b(?:a|an|the)\b")

_THINK_OPEN, _THINK_CLOSE = "<think>", "</think>"
_ANSWER_OPEN, _ANSWER_CLOSE = "<answer>", "</answer>"


class RewardConfig(BaseModel):
    """Reward weights and Video-R1's length bonus (the `grpo.reward` section once wired)."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True, use_attribute_docstrings=True)

    format_weight: float = Field(1.0, ge=0.0)
    """Weight of the format reward (1 when the completion is <think>...</think><answer>...</answer>)."""
    accuracy_weight: float = Field(1.0, ge=0.0)
    """Weight of the accuracy reward (option letter match, or MRA for numerical answers)."""
    length_bonus: bool = False
    """Video-R1's length bonus; needs the group, so it is applied by `length_bonus(...)`, not `score`."""
    length_bonus_value: float = Field(0.2, ge=0.0)
    """Bonus added to `total` of an accurate rollout whose length is in the window."""
    length_bonus_min_tokens: int = Field(320, ge=0)
    """Shortest completion (tokens, inclusive) that earns the bonus."""
    length_bonus_max_tokens: int = Field(512, ge=0)
    """Longest completion (tokens, inclusive) that earns the bonus."""
    length_bonus_accuracy_threshold: float = Field(0.1, ge=0.0)
    """A rollout is accurate when its accuracy reward is above this (Video-R1: 0.1)."""
    length_bonus_min_accurate: int = Field(2, ge=1)
    """The bonus applies only when at least this many rollouts of the group are accurate."""


DEFAULT_CONFIG = RewardConfig()


def mean_relative_accuracy(pred: float | None, gt: float) -> float:
    """VSI-Bench's Mean Relative Accuracy of one numerical answer, in [0, 1].

    The share of theta in {0.50, 0.55, ..., 0.95} with |pred - gt| / |gt| <= 1 - theta; gt = 0
    scores 1 if pred == 0 else 0. No answer (None), nan or inf scores 0.
    """
    try:
        p, g = float(pred), float(gt)  # type: ignore[arg-type]
    except (TypeError, ValueError, OverflowError):
        return 0.0
    if not (math.isfinite(p) and math.isfinite(g)):
        return 0.0
    if g == 0.0:
        return 1.0 if p == 0.0 else 0.0
    rel = abs(p - g) / abs(g)  # inf on overflow, which passes no threshold
    # thresholds passed = tolerances >= rel
    return (len(_MRA_ASCENDING) - bisect.bisect_left(_MRA_ASCENDING, rel)) / len(_MRA_ASCENDING)


def answer_span(text: str) -> str:
    """The content of the last closed `<answer>...</answer>` span, else the whole text."""
    end = text.rfind(_ANSWER_CLOSE)
    if end >= 0:
        start = text.rfind(_ANSWER_OPEN, 0, end)
        if start >= 0:
            return text[start + len(_ANSWER_OPEN) : end]
    return text


def parse_number(text: str) -> float | None:
    """The first number in `text` ("-1,234.5", ".5", "2e3"); None when there is none, or when it
    is nan, inf or overflows."""
    digit = _DIGIT.search(text)
    if digit is None:
        return None
    start = digit.start()  # the number may begin one or two characters earlier: "-.5"
    if start and text[start - 1] == ".":
        start -= 1
    if start and text[start - 1] in "+-":
        start -= 1
    before = text[:start].lower()
    if ("nan" in before or "inf" in before) and _SPECIAL.search(text, 0, start + 1):
        return None  # (start + 1: the word boundary after "nan" sees the next character)
    match = _NUMBER.match(text, start)
    if match is None:  # cannot happen: a digit is at start, start + 1 or start + 2
        return None
    try:
        value = float(match.group().replace(",", ""))
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def parse_option(text: str) -> str | None:
    """The option letter of the first token, as VSI-Bench reads it: "B", "b", "B.", "(B)" and
    "B. chair" all give "B"; anything else gives None."""
    head = text.lstrip()[:64].split(None, 1)  # first token only; never split a huge text
    if not head:
        return None
    token = head[0].rstrip(".:,;").strip("()[]")
    if len(token) == 1 and token.isascii() and token.isalpha():
        return token.upper()
    return None


def normalize_text(text: str) -> str:
    """Lower case, punctuation and the articles a/an/the dropped, whitespace collapsed."""
    text = _PUNCTUATION.sub(" ", text.lower())
    return " ".join(_ARTICLES.sub(" ", text).split())


def exact_match(text: str, answers: Sequence[str]) -> float:
    """1.0 when `text` equals one of `answers` after `normalize_text`, else 0.0 (an empty answer
    never matches)."""
    said = normalize_text(text) if isinstance(text, str) else ""
    return 1.0 if said and said in {normalize_text(str(a)) for a in answers} else 0.0


def accepted_answers(ground_truth: str | Sequence[str]) -> list[str]:
    """An open-ended ground truth as its list of accepted answers (a string is one answer);
    ValueError when there is none."""
    answers = [ground_truth] if isinstance(ground_truth, str) else [str(a) for a in ground_truth]
    if not any(normalize_text(a) for a in answers):
        raise ValueError(f"open-ended ground truth {ground_truth!r} holds no answer")
    return answers


def parse_answer(text: str, problem_type: str) -> float | str | None:
    """The answer a completion gives: a float (`numerical`), an upper-case option letter
    (`multiple_choice`), or None when there is none. Reads the last closed `<answer>` span if
    there is one, else the whole text. Never raises on any text."""
    if not isinstance(text, str):
        return None
    span = answer_span(text)
    if problem_type == "numerical":
        return parse_number(span)
    if problem_type == "multiple_choice":
        return parse_option(span)
    if problem_type == "open_ended":
        return normalize_text(span) or None
    return None


def format_ok(completion: str) -> bool:
    """True when the whole completion (surrounding whitespace aside) is `<think>...</think>`,
    optional whitespace, then `<answer>...</answer>`, each tag exactly once.

    Stricter than Video-R1's `re.fullmatch(r"<think>.*?</think>\\s*<answer>.*?</answer>")`, which
    also accepts repeated or nested tags inside the spans; string searches keep it linear in the
    length of the text, whatever it holds."""
    if not isinstance(completion, str):
        return False
    s = completion.strip()
    if not (s.startswith(_THINK_OPEN) and s.endswith(_ANSWER_CLOSE)):
        return False
    if s.count(_THINK_OPEN) != 1 or s.count(_THINK_CLOSE) != 1 or s.count(_ANSWER_OPEN) != 1:
        return False
    if s.count(_ANSWER_CLOSE) != 1:
        return False
    think_end = s.find(_THINK_CLOSE)
    answer_start = s.find(_ANSWER_OPEN)
    return think_end < answer_start and not s[think_end + len(_THINK_CLOSE) : answer_start].strip()


def parse_ground_truth(ground_truth: str | float, problem_type: str) -> float | str:
    """The ground truth as `score` compares it; ValueError for an unknown problem_type or a ground
    truth that does not parse (a data bug, never the completion's fault)."""
    return _parse_ground_truth(str(ground_truth), problem_type)


@functools.lru_cache(maxsize=4096)  # the G rollouts of a group share their ground truth
def _parse_ground_truth(ground_truth: str, problem_type: str) -> float | str:
    if problem_type not in PROBLEM_TYPES:
        raise ValueError(f"problem_type must be one of {PROBLEM_TYPES}, got {problem_type!r}")
    parsed = parse_answer(ground_truth, problem_type)
    if parsed is None:
        raise ValueError(f"ground truth {ground_truth!r} does not parse as {problem_type}")
    return parsed


def score_and_parse(
    completion: str, problem_type: str, ground_truth: str | float, config: RewardConfig = DEFAULT_CONFIG
) -> tuple[dict[str, float], float | str | None]:
    """`score`, plus the parsed answer (None = unparseable) for logging and counting. An
    open-ended ground truth may be a list of accepted answers."""
    if problem_type == "open_ended":
        gt = accepted_answers(ground_truth)
    else:
        gt = parse_ground_truth(ground_truth, problem_type)
    answer = parse_answer(completion, problem_type)
    fmt = 1.0 if format_ok(completion) else 0.0
    if problem_type == "open_ended":
        acc = exact_match(answer_span(completion) if isinstance(completion, str) else "", gt)
    elif problem_type == "numerical":
        acc = mean_relative_accuracy(answer, gt)  # type: ignore[arg-type]
    else:
        acc = 1.0 if answer == gt else 0.0
    total = config.format_weight * fmt + config.accuracy_weight * acc
    return {"format": fmt, "accuracy": acc, "total": total}, answer


def score(
    completion: str, problem_type: str, ground_truth: str | float, config: RewardConfig = DEFAULT_CONFIG
) -> dict[str, float]:
    """{"format": f, "accuracy": a, "total": format_weight * f + accuracy_weight * a}.

    format: 1.0 if `format_ok(completion)` else 0.0. accuracy: multiple choice = 1.0 for the exact
    option letter, numerical = MRA; no answer scores 0. Never raises on any completion text.
    """
    return score_and_parse(completion, problem_type, ground_truth, config)[0]


def length_bonus(
    accuracy: Sequence[float],
    num_tokens: Sequence[int],
    group_size: int,
    config: RewardConfig = DEFAULT_CONFIG,
) -> list[float]:
    """Video-R1's length bonus for a batch of rollouts ordered group by group ([N], N = groups x
    group_size), returned per rollout; all zeros unless `config.length_bonus`.

    Within a group, when at least `length_bonus_min_accurate` rollouts are accurate (accuracy >
    `length_bonus_accuracy_threshold`), each accurate rollout with `length_bonus_min_tokens` <=
    num_tokens <= `length_bonus_max_tokens` earns `length_bonus_value`. Add it to `total` after
    scoring and before `rl_math.group_advantages`:
    `totals = [s["total"] + b for s, b in zip(scores, length_bonus(accs, lens, G, cfg))]`.
    """
    n = len(accuracy)
    if group_size < 1 or n % group_size or len(num_tokens) != n:
        raise ValueError(f"need len(accuracy) == len(num_tokens), a multiple of group_size={group_size}")
    bonus = [0.0] * n
    if not config.length_bonus:
        return bonus
    lo, hi = config.length_bonus_min_tokens, config.length_bonus_max_tokens
    for start in range(0, n, group_size):
        accurate = [
            i
            for i in range(start, start + group_size)
            if accuracy[i] > config.length_bonus_accuracy_threshold
        ]
        if len(accurate) < config.length_bonus_min_accurate:
            continue
        for i in accurate:
            if lo <= num_tokens[i] <= hi:
                bonus[i] = config.length_bonus_value
    return bonus


# --- evaluation's scoring rules ---


def official_token(text: str) -> str:
    """What VSI-Bench's scorer reads from an answer (its `fuzzy_matching`): the text before the
    first space character (a space only: "B\\nC" stays whole), a trailing run of '.' stripped,
    then surrounding whitespace. "B." -> "B", "4.5 m" -> "4.5", " B" -> "" (a leading space)."""
    return text.split(" ", 1)[0].rstrip(".").strip()


def official_accuracy(text: str, problem_type: str, ground_truth: str | float) -> tuple[float, str | float | None]:
    """VSI-Bench's rule on `text`: (score, what was read; None = nothing usable).

    multiple_choice: 1.0 when `official_token(text)` equals the ground-truth letter, case
    ignored, else 0.0 ("(B)", "B:" and "Answer: B" score 0). numerical: `float()` of the token
    (Python's, as the benchmark: "4", "4.", "1e3", "1_000" read; "4m", "about" do not and score
    0), then MRA against float(ground_truth); nan and inf score 0. open_ended: `exact_match` of the
    whole stripped text against the accepted answers (a string or a list)."""
    if problem_type not in PROBLEM_TYPES:
        raise ValueError(f"problem_type must be one of {PROBLEM_TYPES}, got {problem_type!r}")
    if problem_type == "open_ended":
        said = text.strip() if isinstance(text, str) else ""
        return exact_match(said, accepted_answers(ground_truth)), normalize_text(said) or None
    token = official_token(text) if isinstance(text, str) else ""
    if problem_type == "multiple_choice":
        return (1.0 if token.lower() == str(ground_truth).strip().lower() else 0.0), token or None
    try:
        value = float(token)
    except (ValueError, OverflowError):
        return 0.0, None
    if not math.isfinite(value):
        return 0.0, None
    return mean_relative_accuracy(value, float(ground_truth)), value


def accuracy(
    completion: str,
    problem_type: str,
    ground_truth: str | float,
    *,
    rule: str = "official",
    answer_tag: bool = False,
) -> tuple[float, str | float | None]:
    """Evaluation's score of one completion in [0, 1] and the answer read (None = none).

    rule `official`: `official_accuracy` on the completion, or, with `answer_tag` (a think-format
    prompt), on the stripped content of its last closed `<answer>...</answer>` span (the whole
    text when there is none). rule `lenient`: `parse_answer` (always reads the answer span; the
    first number anywhere, or "(b)", "B:" as letters) with MRA or letter match, as GRPO's accuracy
    reward. rule `spatial_mllm`: the Spatial-MLLM authors' scorer (`spatial_mllm_scoring.py`).
    Raises ValueError for an unknown rule or problem_type or a ground truth that does not parse;
    never for any completion text."""
    if rule == "lenient":
        scores, parsed = score_and_parse(completion, problem_type, ground_truth)
        return scores["accuracy"], parsed
    if rule == "spatial_mllm":  # the authors' own scorer: reads the answer tag itself
        from pipelines import spatial_mllm_scoring

        return spatial_mllm_scoring.accuracy(completion, problem_type, ground_truth)
    if rule != "official":
        raise ValueError(f"scoring rule must be one of {SCORING_RULES}, got {rule!r}")
    text = completion if isinstance(completion, str) else ""
    if answer_tag:
        text = answer_span(text).strip()
    return official_accuracy(text, problem_type, ground_truth)
