"""The pipeline's control flow and closing summary, with small stage modules (the real stages run
in tests/e2e)."""

from __future__ import annotations

import json

from pipelines.config import build_config
from pipelines.evaluate.aggregate import aggregate
from pipelines.pipeline import STAGES, Stage, run_pipeline, summary

DONE = Stage("first", "tests.pipelines.fake_stages.done", "done", "what it wrote")
STOPPED = Stage("second", "tests.pipelines.fake_stages.stopped", "second", "")
NEVER = Stage("third", "tests.pipelines.fake_stages.never", "third", "")


def test_a_stopped_stage_stops_the_pipeline(tmp_path):
    cfg = build_config(None, [f"run_dir={tmp_path}"])
    logs: list[str] = []
    assert run_pipeline(cfg, log=logs.append, stages=[DONE, STOPPED, NEVER]) is False
    assert (tmp_path / "done").is_dir()
    assert logs[-1] == "[pipeline] stopped after second (stop_at_step); run the same command again to go on"


def test_finished_pipeline_says_where_everything_is(tmp_path):
    cfg = build_config(None, [f"run_dir={tmp_path}"])
    logs: list[str] = []
    assert run_pipeline(cfg, log=logs.append, stages=[DONE]) is True
    assert logs[1].startswith("[pipeline] done in ") and logs[1].endswith(f"outputs under {tmp_path}")
    assert logs[2] == f"  first          {tmp_path / 'done'}/  what it wrote"


def test_summary_ends_with_the_evaluation_table(tmp_path):
    cfg = build_config(None, [f"run_dir={tmp_path}", f"data.scans_dir={tmp_path / 'my_scans'}"])
    result = aggregate([{"question_type": "object_counting", "score": 0.5}])
    (tmp_path / "eval" / "val").mkdir(parents=True)  # run_dir/eval/<benchmark>: our val split
    (tmp_path / "eval" / "val" / "report.json").write_text(json.dumps({**result, "model": "m", "source": "s"}))
    lines = summary(cfg)
    assert lines[len(STAGES) - 1].startswith(f"  evaluate       {tmp_path / 'eval' / 'val'}/  report.md")
    assert lines[0] == f"  synth_scans    skipped: scans from {tmp_path / 'my_scans'}"
    assert lines[1].startswith(f"  build_dataset  {tmp_path / 'dataset'}/")
    assert len(lines) == len(STAGES) + 2 + 11  # stages, blank + title, header + 8 tasks + micro + macro
    assert lines[len(STAGES) + 1] == "[pipeline] evaluation of m on s (percent):"
    assert lines[-2].split() == ["micro", "1", "50.0", "48.4", "30.6", "–"]
