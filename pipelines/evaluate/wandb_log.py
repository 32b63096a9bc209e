"""The evaluation's W&B run: scores, a per-task table beside the paper's, a predictions table, the
plot, and the report files as an `evaluation` artifact of references (`pipelines/wandb_run.py`).
"""

from __future__ import annotations

from pathlib import Path

from pipelines.evaluate.aggregate import PAPER_TABLE, TASK_LABELS, TASKS

MAX_PREDICTION_ROWS = 1000  # enough to browse failures; the full set is predictions.parquet


def log_eval(
    run_path: Path, config: dict, result: dict, predictions: list[dict], files: dict[str, Path]
) -> None:
    """`files`: the report's files by name (report.json, report.md, per_task.png, predictions.parquet)."""
    import wandb

    from pipelines.wandb_run import artifact_name, log_reference_artifact, start_run

    run = start_run(run_path, "evaluate", config)
    try:
        columns = ["model", *(TASK_LABELS[t] for t in TASKS), "micro", "macro"]
        rows = [["ours", *(result["per_task"].get(t) for t in TASKS), result["micro"], result["macro"]]]
        for name, row in PAPER_TABLE.items():
            avg = {"micro": None, "macro": None, row["average_kind"]: row["average"]}
            rows.append([name, *(row["per_task"][t] for t in TASKS), avg["micro"], avg["macro"]])
        shown = predictions[:MAX_PREDICTION_ROWS]
        pred_cols = ["id", "question_type", "question", "ground_truth", "prediction", "parsed", "score"]
        run.log(
            {
                "eval/table": wandb.Table(columns=columns, data=rows),
                "eval/predictions": wandb.Table(
                    columns=pred_cols, data=[[p.get(c) for c in pred_cols] for p in shown]
                ),
                "eval/per_task": wandb.Image(str(files["per_task.png"])),
            }
        )
        summary = {"eval/micro": result["micro"], "eval/macro": result["macro"]}
        summary.update({f"eval/{task}": value for task, value in result["per_task"].items()})
        run.summary.update(summary)
        meta = {"micro": result["micro"], "macro": result["macro"], "questions": result["num_rows"]}
        log_reference_artifact(run, artifact_name(run_path, "eval"), "evaluation", files, meta)
    finally:
        run.finish()
