"""report.json, report.md (ours beside the paper's Table 1), per_task.png and predictions.parquet."""

from __future__ import annotations

import json

import pyarrow.parquet as pq

from pipelines.evaluate import PAPER_TABLE, aggregate
from pipelines.evaluate.report import PREDICTION_SCHEMA, text_table, write_report


def predictions() -> list[dict]:
    return [
        {"id": "a", "question_type": "object_counting", "problem_type": "numerical", "question": "How many?",
         "options": [], "ground_truth": "4", "video": "arkitscenes/1.mp4", "prediction": "4", "parsed": "4.0",
         "score": 1.0, "error": None},
        {"id": "b", "question_type": "object_rel_direction_hard", "problem_type": "multiple_choice",
         "question": "Where?", "options": ["A. front-left", "B. back-left"], "ground_truth": "A",
         "video": "arkitscenes/1.mp4", "prediction": "no idea", "parsed": "no", "score": 0.0, "error": None},
    ]  # fmt: skip


def test_report_files(tmp_path):
    preds = predictions()
    result = aggregate(preds)
    paths = write_report(
        tmp_path / "eval", result, preds, {"model": "tiny (random init)", "source": "unit test", "scoring": "official",
                                           "prompt_style": "spatial_mllm", "frames": "uniform (16 ...)"}
    )
    assert sorted(p.name for p in (tmp_path / "eval").iterdir()) == sorted(paths)  # no temp files left

    report = json.loads(paths["report.json"].read_text())
    assert report["micro"] == 50.0 and report["macro"] == 50.0 and report["units"] == "percent"
    assert report["per_task"] == {"object_counting": 100.0, "object_rel_direction": 0.0}
    assert report["paper"]["Spatial-MLLM-4B"]["average"] == 48.4 and report["model"] == "tiny (random init)"

    md = paths["report.md"].read_text()
    table = [line for line in md.splitlines() if line.startswith("| ")]
    assert table[0].startswith("| model | count | abs dist |") and table[0].endswith("| micro | macro |")
    assert table[1].startswith("| **ours** | **100.0** | **–** |")
    assert all(any(line.startswith(f"| {name} |") for line in table) for name in PAPER_TABLE)
    assert "| Spatial-MLLM-4B | 65.3 |" in md and md.count("48.4") == 1 and "| 34.0 |" in md
    assert "Scoring: `official`: VSI-Bench's rule" in md and "Prompt: `spatial_mllm`" in md
    assert "Frames: uniform (16 ...)" in md and "over decodable" not in md

    assert paths["per_task.png"].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    table = pq.read_table(paths["predictions.parquet"])
    assert table.schema.equals(PREDICTION_SCHEMA)
    assert table.to_pylist() == preds


def test_terminal_table_rows_are_tasks_with_counts_scores_and_paper_columns():
    rows = [
        {"question_type": "object_counting", "score": 0.5},
        {"question_type": "object_rel_direction_easy", "score": 1.0},
        {"question_type": "object_rel_direction_hard", "score": 0.0},
        {"question_type": "room_size_estimation", "score": 0.25},
    ]
    lines = text_table(aggregate(rows)).splitlines()
    cells = {
        line.split()[0]: line.split()[1:] for line in lines[1:] if not line.startswith(("abs", "obj", "rel"))
    }
    assert lines[0].split() == ["task", "questions", "ours", "Spatial-MLLM-4B", "Qwen2.5-VL-3B", "GPT-4o"]
    assert cells["count"] == ["1", "50.0", "65.3", "24.3", "46.2"]  # paper Table 1 values
    assert cells["room"] == ["size", "1", "25.0", "45.1", "22.6", "38.2"]
    assert cells["route"][:2] == ["0", "–"]  # a task without questions shows no score
    rel_dir = next(line for line in lines if line.startswith("rel dir")).split()
    assert rel_dir[2:4] == ["2", "50.0"]  # two levels merged into one task: mean of 100 and 0
    # micro: (0.5 + 1 + 0 + 0.25) / 4; macro: (50 + 25 + 50) / 3. The paper prints one kind each.
    assert cells["micro"] == ["4", "43.8", "48.4", "30.6", "–"]
    assert cells["macro"] == ["4", "41.7", "–", "–", "34.0"]


def test_unreadable_videos_get_an_as_reported_and_an_over_decodable_row(tmp_path):
    preds = [*predictions(), {**predictions()[0], "id": "c", "video": "scannet/2.mp4", "prediction": None,
                              "parsed": None, "score": 0.0, "error": "scannet/2.mp4: cannot be decoded"}]  # fmt: skip
    result = aggregate(preds)
    decodable = aggregate([p for p in preds if p["error"] is None])
    info = {"model": "m", "source": "s", "scoring": "lenient", "over_decodable": decodable, "failed_questions": 1,
            "failed_videos": [{"video": "scannet/2.mp4", "error": "cannot be decoded", "questions": 1}]}  # fmt: skip
    md = write_report(tmp_path, result, preds, info)["report.md"].read_text()
    # count: as reported (1 + 0) / 2 = 50; over decodable 1 / 1 = 100.
    assert "| **ours (as reported)** | **50.0** |" in md and "| **ours (over decodable)** | **100.0** |" in md
    assert "| scannet/2.mp4 | 1 | cannot be decoded |" in md and "Scoring: `lenient`" in md
    table = pq.read_table(tmp_path / "predictions.parquet").to_pylist()
    assert table[2]["error"] == "scannet/2.mp4: cannot be decoded" and table[2]["prediction"] is None


def test_camera_motion_is_reported_apart(tmp_path):
    preds = [*predictions(),
             {**predictions()[0], "id": "c", "question_type": "camera_displacement", "score": 0.6},
             {**predictions()[1], "id": "d", "question_type": "obj_obj_rel_position", "score": 1.0}]  # fmt: skip
    result = aggregate(preds)
    paths = write_report(tmp_path / "eval", result, preds, {"model": "m", "source": "s", "scoring": "official"})
    report = json.loads(paths["report.json"].read_text())
    assert report["micro"] == 50.0  # the two VSI-Bench rows only
    assert report["camera_motion"]["mean"] == 80.0
    md = paths["report.md"].read_text()
    assert "| camera_displacement | 1 | 60.0 |" in md and "| obj_obj_rel_position | 1 | 100.0 |" in md
    assert "| **mean** | 2 | **80.0** |" in md
    lines = text_table(result).splitlines()
    assert lines[-1].split() == ["camera", "motion", "2", "80.0", "–", "–", "–"]
    # Camera rows alone: the VSI-Bench row has no score, and nothing breaks.
    alone = aggregate(preds[2:])
    paths = write_report(tmp_path / "alone", alone, preds[2:], {"model": "m", "source": "s", "scoring": "official"})
    assert "| **ours** | **–** |" in paths["report.md"].read_text()
