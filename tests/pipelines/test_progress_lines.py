"""What the console shows per step: GRPO's rewards, accuracy, KL, length and speed; SFT's grad norm."""

from __future__ import annotations

import json

from pipelines.train.metrics_log import progress_text


def test_grpo_line_shows_what_training_is_doing():
    row = {"step": 3, "train/loss": 0.0, "reward/total": 1.25, "reward/total_std": 0.4330127, "reward/accuracy": 0.5,
           "train/kl": 0.00123, "train/completions/mean_length": 41.25, "reward/failed": 0.0, "timing/step": 3.456}  # fmt: skip
    assert progress_text(row, "grpo") == "reward 1.250, std 0.433, acc 0.500, kl 0.0012, len 41.2, 3.46 s/step"
    assert progress_text({**row, "reward/failed": 2.0}, "grpo").endswith("len 41.2, failed 2, 3.46 s/step")


def test_sft_line_adds_the_grad_norm():
    row = {"train/loss": 1.5, "train/grad_norm": 0.25, "train/lr_llm": 1e-5, "timing/step_s": 0.2,
           "perf/samples_per_s": 20.0}  # fmt: skip
    assert progress_text(row, "sft") == "loss 1.5000, grad norm 0.250, lr 1.00e-05, 0.20 s/step, 20.0 samples/s"


def test_the_follower_survives_a_resume_rewriting_the_file_and_shows_each_step_once(tmp_path):
    """A resume replaces metrics.jsonl (`truncate_jsonl`: kept lines, renamed into place) while the
    driver follows it; a torn or foreign line is skipped, never fatal to the follower thread."""
    import json

    from pipelines.train.metrics_log import MetricsFollower, truncate_jsonl

    path = tmp_path / "metrics.jsonl"
    row = lambda s: json.dumps({"step": s, "train/loss": 1.0 / s}) + "\n"  # noqa: E731
    path.write_text(row(1) + row(2) + row(3))  # a previous run's steps
    shown: list[str] = []
    follower = MetricsFollower(path, total_steps=6, log=shown.append, tag="sft", every=1)
    truncate_jsonl(path, 2)  # the resume keeps steps 1-2, in a new file
    with path.open("a") as f:
        f.write("{not json\n" + row(3) + row(4))
    follower._read()
    with path.open("a") as f:
        f.write(row(5))
    follower._read()
    assert [line.split()[2] for line in shown] == ["4/6", "5/6"]  # 3 was logged before; 1-2 replayed
    assert path.read_text().splitlines()[:2] == [row(1).strip(), row(2).strip()]


def test_a_resume_drops_the_redone_steps_from_both_logs(tmp_path):
    """metrics.jsonl and bad_samples.txt keep only the steps up to the resumed checkpoint, so a
    step the resume redoes is listed once, not once per attempt."""
    from pipelines.train.metrics_log import BAD_SAMPLES_FILE, MetricsLogger

    stage = tmp_path / "sft"
    stage.mkdir()
    (stage / "metrics.jsonl").write_text("".join(f'{{"step": {s}, "train/loss": 1.0}}\n' for s in (1, 2, 3)))
    (stage / BAD_SAMPLES_FILE).write_text("step 1: a.jpg: truncated\nstep 3: b.jpg: bad\nstep 3: c.jpg: bad\n")
    MetricsLogger(tmp_path, "sft", config={}, resume_step=2, use_wandb=False)
    assert [json.loads(line)["step"] for line in (stage / "metrics.jsonl").read_text().splitlines()] == [1, 2]
    assert (stage / BAD_SAMPLES_FILE).read_text() == "step 1: a.jpg: truncated\n"
