"""Media read back by pipelines.media: an mp4 written here frame-exact enough to train and evaluate
on, frame folders, images, scans, qwen-vl-finetune's frame rule."""

from __future__ import annotations

import numpy as np
import pytest

from data_gen.qa.frame_selection import uniform_positions
from pipelines.media import SEEK_GAP, VideoError, read_frame_folder, read_frames
from tests.pipelines.evaluate.video_fixtures import synthetic_frames, write_mp4


def assert_frames(got: list[np.ndarray], frames: list[np.ndarray], wanted) -> None:
    """Each frame read is closest to the wanted source frame (right order, none skipped or
    repeated) and within a few grey levels of it (yuv420p rounding; neighbours differ by ~9)."""
    assert len(got) == len(wanted)
    source = np.stack(frames).astype(np.int16)  # [N, H, W, 3]
    for g, i in zip(got, wanted, strict=True):
        assert g.dtype == np.uint8 and g.shape == frames[0].shape
        err = np.abs(source - g.astype(np.int16)).mean(axis=(1, 2, 3))  # [N]
        assert int(err.argmin()) == i, f"wanted frame {i}, got one closest to {int(err.argmin())}"
        assert err[i] < 4.0, f"frame {i}: mean abs error {err[i]:.2f}"


def test_48_frames_read_back_as_16_uniform(tmp_path):
    frames = synthetic_frames(48)
    video = write_mp4(tmp_path / "scannet" / "scene0000_00.mp4", frames)
    assert_frames(read_frames(video, 16), frames, uniform_positions(48, 16))


def test_long_video_is_sampled_through_seeks(tmp_path):
    n = 16 * (SEEK_GAP + 8)  # samples further apart than SEEK_GAP: each one is a seek
    frames = synthetic_frames(n, 32, 32)
    video = write_mp4(tmp_path / "long.mp4", frames, gop=10)
    assert_frames(read_frames(video, 16), frames, uniform_positions(n, 16))


def test_short_video_gives_every_frame(tmp_path):
    frames = synthetic_frames(5)
    assert_frames(read_frames(write_mp4(tmp_path / "short.mp4", frames), 16), frames, range(5))


def test_bad_videos_name_the_file(tmp_path):
    with pytest.raises(VideoError, match="missing.mp4.*no such video file"):
        read_frames(tmp_path / "missing.mp4", 16)
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(b"not a video at all" * 10)
    with pytest.raises(VideoError, match="junk.mp4"):
        read_frames(junk, 16)


def test_frames_at_given_indices(tmp_path):
    n = 8 * (SEEK_GAP + 8)
    frames = synthetic_frames(n, 32, 32)
    video = write_mp4(tmp_path / "long.mp4", frames, gop=10)
    wanted = [2, 3, 70, 71, 200, n - 1]  # neighbours and long jumps (seeks)
    assert_frames(read_frames(video, indices=[200, 2, 3, 71, 70, n - 1]), frames, wanted)  # in video order
    with pytest.raises(VideoError, match=f"long.mp4: has {n} frames; frame index {n} asked for"):
        read_frames(video, indices=[0, n])


def test_bad_frame_folders_name_the_folder(tmp_path):
    with pytest.raises(VideoError, match="scene0: no such frame folder"):
        read_frame_folder(tmp_path / "scene0", 16)
    (tmp_path / "empty").mkdir()
    with pytest.raises(VideoError, match="empty: holds no .png/.jpg/.jpeg frames"):
        read_frame_folder(tmp_path / "empty", 16)
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "000.png").write_bytes(b"not a png")
    with pytest.raises(VideoError, match="000.png: cannot be read as an image"):
        read_frame_folder(tmp_path / "broken", 16)


def test_an_arkitscenes_scan_is_read_as_a_scan(tmp_path):
    """Workers open an ARKitScenes scene folder like a ScanNet one: its colour frames by id, and
    without ids the rule's uniform ones (the same images its reader returns)."""
    from data_gen.scans.scannet import read_scan
    from data_gen.synthetic.scenes import synthesize_scans
    from pipelines.media import FrameRule, load_clip

    (scene,) = synthesize_scans(tmp_path, 1, seed=0, num_frames=12, width=32, height=24, layout="arkitscenes")
    scan = read_scan(scene)
    clip = load_clip("scan", [str(scene)], [0, 5, 11], FrameRule(num_frames=4))
    assert [f.tolist() for f in clip.frames] == [scan.frames.color(i).tolist() for i in (0, 5, 11)]
    assert len(load_clip("scan", [str(scene)], [], FrameRule(num_frames=4)).frames) == 4
