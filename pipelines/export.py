"""Export: our built dataset as Qwen-VL finetune records plus frame files, for the authors' own
trainer (qwen-vl-finetune / Spatial-MLLM's `src/qwenvl`), or any tool reading that format.

    python -m jobs.export_dataset --config jobs/configs/tiny.yaml export.split=train

writes (replacing a previous export as a whole: built beside it, then renamed into place)

    <out>/<split>.jsonl            one record per line (below)
    <out>/frames/<scene>/<frame>.png   each scan frame a record shows, once (PNG: lossless)
    <out>/meta.json                the resolved config, counts, code version

    {"id": "...", "image": ["frames/scene0000_00/000012.png", ...],
     "conversations": [{"from": "human", "value": "<image>...<image>{question, options, post-prompt}"},
                       {"from": "gpt", "value": "{answer}"}],
     "question_type": ..., "problem_type": ..., "ground_truth": ..., "options": [...],
     "dataset": ..., "scene_name": ..., "scan_frames": [frame index, ...]}

Paths are relative to <out> (the trainer's data_path / our source's media_root). The frames are the
record's (`export.frame_sampling`, thinned to `export.num_frames`), one `<image>` tag each as
qwen-vl-finetune expects for an image list; the human turn is worded exactly as SFT words it
(`export.prompt_style`, `export.think_format`), so reading the file back as a `qwen_vl` source
(its images become one video, its tags one `<video>`) gives the same training samples as training
on the dataset itself. The extra keys (question_type, ... scan_frames) are ours: the authors'
loader ignores them; our reader uses them instead of guessing the answer's kind.
"""

from __future__ import annotations

import json
import os
import shutil
from collections import defaultdict
from pathlib import Path

from PIL import Image

from pipelines import media, prompting
from pipelines.config import RunConfig
from pipelines.run_meta import code_version, write_json_atomic
from pipelines.train.data import DataError, read_split

STAGE = "export"


def output_dir(cfg: RunConfig) -> Path:
    ex = cfg.export
    return Path(ex.out_dir).expanduser().resolve() if ex.out_dir else cfg.run_path / "export" / ex.split


def frame_file(scene: str, frame: int) -> str:
    return f"frames/{scene}/{frame:06d}.png"


def export_record(record: dict, frames: list[int], *, style: str, think: bool) -> dict:
    """One QA record as a Qwen-VL finetune record showing `frames` of its scan."""
    question = "<image>" * len(frames) + prompting.user_text(record, think=think, style=style)
    return {
        "id": record["id"],
        "image": [frame_file(record["video"], f) for f in frames],
        "conversations": [
            {"from": "human", "value": question},
            {"from": "gpt", "value": prompting.target_text(record, think=think)},
        ],
        "question_type": record["question_type"],
        "problem_type": record["problem_type"],
        "ground_truth": record["ground_truth"],
        "options": list(record["options"] or []),
        "dataset": record["dataset"],
        "scene_name": record["scene_name"],
        "scan_frames": frames,
    }


def run(cfg: RunConfig, log=print) -> Path:
    """Export run_dir/dataset/<export.split> to `output_dir(cfg)`; returns it. Raises DataError
    (an InputError) naming the record whose frames cannot be read; nothing is left half-written."""
    ex = cfg.export
    table = read_split(cfg.run_path / "dataset", ex.split)
    scans = cfg.scans_path()
    out = output_dir(cfg)
    records = table.to_pylist()
    chosen = [prompting.frame_ids(r, sampling=ex.frame_sampling, num_frames=ex.num_frames) for r in records]
    empty = [r["id"] for r, ids in zip(records, chosen, strict=True) if not ids]
    if empty:
        raise DataError(f"{len(empty)} records list no frames (e.g. {empty[0]}): a dataset built from meta_info "
                        "has none; export needs the scans' frames")  # fmt: skip
    per_scene: dict[str, set[int]] = defaultdict(set)
    for record, ids in zip(records, chosen, strict=True):
        per_scene[record["video"]].update(ids)
    work = out.with_name(f".{out.name}.tmp{os.getpid()}")
    shutil.rmtree(work, ignore_errors=True)
    try:
        for scene, ids in sorted(per_scene.items()):
            (work / "frames" / scene).mkdir(parents=True)
            try:
                frames = media.scan_frames(scans / scene, sorted(ids))
            except (OSError, ValueError, KeyError, IndexError) as e:
                raise DataError(f"{scans / scene}: cannot read frames {sorted(ids)[:5]}... ({e})") from None
            for frame_id, frame in zip(sorted(ids), frames, strict=True):
                Image.fromarray(frame).save(work / frame_file(scene, frame_id))
        lines = [json.dumps(export_record(r, ids, style=ex.prompt_style, think=ex.think_format), ensure_ascii=False)
                 for r, ids in zip(records, chosen, strict=True)]  # fmt: skip
        (work / f"{ex.split}.jsonl").write_text("".join(line + "\n" for line in lines))
        write_json_atomic(work / "meta.json", {
            "stage": STAGE, "config": cfg.model_dump(mode="json"), "code_version": code_version(),
            "records": len(records), "scenes": len(per_scene), "frames": sum(len(v) for v in per_scene.values()),
            "dataset": str(cfg.run_path / "dataset" / ex.split), "scans": str(scans),
        })  # fmt: skip
        if out.exists():
            shutil.rmtree(out)
        out.parent.mkdir(parents=True, exist_ok=True)
        os.replace(work, out)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    log(f"[{STAGE}] {len(records)} records of {ex.split} ({len(per_scene)} scenes, "
        f"{sum(len(v) for v in per_scene.values())} frames) -> {out / (ex.split + '.jsonl')}")  # fmt: skip
    return out
