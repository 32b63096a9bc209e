"""The evaluation's outputs under run_dir/eval/<name>, each written atomically (temporary name, then
rename):

- `report.json`: our per-task, per-level, micro and macro scores (percent), counts, the model,
  prompt style, scoring rule, frames and inputs evaluated, unreadable videos (and the scores over
  the readable ones), and the paper's Table 1 rows;
- `report.md`: a markdown table, our row(s) beside the paper's rows, then per-level detail and the
  unreadable videos;
- `per_task.png`: grouped bars per task, ours against the paper's models;
- `predictions.parquet`: one row per question (id, question_type, problem_type, question, options,
  ground_truth, video, prediction, parsed, score, error).
"""

from __future__ import annotations

import os
from pathlib import Path

import pyarrow as pa

from data_gen.build.scene_cache import write_table_atomic
from pipelines.evaluate.aggregate import PAPER_TABLE, TASK_LABELS, TASKS, task_of
from pipelines.run_meta import tmp_name, write_json_atomic, write_text_atomic

PREDICTION_SCHEMA = pa.schema(
    [
        pa.field("id", pa.string()),
        pa.field("question_type", pa.string()),
        pa.field("problem_type", pa.string()),
        pa.field("question", pa.string()),
        pa.field("options", pa.list_(pa.string())),
        pa.field("ground_truth", pa.string()),
        pa.field("video", pa.string()),  # the video (scan, frame folder) its frames come from
        pa.field("prediction", pa.string()),  # the model's whole completion; null when its video failed
        pa.field("parsed", pa.string()),  # the answer read from it; null when none parses
        pa.field("score", pa.float64()),  # 0..1: option letter match, or MRA; 0 when its video failed
        pa.field("error", pa.string()),  # why its video could not be read; null when it could
    ]
)
OURS = "ours"
SCORING_TEXT = {
    "official": "VSI-Bench's rule: the answer's first space-separated token, a trailing '.' stripped; "
    "multiple choice = that token equals the option letter (case ignored), numbers = float() of it, "
    "then mean relative accuracy over thresholds 0.50 ... 0.95 (anything else scores 0).",
    "lenient": "GRPO's reading: the first number anywhere in the answer, or an option letter also "
    "written '(b)' or 'B:', then letter match or mean relative accuracy.",
    "spatial_mllm": "the Spatial-MLLM authors' scorer: the whole answer cleaned (last <answer> span, "
    "whitespace collapsed, trailing '.' stripped, lower case); multiple choice = it equals the cleaned "
    "letter, numbers = float() of it with commas removed, then mean relative accuracy with a strict < "
    "(an answer exactly on a threshold misses it).",
}


def write_report(out: Path, result: dict, predictions: list[dict], info: dict) -> dict[str, Path]:
    """Write the four files into `out`; `result` is `aggregate()`'s, `info` says what was
    evaluated (model, source, ...). Returns the paths by name."""
    out.mkdir(parents=True, exist_ok=True)
    paths = {name: out / name for name in ("report.json", "report.md", "per_task.png", "predictions.parquet")}
    write_predictions(paths["predictions.parquet"], predictions)
    plot_per_task(paths["per_task.png"], result)
    write_text_atomic(paths["report.md"], markdown_report(result, info))
    write_json_atomic(paths["report.json"], {**info, **result, "paper": PAPER_TABLE, "units": "percent"})
    return paths


def write_predictions(path: Path, predictions: list[dict]) -> None:
    table = pa.Table.from_pylist([{k: p.get(k) for k in PREDICTION_SCHEMA.names} for p in predictions],
                                 schema=PREDICTION_SCHEMA)  # fmt: skip
    write_table_atomic(table, path)


def _cell(value: float | None) -> str:
    return "–" if value is None else f"{value:.1f}"


