"""Open-ended answers in evaluation: ScanQA / SQA3D / Qwen-VL records read as training reads them
(eval.source=sources), exact match against any accepted answer, and the caption metrics of
pycocoevalcap (BLEU-4, ROUGE-L, METEOR when Java is there, CIDEr) in the report."""

from __future__ import annotations

import json

import pytest

from pipelines.config import build_config
from pipelines.evaluate.caption_metrics import open_ended_metrics
from pipelines.evaluate.inputs import load_items
from pipelines.evaluate.report import markdown_report
from pipelines.evaluate.run import run, score_predictions
from tests.pipelines.mixture_fixtures import human_gpt, write_scanqa, write_sqa3d


def rows(*pairs: tuple[str, list[str]], qtype: str = "scanqa") -> list[dict]:
    return [{"id": str(i), "question_type": qtype, "problem_type": "open_ended", "prediction": p, "answers": a}
            for i, (p, a) in enumerate(pairs)]  # fmt: skip


def test_exact_match_and_caption_metrics_on_hand_made_answers():
    same = rows(("the brown wooden chair", ["brown wooden chair near wall", "the brown wooden chair"]),
                ("on the left side of the table", ["on the left side of the table"]))  # fmt: skip
    m = open_ended_metrics(same, meteor=False)["all"]
    assert m["questions"] == 2 and m["exact_match"] == 100.0  # "the" is dropped before comparing
    assert m["bleu_4"] == pytest.approx(100.0, abs=1e-3) and m["rouge_l"] == pytest.approx(100.0)
    disjoint = open_ended_metrics(rows(("red lamp", ["blue sofa"]), ("", ["wooden door frame"])), meteor=False)["all"]
    assert disjoint["exact_match"] == 0.0 and disjoint["rouge_l"] == 0.0 and disjoint["cider"] == 0.0
    assert disjoint["bleu_4"] < 1e-3
    # Case and punctuation do not count; another accepted answer counts; a longer answer does not.
    em = open_ended_metrics(rows(("Chair.", ["chair"]), ("table", ["desk", "table"]), ("a chair by the bed", ["chair"])),
                            meteor=False)  # fmt: skip
    assert em["all"]["exact_match"] == pytest.approx(200 / 3)


@pytest.mark.skipif(not __import__("shutil").which("java"), reason="METEOR needs Java")
def test_meteor_runs_on_java_and_is_reported_missing_without_it(monkeypatch):
    same = rows(("brown wooden chair near the wall", ["brown wooden chair near the wall"]))
    with_java = open_ended_metrics(same)
    assert with_java["meteor_note"] is None and with_java["all"]["meteor"] > 90.0
    monkeypatch.setenv("PATH", "")  # a machine without Java: the other metrics still come
    without = open_ended_metrics(same)
    assert without["all"]["meteor"] is None and "METEOR needs Java" in without["meteor_note"]
    assert without["all"]["rouge_l"] == pytest.approx(100.0)
    report = markdown_report({"per_task": {}, "micro": 0.0, "macro": 0.0, "levels": {}, "counts": {}, "num_rows": 1},
                             {"open_ended": without})  # fmt: skip
    assert "| scanqa | 1 | 100.0 | 100.0 | 100.0 | – | 0.0 |" in report  # METEOR: –; CIDEr: 0 for one question
    assert "METEOR needs Java (no `java` on PATH): not computed." in report


@pytest.fixture
def source_files(scene_run, tmp_path):
    scanqa = write_scanqa(tmp_path / "ScanQA_v1.0_val.json", ["scene0000_00"], per_scene=2)
    sqa3d = write_sqa3d(tmp_path / "sqa3d", ["scene0000_00"], split="val", per_scene=1)
    return scanqa, sqa3d


def sources_cfg(run_dir, scans, scanqa, sqa3d, *more: str):
    tree = {"run_dir": str(run_dir), "data": {"scans_dir": str(scans)}, "eval": {"source": "sources", "num_frames": 4, "sources": [
        {"name": "scanqa", "format": "scanqa", "annotation": str(scanqa)},
        {"name": "sqa3d", "format": "sqa3d", "annotation": str(sqa3d)}]}}  # fmt: skip
    return build_config(json.dumps(tree), list(more))


def test_items_from_scanqa_and_sqa3d_are_scored_by_exact_match(scene_run, source_files):
    items = load_items(sources_cfg(scene_run, scene_run / "scans", *source_files))
    assert [it["id"] for it in items] == ["scanqa/train-scene0000_00-0", "scanqa/train-scene0000_00-1", "sqa3d/220600000"]
    assert items[0]["answers"] == ["brown wooden chair", "chair"] and items[0]["frames"]["kind"] == "scan"
    assert len(items[0]["frames"]["ids"]) == 4  # 4 of the scan's frames, evenly spread
    texts = {items[0]["id"]: "Chair", items[1]["id"]: "left of the table", items[2]["id"]: "table."}
    scored = score_predictions(items, texts, {}, rule="official", answer_tag=False)
    assert [r["score"] for r in scored] == [1.0, 0.0, 1.0]
    metrics = open_ended_metrics(scored, meteor=False)
    assert sorted(metrics["by_type"]) == ["scanqa", "sqa3d"] and metrics["all"]["exact_match"] == pytest.approx(200 / 3)


@pytest.mark.slow
def test_evaluation_reports_open_ended_metrics(scene_run, source_files, vsibench_dir, tmp_path, ray_session):
    qwen = tmp_path / "qwen.jsonl"
    qwen.write_text(json.dumps({"video": "scannet/scene0011_00.mp4", "conversations": human_gpt(
        "<video>\nWhat moves?", "a square", "Where to?", "right")}) + "\n")  # fmt: skip
    # A run_dir of its own (its W&B run apart from the other evaluations'), the scans of scene_run.
    cfg = sources_cfg(tmp_path / "run", scene_run / "scans", *source_files, "eval.max_new_tokens=4")
    cfg.eval.sources = [*cfg.eval.sources, {"name": "qwen", "format": "qwen_vl", "annotation": str(qwen),
                                            "media_root": str(vsibench_dir)}]  # fmt: skip
    logs: list[str] = []
    out = run(cfg, log=logs.append)
    assert out == tmp_path / "run" / "eval" / "scanqa+sqa3d+qwen"
    report = json.loads((out / "report.json").read_text())
    assert report["num_rows"] == 4 and report["failed_questions"] == 0
    every = report["open_ended"]["all"]
    assert every["questions"] == 4 and set(every) == {"questions", "exact_match", "bleu_4", "rouge_l", "meteor", "cider"}
    assert sorted(report["open_ended"]["by_type"]) == ["other", "scanqa", "sqa3d"]  # the Qwen-VL record asks its first question
    assert any(line.startswith("[evaluate] open-ended (4 questions): exact match ") for line in logs)
    assert "| question_type | questions | EM | BLEU-4 | ROUGE-L | METEOR | CIDEr |" in (out / "report.md").read_text()
