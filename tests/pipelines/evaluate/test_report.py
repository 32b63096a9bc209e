"""report.json, report.md (ours beside the paper's Table 1), per_task.png and predictions.parquet."""

from __future__ import annotations

import json

import pyarrow.parquet as pq

from pipelines.evaluate import PAPER_TABLE, aggregate
from pipelines.evaluate.report import PREDICTION_SCHEMA, write_report


def predictions() -> list[dict]:
    return [
        {"id": "a", "question_type": "object_counting", "problem_type": "numerical", "question": "How many?",
         "options": [], "ground_truth": "4", "prediction": "<answer>4</answer>", "parsed": "4.0", "score": 1.0},
        {"id": "b", "question_type": "object_rel_direction_hard", "problem_type": "multiple_choice",
         "question": "Where?", "options": ["A. front-left", "B. back-left"], "ground_truth": "A",
         "prediction": "no idea", "parsed": None, "score": 0.0},
    ]  # fmt: skip


def test_report_files(tmp_path):
    preds = predictions()
    result = aggregate(preds)
    paths = write_report(
        tmp_path / "eval", result, preds, {"model": "tiny (random init)", "source": "unit test"}
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

    assert paths["per_task.png"].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    table = pq.read_table(paths["predictions.parquet"])
    assert table.schema.equals(PREDICTION_SCHEMA)
    assert table.to_pylist() == preds
