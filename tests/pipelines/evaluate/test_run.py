"""The evaluation stage: which model it asks and how, a replica answering a video's questions from
one encoding, training checkpoints, and tiny runs end to end (outputs per benchmark, a bad video,
resuming, re-scoring)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import numpy as np
import pyarrow.parquet as pq
import pytest

from pipelines import prompting
from pipelines.config import build_config
from pipelines.evaluate.inputs import EvalInputError, frame_groups, load_items
from pipelines.evaluate.models import load_model, model_source
from pipelines.evaluate.predictor import Predictor, decode_group
from pipelines.evaluate.run import eval_name, run
from tests.pipelines.evaluate.conftest import VSI_ROWS
from tests.wandb_records import artifacts as wandb_artifacts
from tests.wandb_records import history as wandb_history
from tests.wandb_records import runs as wandb_runs

TINY_EVAL = ["eval.max_new_tokens=4", "eval.batch_size=2", "eval.num_frames=4"]


def vsibench_args(vsibench_dir) -> list[str]:
    return ["eval.source=vsibench", f"eval.vsibench_file={vsibench_dir / 'test.json'}", *TINY_EVAL]


def test_model_source_and_prompt_follow_the_trained_stage(tmp_path):
    cfg = build_config(None, [f"run_dir={tmp_path}", "model.preset=small"])
    src = model_source(cfg)
    assert (src.preset_or_path, src.path, src.weights_dirs, src.think, src.style) == ("small", None, (), False,
                                                                                       "spatial_mllm")  # fmt: skip
    for stage, think in (("sft", False), ("grpo", True)):  # sft/grpo.think_format defaults
        (tmp_path / stage / "final").mkdir(parents=True)
        (tmp_path / stage / "final" / "config.json").write_text("{}")
        src = model_source(cfg)
        assert src.preset_or_path == str(tmp_path / stage / "final") and src.label == f"{stage}/final"
        assert (src.think, src.style) == (think, "spatial_mllm")
    trained = build_config(None, [f"run_dir={tmp_path}", "grpo.think_format=false", "grpo.prompt_style=vsi_bench"])
    assert (model_source(trained).think, model_source(trained).style) == (False, "vsi_bench")
    forced = build_config(None, [f"run_dir={tmp_path}", "eval.prompt_style=spatial_mllm"])
    assert (model_source(forced).think, model_source(forced).style) == (False, "spatial_mllm")
    pinned = build_config(None, [f"run_dir={tmp_path}", f"eval.model={tmp_path / 'sft' / 'final'}"])
    assert model_source(pinned).label == "sft/final" and model_source(pinned).think is False
    with pytest.raises(EvalInputError, match="neither a model folder"):
        model_source(build_config(None, [f"run_dir={tmp_path}", f"eval.model={tmp_path}"]))
    with pytest.raises(EvalInputError, match="no such folder"):
        model_source(build_config(None, [f"run_dir={tmp_path}", f"eval.model={tmp_path / 'nope'}"]))


def test_a_replica_answers_every_question_of_a_video_from_one_encoding(vsibench_dir):
    """Decoded once, encoded once: the answers equal asking each question with its own copy of the
    video (the processor's pixels at the sampled frame rate, the model's own generate), and a bad
    video fails only its rows."""
    import torch

    cfg = build_config(None, vsibench_args(vsibench_dir))
    items = load_items(cfg)
    group = frame_groups(items)[1]  # scannet/scene0011_00.mp4: questions 1 and 2
    questions = [{"index": p, **{k: items[p][k] for k in ("question", "options", "problem_type")}} for p in group["items"]]
    row = decode_group({"group": 0, "frames": json.dumps(group["frames"]), "questions": json.dumps(questions)})
    assert row["error"] == "" and row["frames_array"].shape[0] == 4
    assert row["fps"] == pytest.approx(4 / (40 / 24))  # 4 frames of a 40-frame 24 fps video, as training counts
    src = model_source(cfg)
    predictor = Predictor(src, "fp32", max_new_tokens=6, seed=0, batch_size=2)
    encodes, timings = [], []
    encode, positions = predictor.model.encode_videos, predictor.model.prompt_positions
    predictor.model.encode_videos = lambda *a, **k: encodes.append(1) or encode(*a, **k)
    # the shared prompt's positions: the video's timing given once for its questions
    predictor.model.prompt_positions = lambda *a, **k: timings.append(a[3]) or positions(*a, **k)
    keys = ("group", "questions", "error", "frames_array", "fps")
    out = predictor({k: [row[k]] for k in keys})
    assert list(out["index"]) == [1, 2] and list(out["error"]) == ["", ""] and len(encodes) == 1
    # Qwen's temporal RoPE spacing, temporal_patch_size / fps
    assert [t.tolist() for t in timings] == [pytest.approx([2 / row["fps"]])]

    model, processor = load_model(src, dtype="fp32", device="cpu", seed=0)
    for q, answer in zip(questions, out["prediction"], strict=True):
        text = prompting.prompt_text(processor, q, style="spatial_mllm")
        inputs = processor(text=[text], videos=[list(row["frames_array"])], return_tensors="pt", fps=row["fps"])
        with torch.inference_mode():
            ids = model.generate(**inputs, do_sample=False, max_new_tokens=6)
        assert answer == processor.batch_decode(ids[:, inputs["input_ids"].shape[1] :], skip_special_tokens=True)[0]

    bad = decode_group({**row, "frames": json.dumps({**group["frames"], "path": str(vsibench_dir / "x.mp4")})})
    assert bad["frames_array"].shape[0] == 0 and "x.mp4: no such video file" in bad["error"]
    assert np.isnan(bad["fps"])
    failed = predictor({k: [bad[k]] for k in keys})
    assert list(failed["prediction"]) == ["", ""] and all("x.mp4" in e for e in failed["error"])
    assert len(encodes) == 1  # no model work for a video that could not be read


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory):
    """sft/checkpoints/step_00000003 under ZeRO 2 and 3, and the same weights exported as final/."""
    out = tmp_path_factory.mktemp("checkpoints")
    done = subprocess.run([sys.executable, "-m", "tests.pipelines.evaluate.make_checkpoint", str(out)],
                          capture_output=True, text=True, timeout=600)  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    return out


@pytest.mark.parametrize("zero", [2, 3])
def test_a_training_checkpoint_is_evaluated_with_its_weights(checkpoints, zero):
    import modeling

    run_dir = checkpoints / f"zero{zero}"
    step = run_dir / "sft" / "checkpoints" / "step_00000003"
    cfg = build_config(None, [f"run_dir={run_dir}", f"eval.model={step}"])
    src = model_source(cfg)
    assert src.label == "sft/checkpoints/step_00000003" and src.checkpoint == str(step)
    assert eval_name(cfg, src) == "val-sft-step_00000003"
    model, _ = load_model(src, dtype="fp32", device="cpu", seed=0)
    final, _ = modeling.load(run_dir / "final")  # the same engine's save_pretrained export
    got, want = model.state_dict(), final.state_dict()
    assert got.keys() == want.keys() and all(bool((got[k] == want[k]).all()) for k in want)
    with pytest.raises(EvalInputError, match="is a training checkpoint.*eval.model="):
        model_source(build_config(None, [f"run_dir={checkpoints}", f"model.path={step}"]))
    if zero == 2:  # a GRPO checkpoint is built on what GRPO starts from: run_dir/sft/final here
        grpo_step = run_dir / "grpo" / "checkpoints" / "step_00000003"
        shutil.copytree(step, grpo_step)
        shutil.copytree(run_dir / "final", run_dir / "sft" / "final")
        src = model_source(build_config(None, [f"run_dir={run_dir}", f"eval.model={grpo_step}"]))
        assert src.preset_or_path == str(run_dir / "sft" / "final") and src.think is True  # grpo.think_format
        model, _ = load_model(src, dtype="fp32", device="cpu", seed=0)
        assert all(bool((model.state_dict()[k] == want[k]).all()) for k in want)


def test_bad_questions_stop_the_run_before_any_work(vsibench_dir, tmp_path):
    rows = [dict(VSI_ROWS[0]), {**VSI_ROWS[1], "ground_truth": "E"}]
    (tmp_path / "q.json").write_text(json.dumps(rows))
    cfg = build_config(None, [f"run_dir={tmp_path / 'run'}", "eval.source=vsibench",
                              f"eval.vsibench_file={tmp_path / 'q.json'}", f"eval.videos_dir={vsibench_dir}"])  # fmt: skip
    with pytest.raises(EvalInputError, match="question 1 .*ground truth 'E' is not one of the option letters"):
        run(cfg)
    assert not (tmp_path / "run").exists()  # nothing written, nothing generated


@pytest.mark.slow
def test_tiny_evaluations_end_to_end(scene_run, vsibench_dir, ray_session):
    """Our val split, then VSI-Bench in the same run_dir: two folders; an interrupted run resumes;
    another scoring rule re-scores without generating."""
    cfg = build_config(None, [f"run_dir={scene_run}", "eval.limit=3", *TINY_EVAL])
    logs: list[str] = []
    out = run(cfg, log=logs.append)
    assert out == scene_run / "eval" / "val"
    report = json.loads((out / "report.json").read_text())
    assert report["num_rows"] == 3 and report["model"] == "tiny (random init)" and report["scoring"] == "official"
    assert report["prompt_style"] == "spatial_mllm" and report["frames"].startswith("space_aware")
    preds = pq.read_table(out / "predictions.parquet").to_pylist()
    val = pq.read_table(scene_run / "dataset" / "val").slice(0, 3).to_pylist()
    assert [p["id"] for p in preds] == [r["id"] for r in val]  # every question once, in order
    assert all(isinstance(p["prediction"], str) and p["error"] is None for p in preds)
    assert (out / "per_task.png").is_file() and "| **ours** |" in (out / "report.md").read_text()
    assert (out / "meta.json").is_file() and any("micro" in line for line in logs)
    # W&B: an `evaluate` run in the run_dir's group, the report files as references, not copies.
    assert {"group": scene_run.name, "job_type": "evaluate",
            "name": f"{scene_run.name}-evaluate-val"} in wandb_runs(scene_run / "wandb")  # fmt: skip
    (artifact,) = [a for a in wandb_artifacts(scene_run / "wandb") if a["type"] == "evaluation"]
    names = ("report.json", "report.md", "per_task.png", "predictions.parquet")
    assert artifact["entries"] == {n: ((out / n).resolve().as_uri(), (out / n).stat().st_size) for n in names}
    assert artifact["metadata"] == {"micro": report["micro"], "macro": report["macro"], "questions": 3,
                                    "scoring": "official"}  # fmt: skip
    (logged,) = [r for r in wandb_history(scene_run / "wandb") if "eval/table/_type" in r]
    assert (logged["eval/table/nrows"], logged["eval/predictions/nrows"], logged["eval/predictions/ncols"]) == (8, 3, 9)
    assert logged["eval/per_task/_type"] == "image-file"  # ours + 7 paper rows; a row per question, 9 columns
    again: list[str] = []
    run(cfg, log=again.append)
    assert again == [f"[evaluate] already complete: {out}"]

    # VSI-Bench beside it; then interrupted after one answer (a torn line after it) and resumed.
    bench = build_config(None, [f"run_dir={scene_run}", *vsibench_args(vsibench_dir)])
    first = run(bench, log=logs.append)
    assert first == scene_run / "eval" / "vsibench" and (out / "report.json").is_file()
    whole = pq.read_table(first / "predictions.parquet").to_pylist()
    lines = (first / "completions.jsonl").read_text().splitlines()
    assert len(lines) == 4 and sorted(json.loads(line)["id"] for line in lines[1:]) == ["0", "1", "2"]
    kept = next(line for line in lines[1:] if json.loads(line)["id"] == "1")  # question 2 shares its video
    torn = next(line for line in lines[1:] if json.loads(line)["id"] == "0")[:9]
    (first / "completions.jsonl").write_text(f"{lines[0]}\n{kept}\n{torn}")
    (first / "meta.json").unlink()
    resumed: list[str] = []
    run(bench, log=resumed.append)
    assert ", 1 already answered;" in resumed[0] and resumed[1] == (
        "[evaluate] 2 questions on 2 video(s) (2 frame set(s)): each set decoded once")
    assert pq.read_table(first / "predictions.parquet").to_pylist() == whole

    lenient: list[str] = []
    run(build_config(None, [f"run_dir={scene_run}", *vsibench_args(vsibench_dir), "eval.scoring=lenient"]),
        log=lenient.append)  # fmt: skip
    assert ", 3 already answered;" in lenient[0] and len(lenient) == 2  # no generation at all
    assert json.loads((first / "report.json").read_text())["scoring"] == "lenient"
    assert "Scoring: `lenient`" in (first / "report.md").read_text()

    # The authors' protocol (their scorer, timing and decoding) in a folder of its own, named in the report.
    authors = run(build_config(None, [f"run_dir={scene_run}", *vsibench_args(vsibench_dir), "eval.protocol=spatial_mllm",
                                      "eval.name=vsibench-authors", "eval.max_new_tokens=4"]), log=logs.append)  # fmt: skip
    report = json.loads((authors / "report.json").read_text())
    assert (report["protocol"], report["scoring"], report["frame_timing"], report["decoding"]) == (
        "spatial_mllm", "spatial_mllm", "processor_default", "spatial_mllm")
    assert "Protocol: `spatial_mllm`" in (authors / "report.md").read_text()
    assert "Scoring: `spatial_mllm`" in (authors / "report.md").read_text()


@pytest.mark.slow
def test_a_bad_video_fails_only_its_questions(vsibench_dir, tmp_path, ray_session):
    videos = tmp_path / "vsibench"
    shutil.copytree(vsibench_dir, videos)
    bad = videos / "scannet" / "scene0011_00.mp4"
    bad.write_bytes(b"\x00\x00\x00\x18ftypmp42" + b"not a video" * 50)  # an mp4 header, then junk
    args = [f"run_dir={tmp_path / 'run'}", "eval.source=vsibench", f"eval.vsibench_file={videos / 'test.json'}",
            *TINY_EVAL]  # fmt: skip
    with pytest.raises(EvalInputError) as stopped:
        run(build_config(None, [*args, "eval.max_bad_video_fraction=0"]), log=lambda line: None)
    message = str(stopped.value)
    assert message.startswith("1 of 2 videos cannot be read, more than eval.max_bad_video_fraction=0.0 allows")
    assert f"  scannet/scene0011_00.mp4: {bad}: cannot be decoded" in message
    assert not (tmp_path / "run" / "eval" / "vsibench" / "report.json").exists()

    logs: list[str] = []
    out = run(build_config(None, [*args, "eval.max_bad_video_fraction=0.5"]), log=logs.append)
    report = json.loads((out / "report.json").read_text())
    assert report["failed_questions"] == 2 and [f["video"] for f in report["failed_videos"]] == ["scannet/scene0011_00.mp4"]
    preds = {p["id"]: p for p in pq.read_table(out / "predictions.parquet").to_pylist()}
    assert [preds[i]["score"] for i in ("1", "2")] == [0.0, 0.0] and preds["1"]["prediction"] is None
    assert "cannot be decoded" in preds["2"]["error"] and preds["0"]["error"] is None
    assert report["num_rows"] == 3 and report["over_decodable"]["num_rows"] == 1  # as reported vs over decodable
    assert report["micro"] == pytest.approx(100 * preds["0"]["score"] / 3)
    md = (out / "report.md").read_text()
    assert "| **ours (as reported)** |" in md and "| **ours (over decodable)** |" in md
    assert "| scannet/scene0011_00.mp4 | 2 |" in md
    assert any(line.startswith("[evaluate] cannot read scannet/scene0011_00.mp4: its 2 question(s) score 0") for line in logs)
