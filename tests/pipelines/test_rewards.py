"""Reward functions: hand-computed tables (MRA, parsing, format, score, length bonus) and
property tests that no text makes them raise."""

from __future__ import annotations

import math
import re
import time

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipelines.rewards import (
    RewardConfig,
    format_ok,
    length_bonus,
    mean_relative_accuracy,
    parse_answer,
    parse_number,
    score,
)

PROPERTY = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# ---------------------------------------------------------------------------------------------
# Mean relative accuracy


@pytest.mark.parametrize(
    ("pred", "gt", "expected"),
    [
        (10.0, 10.0, 1.0),
        (10.4, 10.0, 1.0),  # rel 0.04 <= 0.05: every threshold
        (10.6, 10.0, 0.9),  # rel 0.06: all but theta = 0.95
        (9.0, 10.0, 0.9),  # rel 0.1 == 1 - 0.9 passes (VSI-Bench's floats agree)
        (11.0, 10.0, 0.9),
        (4.0, 5.0, 0.6),  # rel 0.2 > 1 - 0.8 = 0.19999999999999996 in VSI-Bench's floats
        (13.0, 10.0, 0.5),  # rel 0.3: theta 0.50..0.70
        (15.0, 10.0, 0.1),  # rel 0.5: theta 0.50 only
        (5.0, 10.0, 0.1),
        (16.0, 10.0, 0.0),  # rel 0.6
        (-10.0, 10.0, 0.0),
        (-9.5, -10.0, 1.0),  # |gt| in the denominator
        (0.0, 0.0, 1.0),  # gt = 0: exact only
        (0.001, 0.0, 0.0),
        (None, 10.0, 0.0),  # no answer
        (float("nan"), 10.0, 0.0),
        (float("inf"), 10.0, 0.0),
        (1e308, 1e-308, 0.0),  # rel overflows to inf
    ],
)
def test_mra_table(pred, gt, expected):
    assert mean_relative_accuracy(pred, gt) == pytest.approx(expected, abs=1e-12)


def _vsibench_mra(pred: float, gt: float) -> float:
    """lmms-eval's VSI-Bench MRA, transcribed (its num_pts arithmetic gives 10 thresholds)."""
    num_pts = (0.95 - 0.5) / 0.05 + 2
    conf = np.linspace(0.5, 0.95, int(num_pts))
    rel = (0.0 if pred == 0 else float("inf")) if gt == 0 else abs(pred - gt) / abs(gt)
    return float((rel <= 1 - conf).mean())


@PROPERTY
@given(
    st.floats(-1e6, 1e6, allow_nan=False) | st.integers(-20, 20).map(float),
    st.floats(-1e6, 1e6, allow_nan=False) | st.integers(-20, 20).map(float),
)
def test_mra_matches_vsibench_code(pred, gt):
    assert mean_relative_accuracy(pred, gt) == pytest.approx(_vsibench_mra(pred, gt), abs=1e-12)


def test_mra_integer_grid_matches_vsibench_code():
    # Counting answers: small integers land exactly on threshold boundaries.
    for gt in range(0, 25):
        for pred in range(0, 40):
            assert mean_relative_accuracy(pred, gt) == pytest.approx(_vsibench_mra(pred, gt), abs=1e-12)