def markdown_report(result: dict, info: dict) -> str:
    """Our row (bold) beside the paper's Table 1 rows; the paper prints one average per model,
    micro or macro (`average_kind`), so the other column is empty for it."""
    head = ["model", *(TASK_LABELS[t] for t in TASKS), "micro", "macro"]
    scoring = info.get("scoring", "official")
    lines = [
        "# VSI-Bench-style evaluation",
        "",
        f"Model: `{info.get('model', '?')}`. Questions: {result['num_rows']} from {info.get('source', '?')}. "
        f"Frames: {info.get('frames', '?')}. Prompt: `{info.get('prompt_style', '?')}`"
        f"{' (think format)' if info.get('think_format') else ''}, {info.get('decoding', 'greedy')} decoding, "
        f"{info.get('max_new_tokens', '?')} new tokens, {info.get('frame_timing', 'sampled')} frame timing. "
        f"Protocol: `{info.get('protocol', 'vsi_bench')}`.",
        "",
        f"Scoring: `{scoring}`: {SCORING_TEXT.get(scoring, scoring)}"
        f"{' The <answer> tag is read first (think format).' if info.get('think_format') else ''} "
        "Scores in percent. Micro = mean over "
        "questions; macro = mean over tasks, the three relative-direction levels first averaged into one. "
        "Paper rows: Spatial-MLLM Table 1 (VSI-Bench, 16 frames).",
        "",
        "| " + " | ".join(head) + " |",
        "|" + "---|" * len(head),
    ]
    decodable = info.get("over_decodable")
    ours_rows = [(f"{OURS} (as reported)" if decodable else OURS, result)]
    if decodable:
        ours_rows.append((f"{OURS} (over decodable)", decodable))
    for name, scores in ours_rows:
        cells = [_cell(scores["per_task"].get(t)) for t in TASKS]
        lines.append(f"| **{name}** | " + " | ".join(f"**{c}**" for c in cells)
                     + f" | **{_cell(scores['micro'])}** | **{_cell(scores['macro'])}** |")  # fmt: skip
    for name, row in PAPER_TABLE.items():
        cells = [_cell(row["per_task"][t]) for t in TASKS]
        avg = {"micro": "–", "macro": "–", row["average_kind"]: _cell(row["average"])}
        lines.append(f"| {name} | " + " | ".join(cells) + f" | {avg['micro']} | {avg['macro']} |")
    lines += ["", "Ours per question type:", "", "| question_type | questions | score |", "|---|---|---|"]
    lines += [f"| {q} | {result['counts'][q]} | {v:.1f} |" for q, v in result["levels"].items()]
    extra = [t for t in result["per_task"] if t not in TASKS]
    if extra:
        lines += ["", f"Tasks outside VSI-Bench (not in the table above): {', '.join(extra)}."]
    lines += camera_motion_lines(result.get("camera_motion"))
    lines += open_ended_lines(info.get("open_ended"))
    failed = info.get("failed_videos") or []
    if failed:
        lines += [
            "",
            f"Unreadable videos: {len(failed)}, {info.get('failed_questions', 0)} questions. They score 0 in "
            f"\"{OURS} (as reported)\" and are left out of \"{OURS} (over decodable)\".",
            "",
            "| video | questions | error |",
            "|---|---|---|",
        ]
        lines += [f"| {f['video']} | {f['questions']} | {f['error']} |" for f in failed]
    return "\n".join(lines) + "\n"


def camera_motion_lines(camera: dict | None) -> list[str]:
    """report.md's section on the camera-motion types (scored apart from VSI-Bench), if any."""
    if not camera:
        return []
    lines = ["", "Camera motion (beyond VSI-Bench, after VLM-3R's VSTI-Bench; not in the micro and macro above):",
             "", "| question_type | questions | score |", "|---|---|---|"]  # fmt: skip
    lines += [f"| {q} | {camera['counts'][q]} | {v:.1f} |" for q, v in camera["per_task"].items()]
    lines.append(f"| **mean** | {camera['num_rows']} | **{camera['mean']:.1f}** |")
    return lines


def open_ended_lines(metrics: dict | None) -> list[str]:
    """report.md's section on open-ended answers (`caption_metrics.open_ended_metrics`), if any."""
    if not metrics:
        return []
    lines = ["", "Open-ended answers (ScanQA / SQA3D style): exact match (normalised: lower case, punctuation and "
             "articles dropped, against any accepted answer) and the caption metrics of pycocoevalcap, x100.", "",
             "| question_type | questions | EM | BLEU-4 | ROUGE-L | METEOR | CIDEr |", "|---|---|---|---|---|---|---|"]
    for name, m in [*metrics["by_type"].items(), ("all", metrics["all"])]:
        cells = [_cell(m[k]) for k in ("exact_match", "bleu_4", "rouge_l", "meteor", "cider")]
        lines.append(f"| {name} | {m['questions']} | " + " | ".join(cells) + " |")
    if metrics.get("meteor_note"):
        lines += ["", metrics["meteor_note"] + "."]
    return lines


