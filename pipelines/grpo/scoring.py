"""Scoring rollouts with the reward actor pool, and the reward metrics of a step.

    scores = score(pool, tokenizer, batch.records, rollouts, reward_cfg, eos_token_id)
    advantages, keep = step_advantages(scores.total, scores.valid, grpo, world=W, device=d)   # [N] each
    metrics = reward_metrics(gather(scores.columns()), G)                   # reward/*, train/completions/*

The pool (`pipelines.reward_actors.RewardPool`) batches, times out and retries; the scoring itself
is `pipelines.rewards` (pure). Video-R1's length bonus needs the whole group, so it is added here.
A completion the pool could not score is `failed`, not 0: `pipelines/grpo/advantages.py` leaves it
out of the step.
"""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass

import numpy as np
import torch

from pipelines import rewards, rl_math
from pipelines.grpo.rollout import Rollouts


@dataclass
class Scores:
    """Per rollout (`[N]`, group by group): rewards, texts and what the metrics need."""

    total: torch.Tensor
    format: list[float]
    accuracy: list[float]
    texts: list[str]
    question_types: list[str]
    lengths: list[int]
    truncated: list[bool]
    failed: list[bool]  # no reward could be computed (timeout, dead actor, an item error): not a 0

    @property
    def valid(self) -> torch.Tensor:
        """`[N]` bool: rollouts whose reward was computed."""
        return ~torch.tensor(self.failed, dtype=torch.bool)

    def columns(self) -> dict[str, list]:
        """Plain lists, cheap to gather across ranks."""
        return {
            "total": self.total.tolist(), "format": self.format, "accuracy": self.accuracy,
            "question_type": self.question_types, "length": self.lengths, "truncated": self.truncated,
            "failed": self.failed,
        }  # fmt: skip


def completion_texts(tokenizer, rollouts: Rollouts) -> list[str]:
    """Each completion up to its eos, special tokens dropped."""
    ids = [row[: int(n)].tolist() for row, n in zip(rollouts.completion_ids, rollouts.lengths, strict=True)]
    return tokenizer.batch_decode(ids, skip_special_tokens=True)


def reward_truth(record: dict) -> str | list[str]:
    """What the reward compares with: the ground truth, or for an open-ended record every accepted
    answer its `meta` lists (ScanQA's several answers)."""
    if record["problem_type"] == "open_ended":
        answers = json.loads(record.get("meta") or "{}").get("answers")
        if answers:
            return [str(a) for a in answers]
    return record["ground_truth"]


def score(
    pool, tokenizer, records: list[dict], rollouts: Rollouts, reward_cfg: rewards.RewardConfig, eos_token_id: int
) -> Scores:
    """Rewards of every rollout (rollout i answers records[i // G]) from `pool.score`."""
    G = rollouts.group_size
    texts = completion_texts(tokenizer, rollouts)
    items = [
        {"id": f"{records[i // G]['id']}/{i % G}", "completion": text,
         "problem_type": records[i // G]["problem_type"], "ground_truth": reward_truth(records[i // G])}
        for i, text in enumerate(texts)
    ]  # fmt: skip
    rows = pool.score(items)
    lengths = rollouts.lengths.tolist()
    accuracy = [r["accuracy"] for r in rows]
    bonus = rewards.length_bonus(accuracy, lengths, G, reward_cfg)
    return Scores(
        total=torch.tensor([r["total"] + b for r, b in zip(rows, bonus, strict=True)], dtype=torch.float32),
        format=[r["format"] for r in rows],
        accuracy=accuracy,
        texts=texts,
        question_types=[records[i // G]["question_type"] for i in range(len(texts))],
        lengths=lengths,
        truncated=rollouts.truncated(eos_token_id).tolist(),
        failed=[r["error"] is not None for r in rows],
    )


def merge_columns(parts: list[dict[str, list]]) -> dict[str, list]:
    """Concatenate the `Scores.columns()` of every rank (each rank's rollouts are whole groups)."""
    out: dict[str, list] = defaultdict(list)
    for part in parts:
        for k, v in part.items():
            out[k].extend(v)
    return dict(out)


def reward_metrics(columns: dict[str, list], group_size: int) -> dict[str, float]:
    """TRL's reward logs under our namespaces, from the columns of all ranks. Rewards that could
    not be computed are left out of every reward mean and counted in reward/failed:
    reward/total (mean), reward/total_std (mean of the groups' std), reward/format,
    reward/accuracy, reward/accuracy/<question_type>, reward/frac_zero_std (groups whose rewards
    are all equal: no learning signal), reward/scored (rollouts with a reward: all of them unless
    some failed), reward/failed (rollouts without a reward),
    reward/dropped_groups (groups left with < 2 rewards, out of the step), and
    train/completions/{mean,min,max}_length, train/completions/clipped_ratio (no eos)."""
    ok = ~np.asarray(columns["failed"], dtype=bool)  # [N]
    total = np.asarray(columns["total"], dtype=np.float64)  # [N]
    groups = total.reshape(-1, group_size)  # [N/G, G]
    ok_groups = ok.reshape(-1, group_size)  # [N/G, G]
    kept = rl_math.kept_rollouts(torch.from_numpy(ok), group_size).view(-1, group_size).any(dim=1).numpy()  # [N/G]
    std = np.array([groups[g][ok_groups[g]].std(ddof=1) if group_size > 1 else 0.0 for g in np.flatnonzero(kept)])
    lengths = np.asarray(columns["length"])

    def scored_mean(values) -> float:
        return float(np.asarray(values, dtype=np.float64)[ok].mean()) if ok.any() else float("nan")

    out = {
        "reward/total": scored_mean(total),
        "reward/total_std": float(std.mean()) if len(std) else float("nan"),
        "reward/format": scored_mean(columns["format"]),
        "reward/accuracy": scored_mean(columns["accuracy"]),
        "reward/frac_zero_std": float(np.mean(np.isclose(std, 0.0))) if len(std) else float("nan"),
        "reward/scored": float(ok.sum()),
        "reward/failed": float((~ok).sum()),
        "reward/dropped_groups": float((~kept).sum()),
        "train/completions/mean_length": float(lengths.mean()),
        "train/completions/min_length": float(lengths.min()),
        "train/completions/max_length": float(lengths.max()),
        "train/completions/clipped_ratio": float(np.mean(columns["truncated"])),
    }
    by_type: dict[str, list[float]] = defaultdict(list)
    for qt, acc, good in zip(columns["question_type"], columns["accuracy"], ok, strict=True):
        if good:
            by_type[qt].append(acc)
    for qt in sorted(by_type):
        out[f"reward/accuracy/{qt}"] = float(np.mean(by_type[qt]))
    return out
