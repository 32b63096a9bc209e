"""jobs/configs/spatial_mllm_v11.yaml is the authors' release v1.1 recipe: each value checked
against their script and config (tests/pipelines/fixtures/spatial_mllm_v11_recipe.json, written by
hand from their files), and the 3B yaml no longer calls release values "paper"."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pipelines.config import load_config

REPO = Path(__file__).resolve().parents[2]
THEIRS = json.loads((Path(__file__).parent / "fixtures" / "spatial_mllm_v11_recipe.json").read_text())


@pytest.fixture(scope="module")
def recipe():
    return load_config(["--config", str(REPO / "jobs" / "configs" / "spatial_mllm_v11.yaml")], "sft")


def theirs(section: str, key: str):
    return THEIRS[section][key]["value"]


def test_batch_and_schedule(recipe):
    s, t = recipe.sft, recipe.train
    assert t.num_workers == theirs("script", "nproc_per_node")
    assert s.micro_batch_size == theirs("script", "per_device_train_batch_size")
    assert s.global_batch_size == t.num_workers * s.micro_batch_size * theirs("script", "gradient_accumulation_steps") == 48
    assert (s.max_steps, s.num_epochs) == (-1, theirs("script", "num_train_epochs"))
    assert (s.lr_llm, s.lr_connector) == (theirs("script", "learning_rate"), theirs("script", "mm_projector_lr"))
    assert s.weight_decay == theirs("script", "weight_decay") and s.no_decay == theirs("code", "no_decay")
    assert (s.lr_schedule, s.warmup_ratio) == (theirs("script", "lr_scheduler_type"), theirs("script", "warmup_ratio"))
    assert list(s.adam_betas) == theirs("code", "adam_betas") and s.adam_eps == theirs("code", "adam_eps")
    assert s.max_grad_norm == theirs("code", "gradient_clipping_in_effect")  # 0: no clipping
    assert t.zero_stage == theirs("code", "zero_stage") and recipe.model.dtype == "bf16" and theirs("script", "bf16")
    assert s.gradient_checkpointing == theirs("script", "gradient_checkpointing")
    assert recipe.seed == theirs("code", "seed")


def test_samples(recipe):
    s, m = recipe.sft, recipe.data.mixture
    assert s.max_length == theirs("script", "model_max_length")
    assert s.num_frames == theirs("script", "video_max_frames") and m.video_min_frames == theirs("script", "video_min_frames")
    assert m.video_interval_s == theirs("code", "base_interval")
    assert m.video_fps == theirs("script", "video_frame_fps")  # 2 / 4 = 0.5 s per frame pair
    assert (s.min_pixels, s.max_pixels) == (theirs("script", "video_min_frame_pixels"),
                                            theirs("script", "video_max_frame_pixels"))  # fmt: skip
    assert s.loss_normalization == theirs("code", "loss")
    assert s.train_turn_end_newline == theirs("code", "turn_end_newline_trained")
    assert m.image_lists == theirs("code", "image_lists")
    assert [src.format for src in m.sources] == ["qwen_vl"]


def test_evaluation(recipe):
    e = recipe.eval
    assert e.protocol == "spatial_mllm" and e.scoring == theirs("evaluation", "scorer")
    assert e.num_frames == theirs("evaluation", "nframes")
    assert e.generation_kwargs(think=False) == {
        "do_sample": theirs("evaluation", "do_sample"), "temperature": theirs("evaluation", "temperature"),
        "top_p": theirs("evaluation", "top_p"), "max_new_tokens": theirs("evaluation", "max_new_tokens"),
    }  # fmt: skip
    assert e.frame_timing == "processor_default" and theirs("evaluation", "processor_fps") is None


def test_every_value_names_where_it_comes_from():
    lines = (REPO / "jobs" / "configs" / "spatial_mllm_v11.yaml").read_text().splitlines()
    for line in lines:
        body = line.split("#")[0]
        if ":" in body and body.split(":", 1)[1].strip() not in ("", "null") and not body.startswith("run_dir"):
            assert "#" in line, f"no source named for: {line.strip()}"


def test_the_3b_yaml_says_release_where_it_is_the_release():
    """Where paper and release differ, the 3B recipe names both; release values are not called "paper"."""
    text = (REPO / "jobs" / "configs" / "spatial_mllm_3b.yaml").read_text()
    sft = text.split("\nsft:")[1].split("\ngrpo:")[0]  # the SFT section: release v1.1 values are named so
    for line in sft.splitlines():
        if line.strip().startswith(("global_batch_size", "lr_llm", "lr_connector", "lr_schedule")):
            assert "release" in line, line
