"""The evaluation's W&B run (one per run_dir/eval/<name>): scores, a per-task table beside the
paper's, a predictions table, the plot, and the report files as an `evaluation` artifact of
references (`pipelines/wandb_run.py`).
"""

from __future__ import annotations

from pathlib import Path

from pipelines.evaluate.aggregate import PAPER_TABLE, TASK_LABELS, TASKS

MAX_PREDICTION_ROWS = 1000  # enough to browse failures; the full set is predictions.parquet
PREDICTION_COLUMNS = ["id", "question_type", "video", "question", "ground_truth", "prediction", "parsed", "score",
                      "error"]  # fmt: skip


def log_eval(
    run_path: Path,
    name: str,
    config: dict,
    result: dict,
    predictions: list[dict],
    files: dict[str, Path],
    info: dict,
) -> None:
    """`name`: the evaluation's folder under run_dir/eval; `files`: the report's files by name
    (report.json, report.md, per_task.png, predictions.parquet); `info`: what report.json says was
    evaluated (scoring rule, prompt, frames, unreadable videos, scores over the readable ones)."""
    import wandb

    from pipelines.wandb_run import artifact_name, log_reference_artifact, start_run

    run = start_run(run_path, "evaluate", config, name=f"{run_path.name}-evaluate-{name}")
    try:
        columns = ["model", *(TASK_LABELS[t] for t in TASKS), "micro", "macro"]
        ours = [("ours", result)]
        if info.get("over_decodable"):
            ours = [("ours (as reported)", result), ("ours (over decodable)", info["over_decodable"])]
        rows = [[label, *(r["per_task"].get(t) for t in TASKS), r["micro"], r["macro"]] for label, r in ours]
        for model, row in PAPER_TABLE.items():
            avg = {"micro": None, "macro": None, row["average_kind"]: row["average"]}
            rows.append([model, *(row["per_task"][t] for t in TASKS), avg["micro"], avg["macro"]])
        shown = predictions[:MAX_PREDICTION_ROWS]
        run.log(
            {
                "eval/table": wandb.Table(columns=columns, data=rows),
                "eval/predictions": wandb.Table(
                    columns=PREDICTION_COLUMNS, data=[[p.get(c) for c in PREDICTION_COLUMNS] for p in shown]
                ),
                "eval/per_task": wandb.Image(str(files["per_task.png"])),
            }
        )
        summary = {"eval/micro": result["micro"], "eval/macro": result["macro"],
                   "eval/failed_videos": len(info.get("failed_videos") or []),
                   "eval/failed_questions": info.get("failed_questions", 0)}  # fmt: skip
        summary.update({f"eval/{task}": value for task, value in result["per_task"].items()})
        camera = result.get("camera_motion")
        if camera:  # apart from VSI-Bench's tasks
            summary.update({f"eval/camera_motion/{q}": v for q, v in camera["per_task"].items()})
            summary["eval/camera_motion/mean"] = camera["mean"]
        run.summary.update(summary)
        run.config.update({"eval_scoring": info.get("scoring"), "eval_prompt_style": info.get("prompt_style"),
                           "eval_frames": info.get("frames")}, allow_val_change=True)  # fmt: skip
        meta = {"micro": result["micro"], "macro": result["macro"], "questions": result["num_rows"],
                "scoring": info.get("scoring")}  # fmt: skip
        log_reference_artifact(run, artifact_name(run_path, f"eval-{name}"), "evaluation", files, meta)
    finally:
        run.finish()
