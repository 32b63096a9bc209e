"""Training sources read as a user has them (pipelines.train.sources, pipelines.media): Qwen-VL
finetune JSONL with mp4s, images and frame folders; ScanQA and SQA3D's released layouts; the
mixture's rates, counts and the paper's shares; bad records named by file and line and skipped up
to the budget; qwen-vl-finetune's frame rule and second_per_grid_ts. No Ray, no model."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import modeling
from data_gen.synthetic.scenes import synthesize_scans
from pipelines import media, prompting
from pipelines.config import ConfigError, build_config
from pipelines.train.data import DataError, keep_good_records
from pipelines.train.source_formats import SourceError
from pipelines.train.sources import read_mixture
from tests.pipelines.evaluate.video_fixtures import synthetic_frames, write_mp4
from tests.pipelines.mixture_fixtures import (
    MC_QUESTION,
    NUM_QUESTION,
    human_gpt,
    write_qwen_vl,
    write_scanqa,
    write_sqa3d,
)


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> Path:
    """root/qwen (JSONL, mp4s, stills, a frame folder), root/scans (2 synthetic scenes),
    root/ScanQA_v1.0_train.json, root/sqa3d/ (questions + annotations)."""
    root = tmp_path_factory.mktemp("sources")
    write_qwen_vl(root / "qwen")
    scenes = [p.name for p in synthesize_scans(root, 2, seed=1, num_frames=12, width=64, height=48)]  # root/scans
    write_scanqa(root / "ScanQA_v1.0_train.json", scenes)
    write_sqa3d(root / "sqa3d", scenes)
    return root


def mixture_cfg(root: Path, sources: list[dict], *more: str, mixture: dict | None = None):
    tree = {"run_dir": str(root / "run"), "data": {"scans_dir": str(root / "scans"),
                                                    "mixture": {"sources": sources, **(mixture or {})}}}  # fmt: skip
    return build_config(json.dumps(tree), list(more))


def qwen(root: Path, **kw) -> dict:
    return {"name": "qwen", "format": "qwen_vl", "annotation": str(root / "qwen" / "train.jsonl"), **kw}


def test_qwen_vl_records_keep_their_words_and_media(files):
    rows = {r["id"]: r for r in read_mixture(mixture_cfg(files, [qwen(files)]), "train").table.to_pylist()}
    assert sorted(rows) == [f"qwen/{i}" for i in range(1, 9) if i != 5] + ["qwen/chat"]
    mc, num = rows["qwen/1"], rows["qwen/2"]
    assert (mc["media_kind"], mc["media_paths"]) == ("video", [str(files / "qwen" / "videos" / "clip0.mp4")])
    assert (mc["problem_type"], mc["ground_truth"], mc["options"]) == ("multiple_choice", "B", ["A. red", "B. green", "C. blue"])
    assert (num["problem_type"], num["ground_truth"]) == ("numerical", "1")
    assert json.loads(mc["turns"]) == [{"user": "<video>\n" + MC_QUESTION, "assistant": "B"}]
    chat = rows["qwen/chat"]
    assert chat["problem_type"] == "open_ended" and [t["assistant"] for t in json.loads(chat["turns"])] == [
        "a white square", "to the right"]  # fmt: skip
    assert rows["qwen/6"]["frame_indices"] == rows["qwen/6"]["uniform_indices"] == [0, 5, 10, 47]  # its own
    images = rows["qwen/7"]
    assert images["media_kind"] == "images" and len(images["media_paths"]) == 4
    # Four <image> tags become the one video the four images make.
    assert json.loads(images["turns"])[0]["user"] == "<video>\n" + MC_QUESTION
    assert rows["qwen/8"]["media_kind"] == "folder"
    # The prompt shows the file's own words: the video, then the text after the tag, as qwen-vl-finetune.
    processor = modeling.load_processor("tiny")
    prompt = prompting.prompt_text(processor, mc)
    assert "<|vision_start|><|video_pad|><|vision_end|>\n" + MC_QUESTION + "<|im_end|>\n<|im_start|>assistant\n" in prompt


def test_malformed_lines_are_named_by_file_and_line(files, tmp_path):
    good = {"video": "videos/clip0.mp4", "conversations": human_gpt("<video>\n" + NUM_QUESTION, "1")}
    lines = [json.dumps(good), "{not json", json.dumps({"video": "videos/clip0.mp4"}),
             json.dumps({**good, "video": ["a.mp4", "b.mp4"]}), json.dumps({"conversations": good["conversations"]}),
             json.dumps({**good, "conversations": human_gpt("<video><video>" + NUM_QUESTION, "1")})]  # fmt: skip
    file = tmp_path / "bad.jsonl"
    file.write_text("\n".join(lines) + "\n")
    cfg = mixture_cfg(files, [{"name": "f", "format": "qwen_vl", "annotation": str(file),
                               "media_root": str(files / "qwen")}])  # fmt: skip
    mixture = read_mixture(cfg, "train")
    assert mixture.table.num_rows == 1 and mixture.read == 6
    problems = [str(b) for b in mixture.bad]
    assert problems[0].startswith(f"{file}:2: not valid JSON")
    assert problems[1].startswith(f"{file}:3: `conversations` must be a list")
    assert problems[2] == f"{file}:4: `video` lists 2 videos; one video per record is supported"
    assert problems[3] == f"{file}:5: no `video` or `image`: text-only records are not supported"
    assert problems[4].startswith(f"{file}:6: the conversation shows 2 <video> tags")
    with pytest.raises(DataError, match=f"5 of 6 records cannot be used \\(set sft.skip_bad_records=true.*\n  {file}:2"):
        keep_good_records(mixture.table, mixture.bad, sampling="space_aware", num_frames=4, skip=False,
                          skip_option="sft.skip_bad_records", max_fraction=0.05, records_read=mixture.read)  # fmt: skip
    # A JSON list's records are numbered by the line they start on; a broken list stops the read.
    listed = tmp_path / "list.json"
    listed.write_text("[\n" + json.dumps(good) + ",\n  {\"video\": 3}\n]")
    cfg = mixture_cfg(files, [{"name": "l", "format": "qwen_vl", "annotation": str(listed), "media_root": str(files / "qwen")}])
    assert [str(b) for b in read_mixture(cfg, "train").bad] == [f"{listed}:3: `conversations` must be a list of at "
                                                                 "least a human and a gpt turn"]  # fmt: skip
    listed.write_text("[\n" + json.dumps(good) + ",\n  {oops}\n]")
    with pytest.raises(SourceError, match=f"{listed}:3: not valid JSON"):
        read_mixture(cfg, "train")


def test_scanqa_and_sqa3d_from_their_released_files(files):
    cfg = mixture_cfg(files, [
        {"name": "scanqa", "format": "scanqa", "annotation": str(files / "ScanQA_v1.0_train.json")},
        {"name": "sqa3d", "format": "sqa3d", "annotation": str(files / "sqa3d" / "v1_balanced_questions_train_scannetv2.json")},
    ])  # fmt: skip
    rows = {r["id"]: r for r in read_mixture(cfg, "train").table.to_pylist()}
    scanqa = rows["scanqa/train-scene0000_00-0"]
    assert (scanqa["question_type"], scanqa["problem_type"]) == ("scanqa", "open_ended")
    assert scanqa["question"] == "What is placed next to the table 0?" and scanqa["ground_truth"] == "brown wooden chair"
    assert json.loads(scanqa["meta"])["answers"] == ["brown wooden chair", "chair"]
    assert scanqa["media_paths"] == [str(files / "scans" / "scene0000_00")] and scanqa["media_kind"] == "scan"
    sqa = rows["sqa3d/220600001"]
    # The situation comes first, then the question.
    assert sqa["question"] == "I am standing by the door facing the window. What is in front of me 1?"
    assert (sqa["question_type"], sqa["ground_truth"]) == ("sqa3d", "table")
    assert len(rows) == 6 + 4
    # Open-ended questions are asked with the short-answer post-prompt.
    assert prompting.user_text(sqa).endswith("\nPlease answer the question using a single word or phrase.")
    # A scan record that names no frames shows num_frames evenly spread ones.
    clip = prompting.record_clip(scanqa, sampling="space_aware", rule=media.FrameRule(4))
    assert len(clip.frames) == 4 and clip.fps is None


def test_scanqa_test_files_without_answers_are_bad_records(files, tmp_path):
    rows = json.loads((files / "ScanQA_v1.0_train.json").read_text())
    for row in rows[:2]:
        del row["answers"]
    text = json.dumps(rows, indent=1)  # one record over many lines, each opening with " {"
    (tmp_path / "ScanQA_v1.0_test_w_obj.json").write_text(text)
    starts = [n for n, line in enumerate(text.splitlines(), start=1) if line == " {"]
    cfg = mixture_cfg(files, [{"name": "s", "format": "scanqa", "annotation": str(tmp_path / "ScanQA_v1.0_test_w_obj.json")}])
    bad = [str(b) for b in read_mixture(cfg, "train").bad]
    assert bad == [f"{tmp_path / 'ScanQA_v1.0_test_w_obj.json'}:{line}: has no answers (ScanQA's test files have none; "
                   "train on train or val)" for line in starts[:2]]  # fmt: skip


def test_rates_counts_and_the_papers_shares(files):
    scanqa = {"name": "scanqa", "format": "scanqa", "annotation": str(files / "ScanQA_v1.0_train.json")}
    sqa3d = {"name": "sqa3d", "format": "sqa3d",
             "annotation": str(files / "sqa3d" / "v1_balanced_questions_train_scannetv2.json")}  # fmt: skip
    def sizes(*sources, **mixture):
        table = read_mixture(mixture_cfg(files, list(sources), mixture=mixture), "train").table
        names = table["source"].to_pylist()
        return {n: names.count(n) for n in dict.fromkeys(names)}

    assert sizes({**scanqa, "rate": "50%"}, {**sqa3d, "rate": 3}) == {"scanqa": 3, "sqa3d": 3}
    assert sizes({**scanqa, "rate": "200%"}) == {"scanqa": 12}  # above 100%: every record twice
    # The same seed draws the same records; the draw does not follow file order.
    a = read_mixture(mixture_cfg(files, [{**scanqa, "rate": "50%"}]), "train").table["id"].to_pylist()
    assert a == read_mixture(mixture_cfg(files, [{**scanqa, "rate": "50%"}]), "train").table["id"].to_pylist()
    # Shares: ScanQA holds 6, SQA3D 4; 60:40 allows 10 records in all: 6 + 4.
    assert sizes(scanqa, sqa3d, shares={"scanqa": 60, "sqa3d": 40}) == {"scanqa": 6, "sqa3d": 4}
    # 75:25 is limited by ScanQA: 6 / 0.75 = 8 in all, 6 + 2.
    assert sizes(scanqa, sqa3d, shares={"scanqa": 75, "sqa3d": 25}) == {"scanqa": 6, "sqa3d": 2}
    assert sizes(scanqa, sqa3d, shares={"scanqa": 75, "sqa3d": 25}, total=4) == {"scanqa": 3, "sqa3d": 1}
    with pytest.raises(ConfigError, match="spatial_mllm_120k needs exactly one source of each format"):
        mixture_cfg(files, [scanqa, sqa3d], mixture={"preset": "spatial_mllm_120k"})
    cfg = mixture_cfg(files, [scanqa, sqa3d, {"name": "ours", "format": "built"}], mixture={"preset": "spatial_mllm_120k"})
    assert cfg.data.mixture.source_shares() == {"scanqa": 21.26, "sqa3d": 21.27, "ours": 57.47}


def test_qwen_vl_frame_rule_and_second_per_grid_ts(tmp_path):
    """qwen-vl-finetune: round(duration / base_interval) frames clamped to [min, max], at
    linspace(0, n - 1, k) cast to int; second_per_grid_ts = temporal_patch_size / (frames / duration)."""
    # 20 s at 24 fps with a 2 s interval asks 10 frames, clamped to 8; linspace(0, 479, 8) truncated:
    assert media.qwen_vl_indices(480, 24.0, interval_s=2.0, min_frames=4, max_frames=8) == [
        0, 68, 136, 205, 273, 342, 410, 479]  # fmt: skip
    # 2 s ask 1 frame, clamped up to 4: 0, 15.67, 31.33, 47 -> 0, 15, 31, 47.
    assert media.qwen_vl_indices(48, 24.0, interval_s=2.0, min_frames=4, max_frames=8) == [0, 15, 31, 47]
    assert media.qwen_vl_indices(3, 24.0, interval_s=2.0, min_frames=4, max_frames=8) == [0, 1, 2]  # fewer frames

    frames = synthetic_frames(48)
    video = write_mp4(tmp_path / "v.mp4", frames, fps=24)
    clip = media.load_clip("video", [str(video)], [], media.FrameRule(num_frames=8, min_frames=4, interval_s=2.0))
    for got, i in zip(clip.frames, [0, 15, 31, 47], strict=True):  # only those frames, in order
        assert np.abs(got.astype(np.int16) - frames[i]).mean() < 4.0
    assert clip.fps == pytest.approx(4 / 2.0)  # 4 frames over 2 s
    processor = modeling.load_processor("tiny")
    batch = processor(text=["<|video_pad|>"], videos=[clip.frames], fps=clip.fps, return_tensors="np")
    assert batch["second_per_grid_ts"].tolist() == [pytest.approx(2 / 2.0)]
    fixed = media.load_clip("video", [str(video)], [3, 9], media.FrameRule(num_frames=8, fps=4.0))
    assert len(fixed.frames) == 2 and fixed.fps == 4.0  # a record's own frames; a set rate wins


def test_missing_and_unreadable_media_are_skipped_up_to_the_budget(files, tmp_path):
    good = {"conversations": human_gpt("<video>\n" + NUM_QUESTION, "1")}
    (tmp_path / "garbage.mp4").write_bytes(b"\x00" * 4096)
    lines = [{**good, "video": str(files / "qwen" / "videos" / f"clip{i % 2}.mp4")} for i in range(18)]
    lines += [{**good, "video": "missing.mp4"}, {**good, "video": "garbage.mp4"}]
    (tmp_path / "a.jsonl").write_text("".join(json.dumps(r) + "\n" for r in lines))
    cfg = mixture_cfg(files, [{"name": "a", "format": "qwen_vl", "annotation": str(tmp_path / "a.jsonl")}])
    mixture = read_mixture(cfg, "train")

    def check(skip: bool, fraction: float):
        return keep_good_records(mixture.table, mixture.bad, sampling="space_aware", num_frames=4, skip=skip,
                                 skip_option="grpo.skip_bad_records", max_fraction=fraction, records_read=20)  # fmt: skip

    with pytest.raises(DataError, match="2 of 20 records cannot be used \\(set grpo.skip_bad_records=true"):
        check(False, 0.5)
    kept, bad = check(True, 0.1)
    assert kept.num_rows == 18
    bad = sorted(bad)
    assert bad[0] == f"a/19: {tmp_path / 'missing.mp4'}: no such video file"
    assert bad[1].startswith(f"a/20: {tmp_path / 'garbage.mp4'}: cannot be decoded")
    with pytest.raises(DataError, match="2 of 20 records cannot be used, more than train.max_bad_record_fraction=0.05"):
        check(True, 0.05)


def test_video_frames_are_preprocessed_as_qwen_does_at_the_3b_sizes():
    """Reference §1's worked size: 16 frames of 640x480 -> 476x644 per frame (within 768*28*28
    pixels) -> 34x46 patches, frames in pairs (temporal patch 2) -> 8x17x23 = 3,128 video tokens."""
    processor = modeling.load_processor("tiny", min_pixels=128 * 28 * 28, max_pixels=768 * 28 * 28)
    frames = synthetic_frames(16, 640, 480)
    batch = processor(text=["<|video_pad|>"], videos=[frames], fps=2.0, return_tensors="np")
    assert batch["video_grid_thw"].tolist() == [[8, 34, 46]]
    assert int((batch["input_ids"][0] == processor.video_token_id).sum()) == 8 * 17 * 23
    assert batch["second_per_grid_ts"].tolist() == [1.0]  # temporal patch 2 / 2 frames per second
