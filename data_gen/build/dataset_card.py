"""What a person reads about a built dataset: dataset_card.json, a HF-style README.md, stats.png
(answer distributions per question type: values, or the answer letters) and rejects.jsonl. The
card counts records per type, objects per category over the built scenes, and the answer letters
of every multiple-choice type (the build balances them)."""

from __future__ import annotations

import hashlib
import json
import sys
from collections import Counter, defaultdict
from importlib import metadata
from pathlib import Path

import pyarrow.parquet as pq

from data_gen.build.config import MIX_GROUPS
from data_gen.build.rebalance import GROUP_OF
from data_gen.schema import CAMERA_MOTION_TYPES

PACKAGES = ("numpy", "pyarrow", "pillow", "scipy", "ray", "pydantic")
NOT_GENERATED: dict[str, str] = {}  # question types the build cannot make, and why


def _versions() -> dict[str, str]:
    out = {}
    for name in PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "not installed"
    return out


def _read_split(folder: Path) -> list[dict]:
    rows = []
    for shard in sorted(folder.glob("*.parquet")):
        columns = ["question_type", "problem_type", "ground_truth", "options"]
        rows.extend(pq.read_table(shard, columns=columns).to_pylist())
    return rows


def _plot(stats: dict[str, list[dict]], path: Path) -> None:
    # The object-oriented API (no pyplot), fixed margins instead of tight_layout's extra draw, one
    # filled step artist per histogram and titles at a fixed height: the same picture in about half
    # the time (matplotlib's layout work, not the data, is most of a build's card time).
    import numpy as np
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    by_type: dict[str, list[dict]] = defaultdict(list)
    for rows in stats.values():
        for r in rows:
            by_type[r["question_type"]].append(r)
    types = sorted(by_type) or ["(no records)"]
    cols = 3
    nrows = (len(types) + cols - 1) // cols
    width, height = 4.2 * cols, 3.0 * nrows
    fig = Figure(figsize=(width, height))
    FigureCanvasAgg(fig)
    # Margins in inches: tick labels left, axis label below, title above each panel.
    fig.subplots_adjust(left=0.45 / width, right=1 - 0.1 / width, bottom=0.5 / height, top=1 - 0.3 / height,
                        wspace=0.22, hspace=0.5)  # fmt: skip
    axes = fig.subplots(nrows, cols, squeeze=False)
    for ax, qtype in zip(axes.flat, types, strict=False):
        rows = by_type.get(qtype, [])
        if rows and rows[0]["problem_type"] == "numerical":
            counts, edges = np.histogram([float(r["ground_truth"]) for r in rows], bins=20)
            ax.stairs(counts, edges, fill=True, color="#4878a8")
            ax.set_xlabel("answer")
        elif rows:
            letters = Counter(r["ground_truth"] for r in rows)
            keys = [chr(ord("A") + k) for k in range(max(len(r["options"]) for r in rows))]
            ax.bar(keys, [letters.get(k, 0) for k in keys], color="#e0884b")
            ax.set_xlabel("answer letter")
        ax.set_title(f"{qtype} (n={len(rows)})", fontsize=9, y=1.0)
    for ax in list(axes.flat)[len(types):]:
        ax.axis("off")
    fig.savefig(path, dpi=80, metadata={"Software": None})


def _camera_motion_lines(types: list[str]) -> list[str]:
    """The camera-motion types present: their templates (ours: VSTI-Bench's are not published) and
    how each answer is computed (the generators' docstrings)."""
    from data_gen.qa.questions import GENERATORS

    present = [t for t in CAMERA_MOTION_TYPES if t in types]
    if not present:
        return []
    lines = ["", "## Camera-motion questions (beyond VSI-Bench)", "",
             "After VLM-3R's VSTI-Bench, with our own templates. Each record shows exactly its frames (never "
             "thinned), which its question numbers from 1. Templates and rules:", ""]  # fmt: skip
    for t in present:
        module = sys.modules[GENERATORS[t].__module__]
        rule = " ".join((module.__doc__ or "").split())
        lines.append(f"- `{t}`: `{module.TEMPLATE}`. {rule}".replace("\n", "\\n"))
    return lines


def _rule_cost_lines(costs: dict[str, dict[str, int]]) -> list[str]:
    """What each rule cost over the built scenes: every candidate of a type (caps lifted), how many
    became questions and how many each rule rejected (the rule's config key under `qa`)."""
    if not costs:
        return []
    lines = ["", "## What each rule rejected (all candidates of the built scenes, before caps)", "",
             "| question_type | candidates | passed every rule | rejected by |", "|---|---|---|---|"]  # fmt: skip
    for qtype, c in costs.items():
        rules = ", ".join(f"`{rule}` {n}" for rule, n in c.items() if rule not in ("candidates", "asked")) or "-"
        lines.append(f"| {qtype} | {c['candidates']} | {c['asked']} | {rules} |")
    return lines


