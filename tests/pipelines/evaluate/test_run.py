"""The evaluation stage: which model it picks, a replica answering mp4 questions, and a tiny run end to end."""

from __future__ import annotations

import json

import pyarrow.parquet as pq
import pytest

from pipelines.config import build_config
from pipelines.evaluate.inputs import load_items
from pipelines.evaluate.predictor import Predictor, with_frames
from pipelines.evaluate.run import model_source, run, score_predictions
from tests.wandb_records import artifacts as wandb_artifacts
from tests.wandb_records import runs as wandb_runs

TINY_EVAL = ["eval.max_new_tokens=4", "eval.batch_size=2", "eval.num_frames=4"]


def test_model_source_prefers_grpo_then_sft_then_config(tmp_path):
    cfg = build_config(None, [f"run_dir={tmp_path}", "model.preset=small"])
    src = model_source(cfg)
    assert (src.preset_or_path, src.path, src.weights_dir, src.think) == ("small", None, None, False)
    for stage, think in (("sft", False), ("grpo", True)):  # sft/grpo.think_format defaults
        (tmp_path / stage / "final").mkdir(parents=True)
        (tmp_path / stage / "final" / "config.json").write_text("{}")
        src = model_source(cfg)
        assert src.preset_or_path == str(tmp_path / stage / "final") and src.label == f"{stage}/final"
        assert src.think is think
    forced = build_config(None, [f"run_dir={tmp_path}", "eval.think_format=false"])
    assert model_source(forced).think is False


def test_a_replica_answers_mp4_questions_greedily(vsibench_dir):
    cfg = build_config(
        None, ["eval.source=vsibench", f"eval.vsibench_file={vsibench_dir / 'test.json'}", *TINY_EVAL]
    )
    items = load_items(cfg)
    rows = [with_frames({**it, "index": i}) for i, it in enumerate(items)]
    batch = {k: [r[k] for r in rows] for k in rows[0]}
    predictor = Predictor("tiny", None, "fp32", max_new_tokens=4, seed=0, think=True)
    first = predictor(batch)
    assert list(first["index"]) == [0, 1, 2] and all(isinstance(p, str) for p in first["prediction"])
    assert list(predictor(batch)["prediction"]) == list(first["prediction"])  # greedy: deterministic
    scored = score_predictions(items, ["<think>..</think><answer>4</answer>", "B", "about 20 m2"])
    assert [round(r["score"], 2) for r in scored] == [1.0, 1.0, 0.9]
    assert [r["parsed"] for r in scored] == ["4.0", "B", "20.0"]


@pytest.mark.slow
def test_tiny_evaluation_end_to_end(scene_run, ray_session):
    cfg = build_config(None, [f"run_dir={scene_run}", "eval.limit=3", *TINY_EVAL])
    logs: list[str] = []
    out = run(cfg, log=logs.append)
    report = json.loads((out / "report.json").read_text())
    assert report["num_rows"] == 3 and report["model"] == "tiny (random init)"
    assert 0.0 <= report["micro"] <= 100.0 and set(report["per_task"]) <= set(report["levels"]) | {
        "object_rel_direction"
    }
    preds = pq.read_table(out / "predictions.parquet").to_pylist()
    val = pq.read_table(scene_run / "dataset" / "val").slice(0, 3).to_pylist()
    assert [p["id"] for p in preds] == [r["id"] for r in val]  # every question once, in order
    assert all(isinstance(p["prediction"], str) for p in preds)
    assert (out / "per_task.png").is_file() and "| **ours** |" in (out / "report.md").read_text()
    assert (out / "meta.json").is_file() and any("micro" in line for line in logs)
    # W&B: an `evaluate` run in the run_dir's group, the report files as references, not copies.
    assert {
        "group": scene_run.name,
        "job_type": "evaluate",
        "name": f"{scene_run.name}-evaluate",
    } in wandb_runs(scene_run / "wandb")
    (artifact,) = [a for a in wandb_artifacts(scene_run / "wandb") if a["type"] == "evaluation"]
    names = ("report.json", "report.md", "per_task.png", "predictions.parquet")
    assert artifact["entries"] == {n: ((out / n).resolve().as_uri(), (out / n).stat().st_size) for n in names}
    assert artifact["metadata"] == {"micro": report["micro"], "macro": report["macro"], "questions": 3}
    assert not list((scene_run / "wandb").rglob("artifacts/**/report.json"))  # nothing copied into wandb/

    again: list[str] = []
    run(cfg, log=again.append)
    assert again == [f"[evaluate] already complete: {out}"]
