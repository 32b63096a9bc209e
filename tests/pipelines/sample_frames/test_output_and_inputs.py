"""The indices file (resume, cut lines, other settings, the readers) and the video listing."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from data_gen.errors import InputError
from data_gen.synthetic.scenes import generate_scene
from pipelines.config.sample_frames import SampleFramesConfig
from pipelines.formats.frame_indices import IndexFile, read_frame_indices, read_records
from pipelines.sample_frames.inputs import decode_candidates, list_videos
from tests.pipelines.sample_frames.conftest import FRAMES, HEIGHT, SCENES, WIDTH


def test_index_file_resumes_ignores_a_cut_line_and_drops_other_settings(tmp_path):
    path = tmp_path / "frames" / "space_aware.jsonl"
    index = IndexFile(path, "s1")
    index.add("arkitscenes/1.mp4", 100, [0, 50, 99], [0, 99])
    index.add("scannet/scene0011_00.mp4", 40, [0, 13, 26, 39], [13, 26, 39])
    index.close()
    with path.open("a") as f:
        f.write('{"video": "scannet/cut.mp4", "key": "scannet/cu')  # a crash mid-line
    again = IndexFile(path, "s1")
    assert sorted(again.records) == ["arkitscenes/1.mp4", "scannet/scene0011_00.mp4"]
    assert "scannet/cut.mp4" not in again
    again.add("x/y.mov", 5, [0, 1, 2, 3, 4], [1, 3])
    again.close()
    # The file itself, read with plain json (not our reader): the documented lines, a cut one ended
    lines = path.read_text().splitlines()
    assert json.loads(lines[0]) == {"format": 1, "settings": "s1"}
    assert lines[3] == '{"video": "scannet/cut.mp4", "key": "scannet/cu'  # ended, then left alone
    assert [json.loads(line) for line in (lines[1], lines[2], lines[4])] == [
        {"video": "arkitscenes/1.mp4", "key": "arkitscenes/1", "num_frames": 100, "candidates": [0, 50, 99],
         "frame_indices": [0, 99]},
        {"video": "scannet/scene0011_00.mp4", "key": "scannet/scene0011_00", "num_frames": 40,
         "candidates": [0, 13, 26, 39], "frame_indices": [13, 26, 39]},
        {"video": "x/y.mov", "key": "x/y", "num_frames": 5, "candidates": [0, 1, 2, 3, 4], "frame_indices": [1, 3]},
    ]  # fmt: skip
    want = {"arkitscenes/1": [0, 99], "scannet/scene0011_00": [13, 26, 39], "x/y": [1, 3]}
    assert read_frame_indices(path) == want
    assert read_frame_indices(path.parent) == want  # the run_dir/frames folder
    again.write_json(tmp_path / "frame_indices.json")
    assert json.loads((tmp_path / "frame_indices.json").read_text()) == want  # the JSON object evaluation reads
    # ... and such an object written by another tool, by hand (indices in any order), reads the same
    (tmp_path / "by_hand.json").write_text('{"x/y": [3, 1],\n "arkitscenes/1": [99, 0], "scannet/scene0011_00": [13, 26, 39]}')
    assert read_frame_indices(tmp_path / "by_hand.json") == want
    assert [r["video"] for r in read_records(path)] == ["arkitscenes/1.mp4", "scannet/scene0011_00.mp4", "x/y.mov"]

    other = IndexFile(path, "s2")  # other settings: the old indices are not this run's
    assert other.records == {} and other.discarded == 4
    assert read_frame_indices(path) == {}


def test_unreadable_index_files_name_the_file(tmp_path):
    bad = tmp_path / "space_aware.jsonl"
    bad.write_text("hello\n")
    with pytest.raises(InputError, match="space_aware.jsonl"):
        read_frame_indices(bad)
    with pytest.raises(InputError, match="missing.json"):
        read_frame_indices(tmp_path / "missing.json")


def _sf(**kw) -> SampleFramesConfig:
    return SampleFramesConfig(preset="tiny", **kw)


def test_videos_from_a_folder_a_list_and_a_vsibench_file(videos_dir, tmp_path):
    names = [n for n, _ in list_videos(_sf(videos_dir=str(videos_dir)))]
    assert names == ["synthetic/broken.mp4", "synthetic/scene0000_00.mp4", "synthetic/scene0001_00.mp4"]

    listing = tmp_path / "list.txt"
    listing.write_text(f"# two videos\nsynthetic/scene0001_00.mp4\n\n{videos_dir / 'synthetic/scene0000_00.mp4'}\n")
    got = list_videos(_sf(videos_dir=str(videos_dir), video_list=str(listing)))
    assert got == [("synthetic/scene0000_00.mp4", videos_dir / "synthetic/scene0000_00.mp4"),
                   ("synthetic/scene0001_00.mp4", videos_dir / "synthetic/scene0001_00.mp4")]  # fmt: skip

    hf = tmp_path / "vsibench.jsonl"  # VSI-Bench's HF columns; two questions on one video
    rows = [{"id": i, "dataset": "synthetic", "scene_name": "scene0001_00", "question_type": "object_counting",
             "question": "How many chairs are in this room?", "options": [], "ground_truth": "2"} for i in range(2)]  # fmt: skip
    hf.write_text("\n".join(json.dumps(r) for r in rows))
    assert [n for n, _ in list_videos(_sf(videos_dir=str(videos_dir), vsibench_file=str(hf)))] == [
        "synthetic/scene0001_00.mp4"
    ]
    v1 = tmp_path / "eval_vsibench.json"  # the authors' v1.0 file: videos at `path`
    v1.write_text(json.dumps([{"problem": "q", "problem_type": "regression", "solution": "<answer>2</answer>",
                               "path": "./synthetic/scene0000_00.mp4", "original_question_type": "object_counting"}]))  # fmt: skip
    assert [n for n, _ in list_videos(_sf(videos_dir=str(videos_dir), vsibench_file=str(v1)))] == [
        "synthetic/scene0000_00.mp4"
    ]


def test_bad_video_inputs_fail_before_any_work_naming_the_key(videos_dir, tmp_path):
    with pytest.raises(InputError, match="sample_frames.videos_dir is not set"):
        list_videos(_sf())
    with pytest.raises(InputError, match="no such folder"):
        list_videos(_sf(videos_dir=str(tmp_path / "nowhere")))
    with pytest.raises(InputError, match="holds no"):
        list_videos(_sf(videos_dir=str(tmp_path)))
    listing = tmp_path / "list.txt"
    listing.write_text("synthetic/scene0000_00.mp4\nsynthetic/gone.mp4\n")
    with pytest.raises(InputError, match=r"sample_frames.video_list=.*1 video\(s\) missing.*synthetic/gone.mp4"):
        list_videos(_sf(videos_dir=str(videos_dir), video_list=str(listing)))
    listing.write_text(str(tmp_path / "elsewhere.mp4"))
    with pytest.raises(InputError, match="not under sample_frames.videos_dir"):
        list_videos(_sf(videos_dir=str(videos_dir), video_list=str(listing)))
    with pytest.raises(ValueError, match="not both"):
        _sf(video_list="a", vsibench_file="b")


def test_decoding_candidates_and_a_broken_video(videos_dir):
    row = decode_candidates({"video": "v", "path": str(videos_dir / "synthetic/scene0000_00.mp4")}, 24, 56)
    assert row["error"] == "" and row["num_frames"] == 48
    assert json.loads(row["candidates"]) == [0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 25, 27, 29, 31, 33, 35,
                                             37, 39, 41, 43, 45, 47]  # fmt: skip
    assert row["frames"].shape == (24, 42, 56, 3) and row["frames"].dtype == np.uint8  # 160x120 -> 56x42
    # Against the frames the video was made from (the conftest's render), shrunk with PIL: the right
    # frames, in order, up to H.264 and resampling
    scan, _ = generate_scene(SCENES[0], 0, num_frames=FRAMES, width=WIDTH, height=HEIGHT)
    for got, i in zip(row["frames"], json.loads(row["candidates"]), strict=True):
        want = np.asarray(Image.fromarray(scan.frames.color(i)).resize((56, 42), Image.Resampling.BICUBIC))
        assert np.abs(got.astype(int) - want.astype(int)).mean() < 4, i
    broken = decode_candidates({"video": "b", "path": str(videos_dir / "synthetic/broken.mp4")}, 24, 56)
    assert "broken.mp4" in broken["error"] and "cannot be decoded" in broken["error"]
    assert broken["frames"].shape[0] == 0
