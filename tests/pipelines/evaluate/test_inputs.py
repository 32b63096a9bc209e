"""Evaluation items: our dataset split, VSI-Bench's HF file, the authors' v1.0 file; their frames
(scans, mp4s, pre-sampled folders, space-aware indices); questions checked before any work."""

from __future__ import annotations

import json

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from PIL import Image

from data_gen.errors import InputError
from data_gen.qa.frame_selection import uniform_positions
from data_gen.scans.scannet import read_scan
from pipelines.config import build_config
from pipelines.evaluate.inputs import (
    EvalInputError,
    check_questions,
    dataset_items,
    file_items,
    frame_groups,
    frames_label,
    load_frames,
    load_items,
)
from pipelines.train.data import DataError
from tests.pipelines.evaluate.conftest import VSI_ROWS
from tests.pipelines.evaluate.video_fixtures import synthetic_frames

# The three VSI_ROWS questions as the Spatial-MLLM v1.0 eval file writes them
# (evaluate/annotation/eval_vsibench.json: problem, problem_type, options, solution, path, ...).
V1_ROWS = [
    {"problem_id": 11, "problem": "How many chair(s) are in this room?", "data_type": "video",
     "problem_type": "regression", "options": [], "solution": "<answer>4</answer>",
     "path": "./arkitscenes/41069025.mp4", "data_source": "vsibench", "original_question_type": "object_counting"},
    {"problem_id": 12, "problem": "If I am standing by the sofa and facing the tv, is the lamp to the left or the "
     "right of the tv?", "data_type": "video", "problem_type": "multiple choice", "options": ["A. left", "B. right"],
     "solution": "<answer>B</answer>", "path": "./scannet/scene0011_00.mp4", "data_source": "vsibench",
     "original_question_type": "object_rel_direction_easy"},
    {"problem_id": 13, "problem": "What is the size of this room (in square meters)? \nIf multiple rooms are shown, "
     "estimate the size of the combined space.", "data_type": "video", "problem_type": "regression", "options": [],
     "solution": "<answer>21.5</answer>", "path": "./scannet/scene0011_00.mp4", "data_source": "vsibench",
     "original_question_type": "room_size_estimation"},
]  # fmt: skip


def vsibench_cfg(vsibench_dir, *overrides):
    return build_config(None, ["eval.source=vsibench", f"eval.vsibench_file={vsibench_dir / 'test.json'}", *overrides])


def test_dataset_items_read_the_records_frames(scene_run):
    rec = pq.read_table(scene_run / "dataset" / "val").slice(0, 1).to_pylist()[0]
    scan = read_scan(scene_run / "scans" / rec["video"])
    for sampling, column in (("space_aware", "frame_indices"), ("uniform", "uniform_indices")):
        item = dataset_items(scene_run / "dataset", "val", scene_run / "scans", 16, sampling, limit=1)[0]
        assert item["id"] == rec["id"] and item["frames"]["path"] == str(scene_run / "scans" / rec["video"])
        frames = load_frames(item["frames"])
        assert len(frames) == 16
        assert all(np.array_equal(f, scan.frames.color(i)) for f, i in zip(frames, rec[column], strict=True))


def test_fewer_frames_than_the_record_holds(scene_run):
    rec = pq.read_table(scene_run / "dataset" / "val").slice(0, 1).to_pylist()[0]
    scan = read_scan(scene_run / "scans" / rec["video"])
    item = dataset_items(scene_run / "dataset", "val", scene_run / "scans", 4, "space_aware", limit=1)[0]
    want = [rec["frame_indices"][p] for p in uniform_positions(16, 4)]  # an evenly spread subset
    frames = load_frames(item["frames"])
    assert all(np.array_equal(f, scan.frames.color(i)) for f, i in zip(frames, want, strict=True))


def test_dataset_items_read_the_split_as_training_does(scene_run, tmp_path):
    """Through read_split: the same DataError (an InputError) as training, and `limit` reads only
    the shards it needs."""
    scans = scene_run / "scans"
    every = dataset_items(scene_run / "dataset", "val", scans, 16, "uniform")
    assert len(every) == pq.read_metadata(scene_run / "dataset" / "val" / "part-00000.parquet").num_rows > 2
    assert dataset_items(scene_run / "dataset", "val", scans, 16, "uniform", limit=2) == every[:2]
    assert set(every[0]) == {"id", "dataset", "scene_name", "question_type", "problem_type", "question",
                             "options", "ground_truth", "video", "frames"}  # fmt: skip
    with pytest.raises(DataError, match=r"test: no \*.parquet shards \(run `python -m jobs.build_dataset`"):
        dataset_items(scene_run / "dataset", "test", scans, 16, "uniform")
    assert issubclass(DataError, InputError)
    dataset = tmp_path / "dataset"
    (dataset / "val").mkdir(parents=True)
    shard = scene_run / "dataset" / "val" / "part-00000.parquet"
    (dataset / "val" / shard.name).write_bytes(shard.read_bytes())
    (dataset / "val" / "part-00001.parquet").write_bytes(b"not parquet")
    assert dataset_items(dataset, "val", scans, 16, "uniform", limit=1) == every[:1]  # shard 1 never read
    with pytest.raises(DataError, match="cannot read the shards as QA records"):
        dataset_items(dataset, "val", scans, 16, "uniform")


