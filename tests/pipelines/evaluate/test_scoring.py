"""Evaluation's scoring rules on a table of outputs: `official` (VSI-Bench's scorer) and `lenient`
(GRPO's reading), with and without the think format's answer tag."""

from __future__ import annotations

import numpy as np
import pytest

from pipelines.rewards import accuracy, official_token

# (output, problem_type, ground truth, official score, lenient score), computed by hand.
TABLE = [
    ("B", "multiple_choice", "B", 1.0, 1.0),
    ("b", "multiple_choice", "B", 1.0, 1.0),
    ("B.", "multiple_choice", "B", 1.0, 1.0),
    ("B. chair", "multiple_choice", "B", 1.0, 1.0),
    ("B..", "multiple_choice", "B", 1.0, 1.0),
    ("(B)", "multiple_choice", "B", 0.0, 1.0),
    ("B:", "multiple_choice", "B", 0.0, 1.0),
    ("Answer: B", "multiple_choice", "B", 0.0, 0.0),
    (" B", "multiple_choice", "B", 0.0, 1.0),  # a leading space: VSI-Bench's first token is ""
    ("B\nThe chair is closer.", "multiple_choice", "B", 0.0, 1.0),  # split on spaces only: "B\nThe"
    ("C", "multiple_choice", "B", 0.0, 0.0),
    ("", "multiple_choice", "B", 0.0, 0.0),
    ("<answer>B</answer>", "multiple_choice", "B", 0.0, 1.0),  # no think prompt: the tag is text
    ("5", "numerical", "5", 1.0, 1.0),
    ("5.", "numerical", "5", 1.0, 1.0),
    ("5\n", "numerical", "5", 1.0, 1.0),
    ("5.0 meters", "numerical", "5", 1.0, 1.0),
    ("4", "numerical", "5", 0.6, 0.6),  # rel 0.2 > 1 - 0.8 in floats: thresholds 0.50 ... 0.75 pass
    ("4.5", "numerical", "5", 0.9, 0.9),  # rel 0.1 <= 1 - 0.8999999999999999 (linspace's 0.9): 9 pass
    ("7.5", "numerical", "5", 0.1, 0.1),  # rel 0.5 <= 1 - 0.50: only the first threshold
    ("4m", "numerical", "5", 0.0, 0.6),
    ("about 5", "numerical", "5", 0.0, 1.0),
    ("5,000", "numerical", "5", 0.0, 0.0),
    ("1_000", "numerical", "1000", 1.0, 0.0),  # Python's float() reads it; the first number is 1
    ("nan", "numerical", "5", 0.0, 0.0),
    ("inf", "numerical", "5", 0.0, 0.0),
    ("-5", "numerical", "5", 0.0, 0.0),
    ("0", "numerical", "0", 1.0, 1.0),
]
# (think-format output, problem_type, ground truth, official score with the answer tag read first)
THINK_TABLE = [
    ("<think>the desk is nearer</think><answer> B </answer>", "multiple_choice", "B", 1.0),
    ("<think>..</think><answer>B. desk</answer>", "multiple_choice", "B", 1.0),
    ("<think>..</think><answer>(B)</answer>", "multiple_choice", "B", 0.0),
    ("<think>..</think> B", "multiple_choice", "B", 0.0),  # no tag: the whole text, first token "<think>..</think>"
    ("<think>..</think><answer>4.5</answer>", "numerical", "5", 0.9),
    ("<think>..</think><answer>about 5</answer>", "numerical", "5", 0.0),
]


# VSI-Bench's scorer as published (thinking-in-space, lmms_eval/tasks/vsibench/utils.py), re-typed
# from its definitions: the independent reference for the `official` rule.
def _fuzzy_matching(pred):
    return pred.split(" ")[0].rstrip(".").strip()


def _to_float(pred):
    try:
        return float(pred)
    except BaseException:  # noqa: B036 - as the benchmark writes it
        return None


def _vsibench_score(pred: str, problem_type: str, target: str) -> float:
    if problem_type == "multiple_choice":
        return 1.0 if _fuzzy_matching(pred).lower() == target.lower() else 0.0
    value = _to_float(_fuzzy_matching(pred))
    if value is None:
        return 0.0
    target = float(target)
    if target == 0:  # the benchmark divides by it (no VSI-Bench answer is 0); our documented rule
        return 1.0 if value == 0 else 0.0
    conf_intervs = np.linspace(0.5, 0.95, int((0.95 - 0.5) / 0.05 + 2))
    return float((abs(value - target) / target <= 1 - conf_intervs).mean())


@pytest.mark.parametrize(("output", "problem_type", "truth", "official", "lenient"), TABLE)
def test_official_and_lenient_rules_on_a_table_of_outputs(output, problem_type, truth, official, lenient):
    assert accuracy(output, problem_type, truth, rule="official")[0] == pytest.approx(official)
    assert accuracy(output, problem_type, truth, rule="official")[0] == pytest.approx(
        _vsibench_score(output, problem_type, truth)
    )
    assert accuracy(output, problem_type, truth, rule="lenient")[0] == pytest.approx(lenient)


@pytest.mark.parametrize(("output", "problem_type", "truth", "official"), THINK_TABLE)
def test_think_format_reads_the_answer_tag_before_the_rule(output, problem_type, truth, official):
    assert accuracy(output, problem_type, truth, rule="official", answer_tag=True)[0] == pytest.approx(official)


def test_what_each_rule_reads():
    assert official_token("B. chair") == "B" and official_token("4.5 m") == "4.5" and official_token(" B") == ""
    assert accuracy("B. chair", "multiple_choice", "B")[1] == "B"  # official is the default rule
    assert accuracy("5.0 meters", "numerical", "5")[1] == 5.0
    assert accuracy("about 5", "numerical", "5")[1] is None
    assert accuracy("about 5", "numerical", "5", rule="lenient")[1] == 5.0
    with pytest.raises(ValueError, match="scoring rule"):
        accuracy("B", "multiple_choice", "B", rule="strict")
    with pytest.raises(ValueError, match="problem_type"):
        accuracy("B", "yes_no", "B")
