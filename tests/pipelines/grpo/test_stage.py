"""The GRPO stage on Ray Train + DeepSpeed ZeRO-3, tiny model, 2 CPU workers, fp32, each worker
with its own reward actor: N steps in one go == N/2, stop, re-run (bit for bit: rewards, losses,
final weights); metrics.jsonl / samples.jsonl / W&B; the export; skipping a finished stage.

4 steps of 2 workers x 2 prompts over 10 prompts: the resumed half starts inside epoch 0 and
crosses into epoch 1. num_iterations 2 (old log-probs kept), beta 0.04 (a reference model per
worker), loss dapo (its token count is summed over the workers).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from pipelines.config import build_config
from pipelines.grpo.stage import GRPOSetupError, run
from tests.pipelines.grpo.helpers import GRPO_STEPS, grpo_overrides
from tests.wandb_records import history as wandb_history

pytestmark = pytest.mark.slow
STEPS = GRPO_STEPS
HALF = STEPS // 2
# Values that depend only on the trajectory (not on wall-clock time).
TRAJECTORY_KEYS = ("reward/total", "reward/format", "reward/accuracy", "train/loss", "train/kl", "train/entropy",
                   "train/grad_norm", "train/ratio_mean", "train/completions/mean_length")  # fmt: skip


def grpo_run(data: Path, run_dir: Path, *extra: str, fresh: bool = True):
    if fresh:
        run_dir.mkdir(parents=True, exist_ok=True)
        (run_dir / "dataset").symlink_to(data / "dataset", target_is_directory=True)
    cfg = build_config(None, [*grpo_overrides(data, run_dir), *extra])
    return cfg, run(cfg, log=lambda _: None)


def rows(run_dir: Path, name: str = "metrics.jsonl") -> list[dict]:
    return [json.loads(line) for line in (run_dir / "grpo" / name).read_text().splitlines() if line.strip()]


@pytest.fixture(scope="module")
def runs(grpo_data, grpo_one_go, tmp_path_factory, ray_session):
    """(one go with W&B on, stopped half-way then re-run to the end)."""
    one_go = grpo_one_go
    resumed = tmp_path_factory.mktemp("grpo_resumed")
    _, stopped = grpo_run(grpo_data, resumed, f"grpo.stop_at_step={HALF}")
    assert stopped is None and not (resumed / "grpo" / "final").exists()
    assert [r["step"] for r in rows(resumed)] == list(range(1, HALF + 1))
    grpo_run(grpo_data, resumed, fresh=False)
    return one_go, resumed


def test_stop_and_rerun_equals_one_go_bit_for_bit(runs):
    one_go, resumed = runs
    a, b = rows(one_go), rows(resumed)
    assert [r["step"] for r in a] == [r["step"] for r in b] == list(range(1, STEPS + 1))
    assert a[HALF - 1]["train/epoch"] < 1 < a[HALF + 1]["train/epoch"]  # the resumed half crosses an epoch
    for key in TRAJECTORY_KEYS:
        assert [r[key] for r in a] == [r[key] for r in b], key
    assert rows(one_go, "samples.jsonl") == rows(resumed, "samples.jsonl")
    wa = load_file(one_go / "grpo" / "final" / "model.safetensors")
    wb = load_file(resumed / "grpo" / "final" / "model.safetensors")
    assert wa.keys() == wb.keys() and all(torch.equal(wa[k], wb[k]) for k in wa)


def test_metrics_and_samples_are_logged(runs):
    one_go, _ = runs
    metrics = rows(one_go)
    keys = ["reward/total", "reward/total_std", "reward/format", "reward/accuracy", "reward/frac_zero_std",
            "reward/failed", "reward/dropped_groups", "train/completions/mean_length", "train/completions/min_length",
            "train/completions/max_length", "train/completions/clipped_ratio", "train/kl", "train/entropy",
            "train/clip_ratio/low_mean", "train/clip_ratio/high_mean", "train/clip_ratio/region_mean",
            "train/loss", "train/grad_norm", "train/lr_llm", "train/lr_connector", "train/epoch",
            "timing/generate", "timing/reward", "timing/logprobs", "timing/update", "timing/step",
            "perf/reward_share", "perf/completion_tokens_per_s"]  # fmt: skip
    for key in keys:
        assert all(key in r for r in metrics), key
    per_type = {k for r in metrics for k in r if k.startswith("reward/accuracy/")}
    assert per_type <= {"reward/accuracy/object_rel_distance", "reward/accuracy/object_counting"} and per_type
    assert all(r["reward/failed"] == 0 and r["reward/dropped_groups"] == 0 for r in metrics)
    assert any(r["train/kl"] > 0 for r in metrics[1:])  # the policy moved away from the reference
    samples = rows(one_go, "samples.jsonl")
    assert [s["step"] for s in samples] == [2] * 3 + [4] * 3
    assert set(samples[0]) == {"step", "id", "question", "ground_truth", "completion", "format", "accuracy", "total"}
    # The sample tables are history items at the sample steps (the config alone also mentions "samples").
    tables = [(r["train/step"], r["samples/nrows"]) for r in wandb_history(one_go / "wandb") if "samples/_type" in r]
    assert tables == [(2, 3), (4, 3)]


def test_export_holds_trained_policy_with_frozen_encoders(runs):
    import modeling

    one_go, _ = runs
    trained, _ = modeling.load(one_go / "grpo" / "final")
    init, _ = modeling.load("tiny", seed=0)
    roles = modeling.parameter_names_by_role(init)
    got, start = dict(trained.named_parameters()), dict(init.named_parameters())
    assert all(torch.equal(got[n], start[n]) for n in roles["frozen"])
    assert not all(torch.equal(got[n], start[n]) for n in roles["llm"])
    assert not all(torch.equal(got[n], start[n]) for n in roles["connector"])


def test_finished_stage_is_skipped_and_changed_settings_are_refused(runs, grpo_data):
    one_go, resumed = runs
    messages = []
    cfg = build_config(None, [*grpo_overrides(grpo_data, one_go), "train.wandb=true"])
    assert run(cfg, log=messages.append) == one_go / "grpo" / "final"
    assert messages == [f"[grpo] already complete: {one_go / 'grpo'}"]
    cfg = build_config(None, [*grpo_overrides(grpo_data, resumed), "grpo.beta=0.1"])
    with pytest.raises(GRPOSetupError, match="other settings"):
        run(cfg, log=lambda _: None)