# ---------------------------------------------------------------------------------------------
# Parsing


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("3", 3.0),
        ("-2.5", -2.5),
        ("+4", 4.0),
        ("1,234", 1234.0),
        ("1,234,567.89 cm", 1234567.89),
        ("12,34", 12.0),  # not a thousands group: the first number is 12
        ("1,2345", 1.0),
        (".5", 0.5),
        ("3.", 3.0),
        ("about 4.5 meters", 4.5),
        ("4.5m^2", 4.5),
        ("2e3", 2000.0),
        ("1.5E-2", 0.015),
        ("banana 3", 3.0),  # "nan" inside a word is no nan
        ("nan", None),
        ("NaN 3", None),  # the first number is nan: no answer
        ("inf", None),
        ("-Infinity", None),
        ("1e999", None),  # overflows to inf
        ("9" * 400, None),
        ("no idea", None),
        ("", None),
        ("<think>7 chairs</think><answer>3</answer>", 3.0),
        ("<answer>1</answer> then <answer>2</answer>", 2.0),  # the last span
        ("<answer>5", 5.0),  # unclosed: the whole text
        ("</answer>5<answer>", 5.0),
        ("<answer></answer> 4", None),  # an empty last span is no answer
        ("<answer><answer>3</answer></answer>", 3.0),  # nested
    ],
)
def test_parse_numerical_table(text, expected):
    got = parse_answer(text, "numerical")
    if expected is None:
        assert got is None
    else:
        assert got == pytest.approx(expected)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("B", "B"),
        ("B.", "B"),
        ("(B)", "B"),
        ("b", "B"),
        ("B. chair", "B"),
        ("  c \n", "C"),
        ("D) table", "D"),
        ("<think>A is wrong</think><answer>(c)</answer>", "C"),
        ("<answer>A</answer><answer>B</answer>", "B"),
        ("Answer: B", None),  # the first token only, as VSI-Bench
        ("chair", None),
        ("AB", None),
        ("1", None),
        ("É", None),
        ("", None),
        ("<answer> </answer>", None),
    ],
)
def test_parse_multiple_choice_table(text, expected):
    assert parse_answer(text, "multiple_choice") == expected


def test_parse_unknown_problem_type_and_non_strings():
    assert parse_answer("3", "free_form") is None
    assert parse_answer(None, "numerical") is None  # type: ignore[arg-type]
    assert parse_answer(b"3", "numerical") is None  # type: ignore[arg-type]


# The definition read literally: the leftmost match of "a nan/inf word" or "a number".
_FIRST_NUMBER_ORACLE = re.compile(
    r"(?P<special>\b(?:[nN][aA][nN]|[iI][nN][fF](?:[iI][nN][iI][tT][yY])?)\b)"
    r"|(?P<num>[-+]?(?:(?:[0-9]{1,3}(?:,[0-9]{3})+(?![0-9])|[0-9]+)(?:\.[0-9]+)?|\.[0-9]+)(?:[eE][-+]?[0-9]+)?)"
)


def _oracle(text: str) -> float | None:
    m = _FIRST_NUMBER_ORACLE.search(text)
    if m is None or m.group("special"):
        return None
    value = float(m.group("num").replace(",", ""))
    return value if math.isfinite(value) else None


NUMBERISH = st.lists(
    st.sampled_from(["0", "1", "7", "12", "345", ",", ".", "-", "+", "e", "E", " ", "a", "x", "nan", "NaN", "inf",
                     "Infinity", "info", "banana", "é", "_", "\n", "1,000", "1e400"]),
    max_size=12,
).map("".join)  # fmt: skip


@PROPERTY
@given(NUMBERISH | st.text(max_size=40))
def test_parse_number_matches_the_literal_definition(text):
    assert parse_number(text) == _oracle(text)


@PROPERTY
@given(st.floats(allow_nan=False, allow_infinity=False))
def test_parse_reads_back_any_finite_float(x):
    assert parse_answer(f"<think>t</think><answer>{x!r}</answer>", "numerical") == x


@PROPERTY
@given(
    st.sampled_from("ABCDEFGHIJKLMNOPQRSTUVWXYZ"), st.sampled_from(["{}", "{}.", "({})", "{}. thing", " {} "])
)
def test_parse_reads_back_any_option_letter(letter, form):
    for case in (letter, letter.lower()):
        assert parse_answer(f"<answer>{form.format(case)}</answer>", "multiple_choice") == letter


# ---------------------------------------------------------------------------------------------
# Format and score


@pytest.mark.parametrize(
    ("text", "ok"),
    [
        ("<think>a</think><answer>b</answer>", True),
        ("<think>a</think>\n\n<answer>b</answer>\n", True),
        ("<think></think><answer></answer>", True),
        ("<think>a\nb</think> <answer>B. chair</answer>", True),
        ("<answer>b</answer>", False),
        ("<think>a</think>", False),
        ("<think>a</think>x<answer>b</answer>", False),  # text between the spans
        ("<think>a</think><answer>b</answer> extra", False),
        ("<think><think>a</think></think><answer>b</answer>", False),  # nested
        ("<think>a<answer>b</answer>", False),  # unclosed think
        ("<answer>b</answer><think>a</think>", False),
        ("<think>a</think><answer>b</answer><answer>c</answer>", False),
        ("<think>a</answer></think><answer>b</answer>", False),
        ("<THINK>a</THINK><answer>b</answer>", False),  # tags are case-sensitive
        ("", False),
    ],
)
def test_format_table(text, ok):
    assert format_ok(text) is ok


