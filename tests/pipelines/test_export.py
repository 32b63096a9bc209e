"""`jobs.export_dataset`: our built dataset as Qwen-VL finetune JSONL plus frame files, in the
layout qwen-vl-finetune reads; read back as a `qwen_vl` source it gives the same training samples
(token ids, labels, pixels) as the dataset itself."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from PIL import Image

import modeling
from data_gen.qa.config import QAConfig
from data_gen.qa.scene_records import scene_records
from data_gen.scans.scannet import read_scan
from data_gen.schema import records_to_table
from data_gen.synthetic.scenes import synthesize_scans
from pipelines import media, prompting
from pipelines.config import build_config
from pipelines.export import run as export
from pipelines.sft.samples import SAMPLE_KEYS, encode_sample
from pipelines.train.data import DataError
from pipelines.train.sources import read_mixture

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> Path:
    """run_dir with scans/scene0000_00 (24 frames, 96x72) and dataset/train: its QA records."""
    run_dir = tmp_path_factory.mktemp("export_run")
    (scene,) = synthesize_scans(run_dir, 1, seed=5, num_frames=24, width=96, height=72)
    train = run_dir / "dataset" / "train"
    train.mkdir(parents=True)
    pq.write_table(records_to_table(scene_records(read_scan(scene), QAConfig(num_frames=6), 0)), train / "part-00000.parquet")
    return run_dir


def test_export_then_read_back_gives_the_same_training_samples(built):
    """export.media=images: the frames as PNGs, one <image> tag each (the authors' loader: separate images)."""
    cfg = build_config(None, [f"run_dir={built}", "export.num_frames=4", "export.media=images"])
    out = export(cfg, log=lambda _: None)
    assert out == built / "export" / "train"
    lines = [json.loads(line) for line in (out / "train.jsonl").read_text().splitlines()]
    ours = read_mixture(cfg, "train").table.to_pylist()
    assert [r["id"] for r in lines] == [r["id"] for r in ours]
    first = lines[0]
    # The Qwen-VL finetune layout: an image list relative to the export folder, one <image> tag each.
    assert set(first) >= {"image", "conversations"} and [t["from"] for t in first["conversations"]] == ["human", "gpt"]
    assert first["conversations"][0]["value"].count("<image>") == len(first["image"]) == 4
    assert all((out / p).is_file() for r in lines for p in r["image"])
    scan_frame = media.scan_frames(built / "scans" / ours[0]["video"], [first["scan_frames"][0]])[0]
    assert np.array_equal(np.asarray(Image.open(out / first["image"][0])), scan_frame)  # PNG: lossless

    back_cfg = build_config(json.dumps({"run_dir": str(built), "data": {"mixture": {"sources": [
        {"name": "back", "format": "qwen_vl", "annotation": str(out / "train.jsonl")}]}}}))  # fmt: skip
    back = {r["id"]: r for r in read_mixture(back_cfg, "train").table.to_pylist()}
    processor = modeling.load_processor("tiny")
    rule = media.FrameRule(4)
    for record in ours:
        again = back[f"back/{record['id']}"]
        assert (again["problem_type"], again["ground_truth"], again["question_type"]) == (
            record["problem_type"], record["ground_truth"], record["question_type"])  # fmt: skip
        samples = []
        for r in (record, again):
            clip = prompting.record_clip(r, sampling="space_aware", rule=rule)
            samples.append(encode_sample(processor, r, clip.frames, think=False, max_length=8192, fps=clip.fps)[0])
        for key in SAMPLE_KEYS:
            assert np.array_equal(samples[0][key], samples[1][key], equal_nan=key == "second_per_grid_ts"), key


def test_video_export_is_one_video_of_exactly_the_frames(built, tmp_path):
    """export.media=video (the default): one lossless mp4 per frame set at 4 fps, one <video> tag.
    The authors' loader samples np.linspace(0, n - 1, 16) of it (their interval rule clamped to 16)
    and times it by video_frame_fps=4; our reader reads the same frames at 16 / 4 s = 4 fps: 0.5 s
    per frame pair either way. Read back, the samples are the dataset's, with that timing."""
    cfg = build_config(None, [f"run_dir={built}", "export.num_frames=4", f"export.out_dir={tmp_path / 'video'}"])
    out = export(cfg, log=lambda _: None)
    lines = [json.loads(line) for line in (out / "train.jsonl").read_text().splitlines()]
    meta = json.loads((out / "meta.json").read_text())
    assert meta["media"] == "video" and meta["video_fps"] == 4.0 and not (out / "frames").exists()
    first = lines[0]
    assert "image" not in first and first["conversations"][0]["value"].startswith("<video>")
    assert first["conversations"][0]["value"].count("<video>") == 1
    ours = read_mixture(cfg, "train").table.to_pylist()
    total, fps = media.video_info(out / first["video"])
    frames = media.read_frames(out / first["video"], indices=list(range(total)))
    assert total == 4 and fps == pytest.approx(4.0)
    scan = media.scan_frames(built / "scans" / ours[0]["video"], first["scan_frames"])
    assert all(np.array_equal(a, b) for a, b in zip(frames, scan, strict=True))  # lossless
    assert np.unique(np.linspace(0, len(frames) - 1, 16, dtype=int)).tolist() == [0, 1, 2, 3]  # their sampling: all
    assert meta["videos"] == len({r["video"] for r in lines}) <= len(lines)  # records sharing frames share an mp4

    back_cfg = build_config(json.dumps({"run_dir": str(built), "data": {"mixture": {"sources": [
        {"name": "back", "format": "qwen_vl", "annotation": str(out / "train.jsonl")}]}}}))  # fmt: skip
    back = {r["id"]: r for r in read_mixture(back_cfg, "train").table.to_pylist()}
    processor = modeling.load_processor("tiny")
    rule = media.FrameRule(4)
    for record in ours[:3]:
        again = back[f"back/{record['id']}"]
        assert again["media_kind"] == "video"
        samples = []
        for r in (record, again):
            clip = prompting.record_clip(r, sampling="space_aware", rule=rule)
            samples.append(encode_sample(processor, r, clip.frames, think=False, max_length=8192, fps=clip.fps)[0])
        for key in ("input_ids", "labels", "mm_token_type_ids", "video_pixel_rows", "video_grid_thw"):
            assert np.array_equal(samples[0][key], samples[1][key]), key
        assert samples[1]["second_per_grid_ts"].tolist() == [0.5]  # 2 frames / 4 fps


def test_bad_input_leaves_nothing_half_written(built, tmp_path):
    cfg = build_config(None, [f"run_dir={built}", f"data.scans_dir={tmp_path / 'no_scans'}",
                              f"export.out_dir={tmp_path / 'out'}"])  # fmt: skip
    with pytest.raises(DataError, match="no_scans/scene0000_00: cannot read frames"):
        export(cfg, log=lambda _: None)
    assert list(tmp_path.iterdir()) == []  # neither the export nor its work folder
    job = subprocess.run([sys.executable, "-m", "jobs.export_dataset", f"run_dir={tmp_path / 'empty'}"], cwd=REPO,
                         capture_output=True, text=True, timeout=120)  # fmt: skip
    assert job.returncode == 1 and "jobs.export_dataset: " in job.stderr and "no dataset folder" in job.stderr