def test_vsibench_file_and_videos(vsibench_dir):
    cfg = vsibench_cfg(vsibench_dir)
    items = load_items(cfg)
    assert [it["id"] for it in items] == ["0", "1", "2"]
    assert [it["problem_type"] for it in items] == ["numerical", "multiple_choice", "numerical"]
    assert items[0]["options"] == [] and items[1]["options"] == ["A. left", "B. right"]
    assert items[1]["video"] == "scannet/scene0011_00.mp4"
    assert items[1]["frames"] == {"kind": "video", "path": str(vsibench_dir / "scannet" / "scene0011_00.mp4"),
                                  "num_frames": 16, "ids": None}  # fmt: skip
    assert frames_label(cfg.eval) == "uniform (16 evenly spaced frames of each video)"
    frames = load_frames(items[0]["frames"])
    want = synthetic_frames(40)
    for f, i in zip(frames, uniform_positions(40, 16), strict=True):
        assert np.abs(f.astype(np.int16) - want[i]).mean() < 4.0


def test_vsibench_parquet_and_jsonl_read_the_same(vsibench_dir, tmp_path):
    rows = [{**r, "options": r["options"] or []} for r in VSI_ROWS]
    pq.write_table(pa.Table.from_pylist(rows), tmp_path / "test.parquet")
    (tmp_path / "test.jsonl").write_text("\n".join(json.dumps(r) for r in VSI_ROWS))
    by_format = [file_items(tmp_path / name, vsibench_dir, 16, limit=2) for name in ("test.parquet", "test.jsonl")]
    assert by_format[0] == by_format[1] == file_items(vsibench_dir / "test.json", vsibench_dir, 16, limit=2)


def test_the_authors_v1_file_reads_as_the_hf_release(vsibench_dir, tmp_path):
    """problem -> question, `<answer>4</answer>` -> 4, `./arkitscenes/41069025.mp4` -> that video
    under videos_dir, regression -> numerical, original_question_type -> question_type."""
    (tmp_path / "eval_vsibench.json").write_text(json.dumps(V1_ROWS))
    cfg = build_config(None, ["eval.source=vsibench", f"eval.vsibench_file={tmp_path / 'eval_vsibench.json'}",
                              f"eval.videos_dir={vsibench_dir}"])  # fmt: skip
    v1 = load_items(cfg)
    hf = load_items(vsibench_cfg(vsibench_dir))
    assert [it["id"] for it in v1] == ["11", "12", "13"]
    assert [{**it, "id": None} for it in v1] == [{**it, "id": None} for it in hf]
    assert v1[1]["ground_truth"] == "B" and v1[2]["ground_truth"] == "21.5"
    forced = build_config(None, [*cfg_overrides(cfg), "eval.file_format=vsi_bench"])
    with pytest.raises(EvalInputError, match=r"row 0 lacks column\(s\) \['id', 'dataset'"):
        load_items(forced)


def cfg_overrides(cfg) -> list[str]:
    ev = cfg.eval
    return ["eval.source=vsibench", f"eval.vsibench_file={ev.vsibench_file}", f"eval.videos_dir={ev.videos_dir}"]


def test_bad_files_name_the_problem(vsibench_dir, tmp_path):
    with pytest.raises(EvalInputError, match="1 video.*missing.*41069025.mp4"):
        file_items(vsibench_dir / "test.json", tmp_path, 16, limit=1)
    (tmp_path / "bad.json").write_text(json.dumps([{"id": 1, "question": "?"}]))
    with pytest.raises(EvalInputError, match=r"bad.json: row 0 is in no known format: VSI-Bench's HF release "
                                             r"\(vsi_bench\) needs .* the Spatial-MLLM v1.0 eval file"):  # fmt: skip
        file_items(tmp_path / "bad.json", vsibench_dir, 16)
    with pytest.raises(EvalInputError, match=r"is a folder: give the question file inside it \(it holds test.json\)"):
        load_items(build_config(None, ["eval.source=vsibench", f"eval.vsibench_file={vsibench_dir}"]))
    with pytest.raises(EvalInputError, match="no such question file"):
        load_items(build_config(None, ["eval.source=vsibench", f"eval.vsibench_file={tmp_path / 'nope.json'}"]))
    bad_type = [{**V1_ROWS[0], "problem_type": "OCR"}]
    (tmp_path / "v1.json").write_text(json.dumps(bad_type))
    with pytest.raises(EvalInputError, match="v1.json: row 0: problem_type 'OCR' is none of"):
        file_items(tmp_path / "v1.json", vsibench_dir, 16)
    with pytest.raises(ValueError, match="vsibench_file"):
        build_config(None, ["eval.source=vsibench"])