GOOD = "<think>I count them.</think><answer>{}</answer>"


@pytest.mark.parametrize(
    ("completion", "problem_type", "gt", "expected"),
    [
        (GOOD.format("B"), "multiple_choice", "B", (1.0, 1.0, 2.0)),
        (GOOD.format("b. sofa"), "multiple_choice", "B", (1.0, 1.0, 2.0)),
        (GOOD.format("C"), "multiple_choice", "B", (1.0, 0.0, 1.0)),
        ("B", "multiple_choice", "B", (0.0, 1.0, 1.0)),  # accuracy does not need the format
        (GOOD.format("A"), "multiple_choice", "A. chair", (1.0, 1.0, 2.0)),  # option-text ground truth
        (GOOD.format("4"), "numerical", "5", (1.0, 0.6, 1.6)),
        (GOOD.format("3.2"), "numerical", "3.0", (1.0, 0.9, 1.9)),
        (GOOD.format("0"), "numerical", "0", (1.0, 1.0, 2.0)),
        (GOOD.format("0.1"), "numerical", "0", (1.0, 0.0, 1.0)),
        (GOOD.format("many"), "numerical", "5", (1.0, 0.0, 1.0)),
        ("garbage", "numerical", 5, (0.0, 0.0, 0.0)),  # a numeric ground truth works too
    ],
)
def test_score_table(completion, problem_type, gt, expected):
    got = score(completion, problem_type, gt)
    assert set(got) == {"format", "accuracy", "total"}
    assert (got["format"], got["accuracy"], got["total"]) == pytest.approx(expected)


def test_score_weights():
    cfg = RewardConfig(format_weight=0.5, accuracy_weight=2.0)
    assert score(GOOD.format("4"), "numerical", "5", cfg)["total"] == pytest.approx(0.5 + 2.0 * 0.6)


@pytest.mark.parametrize(
    ("problem_type", "gt"), [("free_form", "3"), ("numerical", "abc"), ("multiple_choice", "??")]
)
def test_score_rejects_bad_data_not_bad_completions(problem_type, gt):
    with pytest.raises(ValueError):
        score(GOOD.format("3"), problem_type, gt)


# ---------------------------------------------------------------------------------------------
# Length bonus (group level)

ON = RewardConfig(length_bonus=True)


def test_length_bonus_off_by_default():
    assert length_bonus([1.0, 1.0], [400, 400], 2) == [0.0, 0.0]


def test_length_bonus_table():
    # group 1: three accurate (acc > 0.1), lengths in/out of [320, 512]; group 2: one accurate only.
    acc = [1.0, 0.6, 1.0, 0.1, 1.0, 0.0, 0.0, 0.0]
    tokens = [320, 512, 513, 400, 400, 400, 400, 400]
    assert length_bonus(acc, tokens, 4, ON) == pytest.approx([0.2, 0.2, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0])
    assert length_bonus([1.0, 1.0, 1.0], [319, 400, 100], 3, ON) == pytest.approx([0.0, 0.2, 0.0])
    custom = RewardConfig(length_bonus=True, length_bonus_value=0.5, length_bonus_min_tokens=10)
    assert length_bonus([1.0, 1.0], [10, 9], 2, custom) == pytest.approx([0.5, 0.0])


def test_length_bonus_rejects_mismatched_shapes():
    with pytest.raises(ValueError):
        length_bonus([1.0, 1.0, 1.0], [400, 400, 400], 2, ON)
    with pytest.raises(ValueError):
        length_bonus([1.0, 1.0], [400], 2, ON)


# ---------------------------------------------------------------------------------------------
# Never raises

