"""The evaluation's W&B run: scores, a per-task table beside the paper's, a predictions table, the plot.

One run per job, grouped by run_dir, files under run_dir/wandb; offline unless WANDB_API_KEY is in
the environment (WANDB_MODE, when set, wins: `disabled` turns W&B off). The key is never logged.
`pipelines/metrics_log.py` logs training steps (and JSON lines); this logs the evaluation's tables
and image, which are not JSON, once.
"""

from __future__ import annotations

import os
from pathlib import Path

from pipelines.evaluate.aggregate import PAPER_TABLE, TASK_LABELS, TASKS

MAX_PREDICTION_ROWS = 1000  # enough to browse failures; the full set is predictions.parquet


def log_eval(run_path: Path, config: dict, result: dict, predictions: list[dict], plot: Path) -> None:
    import wandb

    mode = os.environ.get("WANDB_MODE") or ("online" if os.environ.get("WANDB_API_KEY") else "offline")
    (run_path / "wandb").mkdir(parents=True, exist_ok=True)
    run = wandb.init(
        project=os.environ.get("WANDB_PROJECT", "spatial-mllm"),
        group=run_path.name,  # as pipelines/metrics_log.py groups the training stages
        job_type="evaluate",
        name=f"{run_path.name}-evaluate",
        dir=str(run_path),
        mode=mode,
        config=config,
        reinit="finish_previous",
        settings=wandb.Settings(console="off", silent=True),
    )
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
                "eval/per_task": wandb.Image(str(plot)),
            }
        )
        summary = {"eval/micro": result["micro"], "eval/macro": result["macro"]}
        summary.update({f"eval/{task}": value for task, value in result["per_task"].items()})
        run.summary.update(summary)
    finally:
        run.finish()
