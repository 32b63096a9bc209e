"""SFT, then GRPO, on a mixture of the sources users have: a Qwen-VL finetune JSONL (mp4s at their
own frame rate, images, frame folders, a multi-turn record), ScanQA's train file over our scans,
and our own build. Ray Train + DeepSpeed ZeRO-2, tiny model, 2 CPU workers.

A frame folder holding a file that is not an image passes the checks before training (its file
names are there) and fails when its frames are decoded inside the Ray Data actors (SFT) or the
GRPO worker: its sample is replaced by the next readable record and counted; without
`grpo.skip_bad_records` the workers stop at that step and the job names the file."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pipelines.config import build_config
from pipelines.grpo.stage import run as grpo_run
from pipelines.sft.stage import run as sft_run
from pipelines.train.stage import BadSamplesError
from tests.pipelines.mixture_fixtures import NUM_QUESTION, human_gpt, write_qwen_vl, write_scanqa
from tests.pipelines.sft.helpers import read_jsonl, run_dir_with_data, tiny_overrides

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def sources(sft_data, tmp_path_factory) -> dict:
    """The mixture's sources, in training order (no shuffling): a corrupt frame folder first, two
    ScanQA questions, the eight Qwen-VL records, one record of our build."""
    root = tmp_path_factory.mktemp("mixture")
    write_qwen_vl(root / "qwen")
    (root / "qwen" / "frames" / "broken").mkdir(parents=True)
    (root / "qwen" / "frames" / "broken" / "00000.png").write_bytes(b"not a png")
    (root / "broken.jsonl").write_text(json.dumps(
        {"video": "frames/broken", "conversations": human_gpt("<video>\n" + NUM_QUESTION, "2")}) + "\n")  # fmt: skip
    scenes = sorted(p.name for p in (sft_data / "scans").iterdir() if p.is_dir())
    write_scanqa(root / "ScanQA_v1.0_train.json", scenes)
    return [
        {"name": "broken", "format": "qwen_vl", "annotation": str(root / "broken.jsonl"), "media_root": str(root / "qwen")},
        {"name": "scanqa", "format": "scanqa", "annotation": str(root / "ScanQA_v1.0_train.json"), "rate": 2},
        {"name": "qwen", "format": "qwen_vl", "annotation": str(root / "qwen" / "train.jsonl")},
        {"name": "ours", "format": "built", "rate": 1},
    ]  # fmt: skip


def config(sft_data, run_dir: Path, sources: list[dict], *overrides: str):
    tree = {"data": {"mixture": {"sources": sources}}}
    return build_config(json.dumps(tree), [
        *tiny_overrides(sft_data, run_dir), "train.zero_stage=2", "train.max_bad_record_fraction=0.2",
        "sft.max_steps=3", "sft.micro_batch_size=2", "sft.shuffle=false", "sft.skip_bad_records=true",
        "grpo.max_steps=1", "grpo.prompts_per_step=2", "grpo.num_generations=2", "grpo.max_completion_length=6",
        "grpo.num_frames=4", "grpo.think_format=false", "grpo.shuffle=false", "grpo.save_steps=0",
        "grpo.sample_every=1", "grpo.num_samples=4", "grpo.reward_pool.num_actors=1", "grpo.reward_pool.num_cpus=0.25",
        *overrides,
    ])  # fmt: skip


@pytest.fixture(scope="module")
def trained(sft_data, sources, tmp_path_factory):
    """SFT (3 steps: all 12 records once) then GRPO (1 step) on the mixture; their log lines."""
    run_dir = run_dir_with_data(sft_data, tmp_path_factory.mktemp("mixture_run"))
    lines: list[str] = []
    sft_run(config(sft_data, run_dir, sources), log=lines.append)
    grpo_run(config(sft_data, run_dir, sources, "grpo.skip_bad_records=true"), log=lines.append)
    return run_dir, lines


def test_sft_trains_on_every_source_and_replaces_the_undecodable_sample(trained):
    run_dir, lines = trained
    assert any(line.startswith("[sft] source qwen (qwen_vl, ") and line.endswith(": 8 records, 8 used") for line in lines)
    assert any(line.startswith("[sft] source scanqa (scanqa, ") and line.endswith("2 used") for line in lines)
    assert "[sft] 12 records, 3 steps of 4 (2 workers x 2 x 1 accumulation), from scratch" in lines
    metrics = read_jsonl(run_dir / "sft" / "metrics.jsonl")
    assert [m["step"] for m in metrics] == [1, 2, 3] and all(m["train/loss"] > 0 for m in metrics)
    assert [m["data/bad_samples"] for m in metrics] == [1, 1, 1]
    (failure,) = (run_dir / "sft" / "bad_samples.txt").read_text().splitlines()
    assert failure.startswith("step 1: record broken/1: ") and "broken/00000.png: cannot be read as an image" in failure
    assert "(replaced by record scanqa/" in failure  # the next record in training order: ScanQA's first
    assert (run_dir / "sft" / "final" / "model.safetensors").is_file()
    meta = json.loads((run_dir / "sft" / "meta.json").read_text())
    assert set(meta["inputs"]) >= {"source/broken", "source/scanqa", "source/qwen", "source/ours"}


def test_grpo_scores_single_questions_and_leaves_open_ended_ones_out(trained):
    run_dir, lines = trained
    assert "[grpo] left out 2 open-ended, 1 multi-turn records (GRPO asks one question; grpo.open_ended=skip)" in lines
    assert any(line.startswith("[grpo] policy from ") and "9 prompts, 1 steps of 4 prompts" in line for line in lines)
    (metrics,) = read_jsonl(run_dir / "grpo" / "metrics.jsonl")
    assert metrics["reward/failed"] == 0 and metrics["train/completions/mean_length"] > 0
    samples = read_jsonl(run_dir / "grpo" / "samples.jsonl")
    # Rank 0's two prompts: the broken record, replaced by the next one (qwen/1, an mp4 at its own
    # frame rate), and qwen/1 itself.
    assert [s["id"] for s in samples] == ["qwen/1"] * 4
    assert "step 1: record broken/1: " in (run_dir / "grpo" / "bad_samples.txt").read_text()
    assert (run_dir / "grpo" / "final" / "model.safetensors").is_file()


def test_an_undecodable_sample_stops_grpo_naming_the_file_without_skip(sft_data, sources, tmp_path):
    run_dir = run_dir_with_data(sft_data, tmp_path / "run")
    with pytest.raises(BadSamplesError, match=r"(?s)\[grpo\] stopped at step 1: 1 samples could not be decoded, more "
                       r"than the budget of 0 .*broken/00000.png: cannot be read as an image"):  # fmt: skip
        grpo_run(config(sft_data, run_dir, sources), log=lambda _: None)
    assert not (run_dir / "grpo" / "final").exists() and not (run_dir / "grpo" / "meta.json").exists()