TAG_SOUP = st.lists(
    st.sampled_from(
        ["<think>", "</think>", "<answer>", "</answer>", "<answer", "answer>", "A", "b", "(", ")", ".", " ", "\n",
         "\x00", "\x1b", "\u200b", "3", ",", "-", "+", "e", "1e9", "nan", "inf", "1,000", ".5", "chair", "é", "٣"]
    ),
    max_size=60,
).map("".join)  # fmt: skip
ANY_TEXT = st.text() | st.text(alphabet=st.characters(codec="utf-8")) | TAG_SOUP
GROUND_TRUTH = st.sampled_from(
    [("numerical", "0"), ("numerical", "3.5"), ("numerical", "-2"), ("multiple_choice", "C")]
)


def _check_scores(got: dict[str, float], cfg: RewardConfig) -> None:
    assert set(got) == {"format", "accuracy", "total"}
    assert got["format"] in (0.0, 1.0)
    assert 0.0 <= got["accuracy"] <= 1.0
    assert got["total"] == pytest.approx(
        cfg.format_weight * got["format"] + cfg.accuracy_weight * got["accuracy"]
    )


@PROPERTY
@given(ANY_TEXT, GROUND_TRUTH)
def test_score_never_raises(text, task):
    problem_type, gt = task
    cfg = RewardConfig()
    _check_scores(score(text, problem_type, gt, cfg), cfg)
    answer = parse_answer(text, problem_type)
    if problem_type == "numerical":
        assert answer is None or (isinstance(answer, float) and math.isfinite(answer))
    else:
        assert answer is None or (len(answer) == 1 and "A" <= answer <= "Z")


@PROPERTY
@given(ANY_TEXT, ANY_TEXT, GROUND_TRUTH)
def test_wrapped_text_never_raises(think, answer, task):
    problem_type, gt = task
    for text in (
        f"<think>{think}</think><answer>{answer}</answer>",
        f"<answer>{answer}",
        f"{think}</answer>",
    ):
        _check_scores(score(text, problem_type, gt), RewardConfig())


@pytest.mark.parametrize(
    "text",
    [
        "<answer>" * 200_000,
        "</answer>" * 200_000,
        "<think>" + "a" * 2_000_000 + "</think><answer>3</answer>",
        "1," * 500_000,
        "9" * 1_000_000,
        "-" * 1_000_000 + "1",
        "(" * 1_000_000,
        " " * 1_000_000 + "B",
        "<think></think>" * 100_000 + "<answer>3</answer>",
        "\x00\x1f\x7f" * 300_000,
    ],
)
def test_huge_texts_are_fast(text):
    start = time.perf_counter()
    for problem_type, gt in (("numerical", "3"), ("multiple_choice", "B")):
        _check_scores(score(text, problem_type, gt), RewardConfig())
    assert time.perf_counter() - start < 2.0  # linear work, whatever the text holds


@pytest.mark.parametrize(
    ("completion", "accepted", "accuracy"),
    [
        ("<think>it is brown</think><answer>The brown chair.</answer>", ["brown chair", "chair"], 1.0),
        ("<think>x</think><answer>Chair</answer>", ["brown chair", "chair"], 1.0),  # any accepted answer
        ("<think>x</think><answer>a chair near the bed</answer>", ["chair"], 0.0),  # more words: no match
        ("<think>x</think><answer></answer>", ["chair"], 0.0),
        ("chair", "chair", 1.0),  # a single ground truth; no tags: the whole text, format 0
    ],
)
def test_open_ended_answers_score_by_normalised_exact_match(completion, accepted, accuracy):
    got = score(completion, "open_ended", accepted)
    assert got["accuracy"] == accuracy
    assert got["format"] == (0.0 if "<answer>" not in completion else 1.0)


def test_open_ended_grpo_truth_is_every_accepted_answer():
    from pipelines.grpo.scoring import reward_truth

    record = {"problem_type": "open_ended", "ground_truth": "brown chair", "meta": '{"answers": ["brown chair", "chair"]}'}
    assert reward_truth(record) == ["brown chair", "chair"]
    assert reward_truth({**record, "meta": "{}"}) == "brown chair"
    assert reward_truth({"problem_type": "numerical", "ground_truth": "3", "meta": "{}"}) == "3"
    with pytest.raises(ValueError, match="holds no answer"):
        score("chair", "open_ended", ["", " . "])