TERMINAL_COLUMNS = ("Spatial-MLLM-4B", "Qwen2.5-VL-3B", "GPT-4o")  # the paper's model and two baselines


def text_table(result: dict) -> str:
    """The evaluation for a terminal: a row per task (ours, questions, and the paper's scores for
    TERMINAL_COLUMNS), then micro and macro. report.md has every paper row."""
    head = ["task", "questions", OURS, *TERMINAL_COLUMNS]
    counts: dict[str, int] = {}
    for qtype, n in result["counts"].items():
        task = task_of(qtype)
        counts[task] = counts.get(task, 0) + n
    rows = []
    for task in [*TASKS, *(t for t in result["per_task"] if t not in TASKS)]:
        paper = [_cell(PAPER_TABLE[m]["per_task"].get(task)) for m in TERMINAL_COLUMNS]
        rows.append(
            [
                TASK_LABELS.get(task, task),
                str(counts.get(task, 0)),
                _cell(result["per_task"].get(task)),
                *paper,
            ]
        )
    for kind in ("micro", "macro"):
        paper = [_cell(PAPER_TABLE[m]["average"]) if PAPER_TABLE[m]["average_kind"] == kind else "–"
                 for m in TERMINAL_COLUMNS]  # fmt: skip
        rows.append([kind, str(result["num_rows"]), _cell(result[kind]), *paper])
    camera = result.get("camera_motion")
    if camera:  # scored apart from VSI-Bench; the paper has no such rows
        rows += [[q, str(camera["counts"][q]), _cell(v), *("–" for _ in TERMINAL_COLUMNS)]
                 for q, v in camera["per_task"].items()]  # fmt: skip
        rows.append(["camera motion", str(camera["num_rows"]), _cell(camera["mean"]), *("–" for _ in TERMINAL_COLUMNS)])
    widths = [max(len(r[i]) for r in [head, *rows]) for i in range(len(head))]
    lines = [
        "  ".join(
            c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths, strict=True))
        )
        for r in [head, *rows]
    ]
    return "\n".join(lines) + "\n"


def plot_per_task(path: Path, result: dict) -> None:
    """Grouped bars: for each task (and the macro average), the paper's models and ours (red)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    groups = [*TASKS, "macro"]
    models = [*PAPER_TABLE, OURS]
    width = 0.8 / len(models)
    x = np.arange(len(groups))
    fig, ax = plt.subplots(figsize=(14, 4.5))
    palette = [plt.get_cmap("tab10")(i) for i in (0, 1, 2, 4, 5, 6, 7, 8, 9)]  # tab10 without its red
    for m, name in enumerate(models):
        offset = x - 0.4 + (m + 0.5) * width
        if name == OURS:
            values = [result["per_task"].get(t, np.nan) for t in TASKS] + [
                np.nan if result["macro"] is None else result["macro"]]
            ax.bar(offset, values, width, label=name, color="crimson", edgecolor="black", linewidth=0.8)
            for xi, v in zip(offset, values, strict=True):  # our numbers printed: a 0 bar is invisible
                ax.text(xi, (0 if np.isnan(v) else v) + 1.5, "n/a" if np.isnan(v) else f"{v:.0f}",
                        ha="center", va="bottom", fontsize=7, color="crimson", rotation=90)  # fmt: skip
        else:
            row = PAPER_TABLE[name]
            macro = (
                row["average"] if row["average_kind"] == "macro" else np.mean(list(row["per_task"].values()))
            )
            values = [row["per_task"][t] for t in TASKS] + [macro]
            ax.bar(offset, values, width, label=name, color=palette[m % len(palette)])
    ax.set_xticks(x, [TASK_LABELS.get(g, g) for g in groups])
    ax.set_ylabel("score (%)")
    ax.set_ylim(0, 112)  # room for the printed value above a 100 bar
    ax.set_title(
        "VSI-Bench per task: ours (red, value printed; n/a = no questions) vs the Spatial-MLLM paper's Table 1"
    )
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.0, 1.0))  # outside: never over a bar
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    tmp = tmp_name(path)
    fig.savefig(tmp, format="png", dpi=80, metadata={"Software": None})
    plt.close(fig)
    os.replace(tmp, path)