def _readme(card: dict) -> str:
    lines = [
        "---",
        "configs:",
        "- config_name: default",
        "  data_files:",
        "  - split: train",
        "    path: train/*.parquet",
        "  - split: validation",
        "    path: val/*.parquet",
        "task_categories:",
        "- visual-question-answering",
        "---",
        "",
        "# Spatial-MLLM-style spatial QA",
        "",
        "Question-answer pairs in VSI-Bench's question types, generated from ScanNet-style scans by",
        "`python -m jobs.build_dataset` (Spatial-MLLM-120k recipe: metadata -> templates -> mix).",
        "Each record names its scene folder (`video`) and 16 frames chosen by space-aware sampling",
        "(`frame_indices`) plus as many evenly spaced ones (`uniform_indices`).",
        "",
        "## Counts",
        "",
        "| question_type | " + " | ".join(card["counts"]) + " |",
        "|---|" + "---|" * len(card["counts"]),
    ]
    types = sorted({t for split in card["counts"].values() for t in split["by_type"]})
    for t in types:
        lines.append(f"| {t} | " + " | ".join(str(s["by_type"].get(t, 0)) for s in card["counts"].values()) + " |")
    lines.append("| **total** | " + " | ".join(str(s["total"]) for s in card["counts"].values()) + " |")
    lines += ["", "## Answer letters (multiple choice)", "", "| question_type | " + " | ".join(card["counts"]) + " |",
              "|---|" + "---|" * len(card["counts"])]  # fmt: skip
    for t in sorted({t for split in card["counts"].values() for t in split["answer_letters"]}):
        cells = [", ".join(f"{k} {v}" for k, v in s["answer_letters"].get(t, {}).items()) for s in card["counts"].values()]
        lines.append(f"| {t} | " + " | ".join(cells) + " |")
    lines += _rule_cost_lines(card["rule_costs"])
    lines += ["", "## Objects per category (instances, in how many scenes)", ""]
    for split, cats in card["categories"].items():
        lines.append(f"- {split}: " + ", ".join(f"{c} {v['objects']} ({v['scenes']})" for c, v in cats.items()))
    lines += [
        "",
        f"Scenes: {card['scenes']['train']} train, {card['scenes']['val']} val (split by scene), "
        f"{len(card['rejects'])} rejected (see `rejects.jsonl`).",
        "",
        "`meta_info.json` holds each built scene's annotations in VSI-Bench's meta_info format (room size, "
        "object counts, oriented boxes); `python -m jobs.build_dataset data.meta_info=<file>` builds from such a file.",
        "",
        *(["Not generated: " + "; ".join(f"`{k}` ({v})" for k, v in NOT_GENERATED.items()) + "."] if NOT_GENERATED else []),
        *_camera_motion_lines(types),
        "",
        "## Load",
        "",
        "```python",
        "import datasets",
        'ds = datasets.load_dataset("parquet", data_dir="<run_dir>/dataset")',
        "```",
        "",
        f"Config hash `{card['config_hash']}`; the full config is in `dataset_card.json`.",
        "",
    ]
    return "\n".join(lines)


def answer_letters(rows: list[dict]) -> dict[str, dict[str, int]]:
    """question type -> answer letter -> records, for the multiple-choice types."""
    out: dict[str, Counter] = defaultdict(Counter)
    for r in rows:
        if r["problem_type"] == "multiple_choice":
            out[r["question_type"]][r["ground_truth"]] += 1
    return {t: dict(sorted(c.items())) for t, c in sorted(out.items())}


def category_counts(scenes: list, split_of: dict[str, str]) -> dict[str, dict[str, dict[str, int]]]:
    """split -> category -> {"objects": instances, "scenes": scenes holding one}, over built scenes."""
    out: dict[str, dict[str, dict[str, int]]] = {}
    for meta in scenes:
        per_split = out.setdefault(split_of.get(meta.scene_name, "unused"), {})
        for category, n in meta.counts.items():
            entry = per_split.setdefault(category, {"objects": 0, "scenes": 0})
            entry["objects"] += n
            entry["scenes"] += 1
    return {split: dict(sorted(c.items())) for split, c in sorted(out.items())}


def write_card(
    folder: Path, *, results: list[dict], split_of: dict[str, str], mix_report: dict, config: dict, scans_dir: Path,
    scenes: list | None = None, rule_costs: dict | None = None,
) -> dict:
    """`scenes`: the built scenes' SceneMetadata (objects per category); `rule_costs`: per question
    type, the candidates each rule rejected over the built scenes (`qa.rule_costs.rule_costs`)."""
    stats = {split: _read_split(folder / split) for split in ("train", "val")}
    counts = {}
    for split, rows in stats.items():
        by_type = Counter(r["question_type"] for r in rows)
        by_group = Counter(GROUP_OF.get(r["question_type"], "other") for r in rows)
        total = len(rows)
        counts[split] = {
            "total": total,
            "by_type": dict(sorted(by_type.items())),
            "mix_percent": {g: round(100 * by_group[g] / total, 2) if total else 0.0 for g in MIX_GROUPS},
            "answer_letters": answer_letters(rows),
        }
    rejects = [{"scene": r["scene"], "reason": r["reason"]} for r in results if r["status"] != "ok"]
    config_text = json.dumps(config, sort_keys=True)
    card = {
        "counts": counts,
        "scenes": {split: sum(1 for s in split_of.values() if s == split) for split in ("train", "val")},
        "split_of_scene": dict(sorted(split_of.items())),
        "rejects": rejects,
        "categories": category_counts(scenes or [], split_of),
        "rule_costs": rule_costs or {},
        "mix": mix_report,
        "not_generated": NOT_GENERATED,
        "config": config,
        "config_hash": hashlib.sha256(config_text.encode()).hexdigest()[:16],
        "scans_dir": str(scans_dir),
        "package_versions": _versions(),
    }
    (folder / "dataset_card.json").write_text(json.dumps(card, indent=2, sort_keys=True) + "\n")
    (folder / "rejects.jsonl").write_text("".join(json.dumps(r, sort_keys=True) + "\n" for r in rejects))
    (folder / "README.md").write_text(_readme(card))
    _plot(stats, folder / "stats.png")
    return card
