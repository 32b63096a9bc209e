"""The sample_frames job end to end on synthetic mp4s with the tiny VGGT, through local Ray: the
output format, the same choice as the selection run in this process, a bad video skipped and
named, resume, the failure threshold, frame folders; and the predicted geometry's conventions."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

import modeling
from data_gen.errors import InputError
from data_gen.qa.frame_selection import uniform_positions, unproject_depths
from pipelines.config import build_config
from pipelines.formats.frame_indices import read_frame_indices
from pipelines.media import read_frames
from pipelines.sample_frames.frame_folders import frame_file_name
from pipelines.sample_frames.inputs import candidate_frames
from pipelines.sample_frames.run import run
from pipelines.sample_frames.sampler import predicted_geometry, sample_positions
from tests.pipelines.sample_frames.conftest import FRAMES, SCENES

REPO = Path(__file__).resolve().parents[3]
SETTINGS = ["sample_frames.num_candidates=24", "sample_frames.num_frames=8", "sample_frames.image_size=56"]


def _config(tmp_path, videos_dir, *extra):
    yaml_text = (REPO / "jobs" / "configs" / "tiny.yaml").read_text()
    return build_config(yaml_text, [f"run_dir={tmp_path / 'run'}", f"sample_frames.videos_dir={videos_dir}",
                                    *SETTINGS, *extra])  # fmt: skip


def _in_process(cfg, path: Path) -> list[int]:
    """The same choice without Ray: decode, resize, tiny VGGT with the job's seed, one thread (as
    a 1-CPU Ray actor runs), selection."""
    from modeling.vggt_model import resize_for_vggt

    sf = cfg.sample_frames
    _, candidates, frames = candidate_frames(path, sf.num_candidates)
    model = modeling.load_vggt("tiny", seed=cfg.seed)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        positions = sample_positions(model, resize_for_vggt(frames, sf.image_size), sf)
    finally:
        torch.set_num_threads(threads)
    return [candidates[p] for p in positions]


def test_job_end_to_end(ray_session, videos_dir, tmp_path):
    frames_dir = tmp_path / "presampled"
    cfg = _config(tmp_path, videos_dir, "sample_frames.max_bad_video_fraction=0.5", f"sample_frames.frames_dir={frames_dir}")
    lines = []
    out = run(cfg, log=lines.append)

    rows = [json.loads(line) for line in (out / "space_aware.jsonl").read_text().splitlines()]
    assert rows[0].keys() == {"format", "settings"} and rows[0]["format"] == 1
    records = {r["video"]: r for r in rows[1:]}
    assert sorted(records) == [f"synthetic/{s}.mp4" for s in SCENES]
    candidates = [int(p) for p in uniform_positions(FRAMES, 24)]
    for video, record in records.items():
        assert list(record) == ["video", "key", "num_frames", "candidates", "frame_indices"]
        assert record["key"] == video.removesuffix(".mp4") and record["num_frames"] == FRAMES
        assert record["candidates"] == candidates
        chosen = record["frame_indices"]
        assert len(chosen) == 8 and chosen == sorted(set(chosen)) and set(chosen) <= set(candidates)
        assert chosen == _in_process(cfg, videos_dir / video), video  # the job = the selection in-process
        folder = frames_dir / record["key"]  # the authors' layout: <dataset>/<scene>/, one image per frame
        assert sorted(p.name for p in folder.iterdir()) == [frame_file_name(i) for i in chosen]
        from PIL import Image

        first = np.asarray(Image.open(folder / frame_file_name(chosen[0])))
        np.testing.assert_array_equal(first, read_frames(videos_dir / video, indices=[chosen[0]])[0])

    indices = read_frame_indices(out / "frame_indices.json")
    assert indices == {r["key"]: r["frame_indices"] for r in records.values()} == read_frame_indices(out)
    report = json.loads((out / "report.json").read_text())
    assert report["sampled"] == 2 and list(report["failed"]) == ["synthetic/broken.mp4"]
    assert set(report["seconds_per_video"]) == {"decode", "aggregator", "heads", "selection"}
    assert any("skipped synthetic/broken.mp4" in line and "cannot be decoded" in line for line in lines)
    assert not (out / "meta.json").exists()  # a video failed: not complete, the next run retries it

    # Resume with no tolerance: only the broken video is tried again, and it stops the job.
    strict = _config(tmp_path, videos_dir, "sample_frames.max_bad_video_fraction=0", f"sample_frames.frames_dir={frames_dir}")
    with pytest.raises(InputError, match=r"(?s)1 of 3 videos failed.*synthetic/broken.mp4"):
        run(strict, log=lines.append)
    assert any("2 done before, 1 to sample" in line for line in lines)
    assert read_frame_indices(out) == indices  # finished videos kept

    (videos_dir / "synthetic" / "broken.mp4").rename(tmp_path / "broken.mp4")  # the user removes it
    try:
        run(strict, log=lines.append)
        assert (out / "meta.json").exists()
        lines.clear()
        run(strict, log=lines.append)
        assert lines == [f"[sample_frames] already complete: {out}"]
    finally:
        (tmp_path / "broken.mp4").rename(videos_dir / "synthetic" / "broken.mp4")

    # Evaluation reads the job's output (eval.frame_sampling=space_aware): a VSI-Bench file on the
    # same videos, each question shown exactly the frames the job chose.
    from pipelines.evaluate.inputs import load_items
    from pipelines.evaluate.run import run as evaluate

    questions = [{"id": str(k), "dataset": "synthetic", "scene_name": scene, "question_type": "object_counting",
                  "question": "How many chair(s) are in this room?", "options": [], "ground_truth": "2"}
                 for k, scene in enumerate(SCENES)]  # fmt: skip
    (tmp_path / "vsi.json").write_text(json.dumps(questions))
    eval_args = [f"run_dir={tmp_path / 'run'}", "eval.source=vsibench", f"eval.vsibench_file={tmp_path / 'vsi.json'}",
                 f"eval.videos_dir={videos_dir}", "eval.frame_sampling=space_aware", f"eval.frame_indices_file={out}",
                 "eval.num_frames=8", "eval.max_new_tokens=2"]  # fmt: skip
    eval_cfg = build_config(None, eval_args)
    items = load_items(eval_cfg)
    assert [item["frames"]["ids"] for item in items] == [indices[f"synthetic/{s}"] for s in SCENES]
    report = json.loads((evaluate(eval_cfg, log=lines.append) / "report.json").read_text())
    assert report["num_rows"] == 2 and report["frames"].startswith("space_aware")


def test_job_refuses_the_1b_preset_without_weights_before_any_work(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "jobs.sample_frames", "--config", "jobs/configs/spatial_mllm_3b.yaml",
         f"run_dir={tmp_path}", f"sample_frames.videos_dir={tmp_path}"],
        cwd=REPO, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 1
    assert "sample_frames.preset=vggt-1b needs sample_frames.weights" in proc.stderr
    assert not (tmp_path / "frames").exists()


def test_weights_that_do_not_fit_stop_the_job_before_any_work(tmp_path, videos_dir):
    """A checkpoint of another model (here: the tiny VGGT's, for the small preset) is refused by
    name and shape in the driver, before Ray starts."""
    from safetensors.torch import save_file

    save_file(modeling.build_vggt("tiny").state_dict(), tmp_path / "tiny.safetensors")
    cfg = _config(tmp_path, videos_dir, "sample_frames.preset=small", f"sample_frames.weights={tmp_path / 'tiny.safetensors'}")
    with pytest.raises(InputError, match=r"(?s)sample_frames.weights=.*tiny.safetensors.*shape mismatch"):
        run(cfg)
    assert not (tmp_path / "run" / "frames").exists()


def test_predicted_geometry_follows_vggts_conventions():
    """A hand-made prediction: identity rotation, t = (1, 2, 3) (world-to-camera, so the camera sits
    at (-1, -2, -3)), 90-degree fields of view on a 4x6 image: fx = 3, fy = 2, centre (3, 2)."""
    pose_enc = torch.tensor([[[1.0, 2.0, 3.0, 0.0, 0.0, 0.0, 1.0, math.pi / 2, math.pi / 2]]])
    depth = torch.rand(1, 1, 4, 6, 1) + 0.5
    pred = {"pose_enc": pose_enc, "depth": depth, "depth_conf": torch.full((1, 1, 4, 6), 2.0)}
    d, conf, cam_to_world, k = predicted_geometry(pred, (4, 6))
    np.testing.assert_allclose(cam_to_world[0, :3, 3], [-1.0, -2.0, -3.0])
    np.testing.assert_allclose(k[0], [[3.0, 0, 3.0], [0, 2.0, 2.0], [0, 0, 1]], atol=1e-6)
    assert d.shape == conf.shape == (1, 4, 6)


def test_numpy_and_torch_unprojections_agree():
    """The selection's numpy back-projection and modeling.depth_to_world_points on the same
    rotated cameras and depths."""
    gen = torch.Generator().manual_seed(0)
    quat = torch.randn(1, 3, 4, generator=gen)
    pose_enc = torch.cat([torch.randn(1, 3, 3, generator=gen), quat, torch.full((1, 3, 2), 1.2)], dim=-1)
    depth = torch.rand(1, 3, 6, 8, 1, generator=gen) + 0.5
    extrinsics, intrinsics = modeling.pose_encoding_to_cameras(pose_enc, (6, 8))
    want = modeling.depth_to_world_points(depth, extrinsics, intrinsics)[0]  # [3, 6, 8, 3]
    pred = {"pose_enc": pose_enc, "depth": depth, "depth_conf": torch.ones(1, 3, 6, 8)}
    d, _, cam_to_world, k = predicted_geometry(pred, (6, 8))
    xyz, bounds, _ = unproject_depths(list(d), cam_to_world, k)
    np.testing.assert_allclose(xyz.T, want.reshape(-1, 3).numpy(), atol=1e-5)
    assert bounds.tolist() == [0, 48, 96, 144]


def test_chunked_candidates_still_choose_frames(videos_dir):
    """frames_per_forward=8 on 24 candidates: 4 forwards (candidate 0 + 7 others each), merged,
    then the usual choice of 8 distinct candidates."""
    from modeling.vggt_model import resize_for_vggt
    from pipelines.config.sample_frames import SampleFramesConfig
    from pipelines.sample_frames.sampler import Timings

    sf = SampleFramesConfig(preset="tiny", num_candidates=24, num_frames=8, image_size=56, frames_per_forward=8)
    _, _, frames = candidate_frames(videos_dir / "synthetic" / "scene0000_00.mp4", sf.num_candidates)
    timings = Timings()
    positions = sample_positions(modeling.load_vggt("tiny", seed=0), resize_for_vggt(frames, 56), sf, timings)
    assert timings.forwards == 4
    assert len(positions) == 8 and positions == sorted(set(positions)) and 0 <= min(positions) and max(positions) < 24
