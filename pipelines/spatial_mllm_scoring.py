"""The Spatial-MLLM authors' VSI-Bench scorer (their `src/evaluation/vsibench/dataset_utils.py`,
release v1.1), as a scoring rule of its own: `eval.scoring=spatial_mllm`. Pure, no torch.

It differs from VSI-Bench's official scorer (`rewards.official_accuracy`):
- both texts are cleaned alike: the last `<answer>...</answer>` span if any, newlines to spaces,
  whitespace collapsed, stripped, trailing '.' removed, lower case;
- multiple choice: the **whole** cleaned answer must equal the cleaned ground truth ("B. chair"
  scores 0 where the official first-token rule scores 1);
- numbers: commas removed, then `float()` of the **whole** cleaned answer ("1,200" reads 1200 where
  the official rule scores 0; "3 meters" scores 0 where the official rule reads 3);
- MRA in float32 with a strict `<`: |p - g| / (|g| + 1e-8) < 1 - theta for theta in
  arange(0.50, 0.975, 0.05), so an answer exactly on a threshold misses it (3 for 4 scores 0.5,
  the official rule 0.6).
"""

from __future__ import annotations

import re

import numpy as np

_ANSWER = re.compile(r"<answer>(.*?)</answer>", re.DOTALL)
# Their thresholds: torch.arange(0.5, 0.95 + 0.05 / 2, 0.05, dtype=torch.float32), 10 values.
_THRESHOLDS = (0.5 + np.arange(10, dtype=np.float64) * 0.05).astype(np.float32)  # torch computes in double, then casts


def clean(text: str) -> str:
    """Their `clean_text` after `_extract_answer`: the last answer span (else the text), newlines
    as spaces, whitespace collapsed, stripped, trailing '.' removed, lower case."""
    spans = _ANSWER.findall(text)
    if spans:
        text = spans[-1]
    text = re.sub(r"\s+", " ", text.replace("\n", " ").replace("\r", " "))
    return text.strip().rstrip(".").lower()


def number(text: str) -> float | None:
    """Their `normalize_number`: commas removed, `float()` of the whole text, None when it fails."""
    try:
        return float(text.replace(",", ""))
    except (TypeError, ValueError):
        return None


def mean_relative_accuracy(pred: float, target: float) -> float:
    """Their MRA, float32 and strict: the share of thresholds with relative error < 1 - theta."""
    p, t = np.float32(pred), np.float32(target)
    with np.errstate(over="ignore", invalid="ignore"):
        rel = np.abs(p - t) / (np.abs(t) + np.float32(1e-8))
        return float(np.mean(rel < (np.float32(1) - _THRESHOLDS), dtype=np.float32))  # torch: a float32 mean


def accuracy(text: str, problem_type: str, ground_truth: str | float) -> tuple[float, str | float | None]:
    """(score, what was read) under the authors' rule; open-ended answers use the shared exact match."""
    from pipelines.rewards import accepted_answers, exact_match, normalize_text

    said = clean(text if isinstance(text, str) else "")
    if problem_type == "open_ended":
        return exact_match(said, accepted_answers(ground_truth)), normalize_text(said) or None
    if problem_type == "multiple_choice":
        return (1.0 if said == clean(str(ground_truth)) else 0.0), said or None
    if problem_type != "numerical":
        raise ValueError(f"problem_type must be numerical, multiple_choice or open_ended, got {problem_type!r}")
    value, target = number(said), number(clean(str(ground_truth)))
    if value is None or target is None:
        return 0.0, value
    return mean_relative_accuracy(value, target), value