def test_ground_truths_and_options_are_checked_before_any_work(vsibench_dir, tmp_path):
    rows = [
        {**VSI_ROWS[0], "id": 0, "ground_truth": "four"},
        {**VSI_ROWS[1], "id": 1, "ground_truth": "C"},
        {**VSI_ROWS[1], "id": 2, "options": ["left", "right"]},
        {**VSI_ROWS[2], "id": 2},
        {**VSI_ROWS[2], "id": 4},
    ]
    (tmp_path / "test.json").write_text(json.dumps(rows))
    with pytest.raises(EvalInputError) as e:
        load_items(build_config(None, ["eval.source=vsibench", f"eval.vsibench_file={tmp_path / 'test.json'}",
                                       f"eval.videos_dir={vsibench_dir}"]))  # fmt: skip
    assert str(e.value).splitlines() == [
        f"{tmp_path / 'test.json'}: 4 bad question(s):",
        "  question 0 (object_counting): numerical ground truth 'four' is not a number",
        "  question 1 (object_rel_direction_easy): ground truth 'C' is not one of the option letters ['A', 'B']",
        "  question 2 (object_rel_direction_easy): options ['left', 'right'] are not written 'A. ...', "
        "'B. ...' with distinct letters",
        "  question 2: id repeated",
    ]
    check_questions(load_items(vsibench_cfg(vsibench_dir)), "fine")  # the fixture's questions pass


def test_presampled_frame_folders(vsibench_dir, tmp_path):
    """The authors' layout: <frames_dir>/<dataset>/<scene_name>/*.png, read in name order."""
    frames = synthetic_frames(20)
    for row in VSI_ROWS:
        folder = tmp_path / row["dataset"] / row["scene_name"]
        folder.mkdir(parents=True, exist_ok=True)
        for i, img in enumerate(frames):
            Image.fromarray(img).save(folder / f"{i:05d}.png")
    cfg = vsibench_cfg(vsibench_dir, f"eval.frames_dir={tmp_path}")
    items = load_items(cfg)
    assert items[1]["frames"]["kind"] == "folder" and items[1]["video"] == "scannet/scene0011_00"
    assert frames_label(cfg.eval).startswith("presampled (image folders under")
    got = load_frames(items[0]["frames"])
    assert [int(np.abs(g.astype(int) - frames[i]).max()) for g, i in zip(got, uniform_positions(20, 16), strict=True)] == [0] * 16
    every = load_frames({**items[0]["frames"], "num_frames": 40})
    assert len(every) == 20 and np.array_equal(every[-1], frames[-1])  # all of them when fewer than asked
    missing = vsibench_cfg(vsibench_dir, f"eval.frames_dir={tmp_path / 'other'}")
    with pytest.raises(EvalInputError, match=r"2 frame folder\(s\) missing under"):
        load_items(missing)


def test_space_aware_indices_for_videos(vsibench_dir, tmp_path):
    cfg = vsibench_cfg(vsibench_dir, "eval.frame_sampling=space_aware")
    with pytest.raises(EvalInputError, match="needs per-video frame indices: run `python -m jobs.sample_frames`"):
        load_items(cfg)
    indices = {"arkitscenes/41069025": [3, 9, 17, 30], "scannet/scene0011_00": [0, 39]}
    (tmp_path / "indices.json").write_text(json.dumps(indices))
    cfg = vsibench_cfg(vsibench_dir, "eval.frame_sampling=space_aware", f"eval.frame_indices_file={tmp_path / 'indices.json'}")
    items = load_items(cfg)
    assert items[0]["frames"]["ids"] == [3, 9, 17, 30] and items[2]["frames"]["ids"] == [0, 39]
    want = synthetic_frames(40)
    for frame, i in zip(load_frames(items[0]["frames"]), [3, 9, 17, 30], strict=True):
        assert np.abs(frame.astype(np.int16) - want[i]).mean() < 4.0
    (tmp_path / "short.json").write_text(json.dumps({"arkitscenes/41069025": [3]}))
    with pytest.raises(EvalInputError, match="lists no frame indices for scannet/scene0011_00"):
        load_items(vsibench_cfg(vsibench_dir, "eval.frame_sampling=space_aware",
                                f"eval.frame_indices_file={tmp_path / 'short.json'}"))  # fmt: skip


def test_one_group_per_video_and_frame_set(vsibench_dir, scene_run):
    items = load_items(vsibench_cfg(vsibench_dir))
    groups = frame_groups(items)
    assert [(g["video"], g["items"]) for g in groups] == [("arkitscenes/41069025.mp4", [0]),
                                                          ("scannet/scene0011_00.mp4", [1, 2])]  # fmt: skip
    ours = dataset_items(scene_run / "dataset", "val", scene_run / "scans", 16, "space_aware")
    sets = {tuple(it["frames"]["ids"]) for it in ours}
    assert len(frame_groups(ours)) == len(sets)  # a scan shown with two frame sets is two groups
