"""SFT on Ray Train + DeepSpeed, tiny model, 2 CPU workers, fp32, ZeRO-2: exact resume across an
epoch boundary (stop and re-run; also after a lost node in tests/pipelines/test_node_loss.py, and
ZeRO-3's in the GRPO tests); the export; metrics.jsonl and the offline W&B run; errors before
training.

4 steps of 4 samples over 10 records: the resumed half (steps 3 and 4) starts with the last 2
samples of epoch 0 and goes on into epoch 1.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from pipelines.config import build_config
from pipelines.sft.stage import SFTSetupError, run
from tests.pipelines.sft.helpers import SFT_STEPS, read_jsonl, run_dir_with_data, tiny_overrides
from tests.wandb_records import history as wandb_history

pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parents[3]
STEPS = SFT_STEPS
HALF = STEPS // 2


def sft_run(sft_data: Path, run_dir: Path, *overrides: str, fresh: bool = True):
    if fresh:
        run_dir_with_data(sft_data, run_dir)
    cfg = build_config(None, [*tiny_overrides(sft_data, run_dir), f"sft.max_steps={STEPS}", *overrides])
    return cfg, run(cfg, log=lambda _: None)


def losses(run_dir: Path) -> list[float]:
    rows = read_jsonl(run_dir / "sft" / "metrics.jsonl")
    assert [r["step"] for r in rows] == list(range(1, STEPS + 1))
    return [r["train/loss"] for r in rows]


def assert_same_weights(a: Path, b: Path) -> None:
    wa, wb = (
        load_file(a / "sft" / "final" / "model.safetensors"),
        load_file(b / "sft" / "final" / "model.safetensors"),
    )
    assert wa.keys() == wb.keys()
    for k in wa:
        assert torch.equal(wa[k], wb[k]), k


@pytest.fixture(scope="module")
def zero2(sft_data, sft_zero2_one_go, tmp_path_factory):
    """(one go with W&B on, stopped half-way then re-run to the end), ZeRO-2."""
    one_go = sft_zero2_one_go
    resumed = tmp_path_factory.mktemp("z2_resumed")
    _, stopped = sft_run(sft_data, resumed, "train.zero_stage=2", f"sft.stop_at_step={HALF}")
    assert stopped is None and not (resumed / "sft" / "final").exists()
    assert [r["step"] for r in read_jsonl(resumed / "sft" / "metrics.jsonl")] == list(range(1, HALF + 1))
    sft_run(sft_data, resumed, "train.zero_stage=2", fresh=False)
    return one_go, resumed


def test_zero2_stop_and_rerun_equals_one_go_bit_for_bit(zero2):
    one_go, resumed = zero2
    epochs = [r["train/epoch"] for r in read_jsonl(one_go / "sft" / "metrics.jsonl")]
    assert epochs[HALF - 1] < 1 < epochs[HALF]  # the first resumed step crosses the epoch boundary
    assert losses(resumed) == losses(one_go)
    assert_same_weights(resumed, one_go)


def test_loss_falls_and_metrics_are_logged(zero2):
    one_go, _ = zero2
    rows = read_jsonl(one_go / "sft" / "metrics.jsonl")
    for key in ["train/loss", "train/lr_llm", "train/lr_connector", "train/grad_norm", "perf/tokens_per_s",
                "perf/samples_per_s", "timing/step_s", "train/epoch", "data/truncated"]:  # fmt: skip
        assert all(key in r for r in rows), key
    assert rows[-1]["train/loss"] < rows[0]["train/loss"]
    assert rows[-1]["train/lr_llm"] < rows[1]["train/lr_llm"]  # decays after warmup


def test_export_loads_and_holds_the_trained_weights(zero2):
    import modeling

    one_go, _ = zero2
    trained, processor = modeling.load(one_go / "sft" / "final")
    alone = modeling.load_processor(one_go / "sft" / "final")
    assert alone.frames == processor.frames and alone.chat_template == processor.chat_template
    init, _ = modeling.load("tiny", seed=0)
    roles = modeling.parameter_names_by_role(init)
    got, start = dict(trained.named_parameters()), dict(init.named_parameters())
    assert all(torch.equal(got[n], start[n]) for n in roles["frozen"])  # encoders frozen
    assert not all(torch.equal(got[n], start[n]) for n in roles["llm"])
    assert not all(torch.equal(got[n], start[n]) for n in roles["connector"])


def test_wandb_offline_run_holds_the_losses(zero2):
    one_go, _ = zero2
    history = [r for r in wandb_history(one_go / "wandb") if "train/loss" in r]
    assert [r["train/loss"] for r in history] == losses(one_go)
    assert [r["train/step"] for r in history] == list(range(1, STEPS + 1))


def test_finished_stage_is_skipped(zero2, sft_data):
    one_go, _ = zero2
    messages = []
    cfg = build_config(None, [*tiny_overrides(sft_data, one_go), f"sft.max_steps={STEPS}", "train.zero_stage=2",
                              "train.wandb=true"])  # fmt: skip
    assert run(cfg, log=messages.append) == one_go / "sft" / "final"
    assert messages == [f"[sft] already complete: {one_go / 'sft'}"]


def test_settings_changed_under_a_checkpoint_are_refused(zero2, sft_data):
    _, resumed = zero2
    cfg = build_config(None, [*tiny_overrides(sft_data, resumed), f"sft.max_steps={STEPS}", "sft.lr_llm=5e-4",
                              "train.zero_stage=2"])  # fmt: skip
    with pytest.raises(SFTSetupError, match="other settings \\(sft.lr_llm: 0.001 -> 0.0005\\)"):
        run(cfg, log=lambda _: None)


def test_a_cut_off_checkpoint_is_set_aside_and_the_one_before_resumed(zero2, sft_data, tmp_path):
    """Checkpoints at steps 1 and 2, then the newest loses half of its largest shard (a full disk,
    a copy cut off). The re-run says so, moves it aside, resumes from step 1 and ends with the
    weights of the uninterrupted run."""
    one_go, _ = zero2
    sft_run(sft_data, tmp_path, "train.zero_stage=2", "sft.save_steps=1", f"sft.stop_at_step={HALF}")
    newest = tmp_path / "sft" / "checkpoints" / f"step_{HALF:08d}"
    shard = max((p for p in newest.rglob("*.pt")), key=lambda p: p.stat().st_size)
    size = shard.stat().st_size
    with shard.open("r+b") as f:
        f.truncate(size // 2)
    lines: list[str] = []
    cfg = build_config(None, [*tiny_overrides(sft_data, tmp_path), f"sft.max_steps={STEPS}", "train.zero_stage=2"])
    run(cfg, log=lines.append)
    said = "\n".join(lines)
    rel = shard.relative_to(newest)
    assert f"checkpoint step_{HALF:08d} is incomplete ({rel} holds {size // 2} of its {size} bytes)" in said
    assert f"resuming from the newest complete checkpoint, step_{HALF - 1:08d}" in said
    assert f"resuming at step {HALF - 1}" in said
    assert (tmp_path / "sft" / "checkpoints_broken" / f"step_{HALF:08d}").is_dir()
    assert_same_weights(tmp_path, one_go)


def test_more_gpus_than_the_cluster_has_fails_before_training(sft_data, tmp_path):
    run_dir_with_data(sft_data, tmp_path)
    cfg = build_config(None, [*tiny_overrides(sft_data, tmp_path), "train.use_gpu=true"])
    with pytest.raises(SFTSetupError, match="needs 2 GPUs; the Ray cluster has 0"):
        run(cfg, log=lambda _: None)
    assert not (tmp_path / "sft" / "checkpoints").exists()


def test_job_without_a_dataset_exits_1_with_the_reason(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "jobs.sft", "--config", "jobs/configs/tiny.yaml", f"run_dir={tmp_path}"],
        cwd=REPO, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 1
    assert "no dataset folder" in proc.stderr and "jobs.build_dataset" in proc.stderr
