"""Export: our built dataset as Qwen-VL finetune records plus frame files, for the authors' own
trainer (qwen-vl-finetune / Spatial-MLLM's `src/qwenvl`), or any tool reading that format.

    python -m jobs.export_dataset --config jobs/configs/tiny.yaml export.split=train

writes (replacing a previous export as a whole: built beside it, then renamed into place)

    <out>/<split>.jsonl                   one record per line (below)
    <out>/videos/<scene>/<frames>.mp4     export.media=video (default): each frame set a record
                                          shows, once, as a lossless mp4 at export.video_fps
    <out>/frames/<scene>/<frame>.png      export.media=images: each scan frame a record shows, once
    <out>/meta.json                       the resolved config, counts, `media`, code version

    {"id": "...", "video": "videos/scene0000_00/3f2a....mp4",      (or "image": ["frames/...png", ...])
     "conversations": [{"from": "human", "value": "<video>{question, options, post-prompt}"},
                       {"from": "gpt", "value": "{answer}"}],     (images: one <image> tag each)
     "question_type": ..., "problem_type": ..., "ground_truth": ..., "options": [...],
     "dataset": ..., "scene_name": ..., "scan_frames": [frame index, ...]}

Paths are relative to <out> (the trainer's data_path / our source's media_root). The frames are the
record's (`export.frame_sampling`, thinned to `export.num_frames`). The authors' loader reads a
`video` as one video of exactly these frames (16 frames over 16 / video_fps seconds: its
interval rule asks for fewer and is clamped to 16) timed by its video_frame_fps, and an `image`
list as separate images, each its own block without timing. Our `qwen_vl` reader reads both as
one video (the mp4 timed by its frame rate; an image list with no timing). The human turn is
worded exactly as SFT words it (`export.prompt_style`, `export.think_format`), so reading the file
back gives the same training samples as training on the dataset itself. The extra keys
(question_type, ... scan_frames) are ours: the authors' loader ignores them; our reader uses them
instead of guessing the answer's kind.
"""

from __future__ import annotations

import hashlib
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


def video_file(scene: str, frames: list[int]) -> str:
    """The exported mp4 of one frame set of a scene (records showing the same frames share it)."""
    digest = hashlib.sha256(",".join(map(str, frames)).encode()).hexdigest()[:12]
    return f"videos/{scene}/{digest}.mp4"


def export_record(record: dict, frames: list[int], *, style: str, think: bool, as_video: bool = False) -> dict:
    """One QA record as a Qwen-VL finetune record showing `frames` of its scan: one video of them
    (`as_video`), or one image each."""
    text = prompting.user_text(record, think=think, style=style)
    if as_video:
        question, media_key = "<video>" + text, {"video": video_file(record["video"], frames)}
    else:
        question, media_key = "<image>" * len(frames) + text, {"image": [frame_file(record["video"], f) for f in frames]}
    return {
        "id": record["id"],
        **media_key,
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
    frame_sets: dict[str, set[tuple[int, ...]]] = defaultdict(set)
    for record, ids in zip(records, chosen, strict=True):
        per_scene[record["video"]].update(ids)
        frame_sets[record["video"]].add(tuple(ids))
    as_video = ex.media == "video"
    work = out.with_name(f".{out.name}.tmp{os.getpid()}")
    shutil.rmtree(work, ignore_errors=True)
    try:
        for scene, ids in sorted(per_scene.items()):
            try:
                frames = dict(zip(sorted(ids), media.scan_frames(scans / scene, sorted(ids)), strict=True))
            except (OSError, ValueError, KeyError, IndexError) as e:
                raise DataError(f"{scans / scene}: cannot read frames {sorted(ids)[:5]}... ({e})") from None
            if as_video:  # one mp4 per frame set, frames in the record's order
                for frame_set in sorted(frame_sets[scene]):
                    write_video(work / video_file(scene, list(frame_set)), [frames[i] for i in frame_set], ex.video_fps)
            else:
                (work / "frames" / scene).mkdir(parents=True)
                for frame_id, frame in frames.items():
                    Image.fromarray(frame).save(work / frame_file(scene, frame_id))
        lines = [json.dumps(export_record(r, ids, style=ex.prompt_style, think=ex.think_format, as_video=as_video),
                            ensure_ascii=False) for r, ids in zip(records, chosen, strict=True)]  # fmt: skip
        (work / f"{ex.split}.jsonl").write_text("".join(line + "\n" for line in lines))
        write_json_atomic(work / "meta.json", {
            "stage": STAGE, "config": cfg.model_dump(mode="json"), "code_version": code_version(),
            "records": len(records), "scenes": len(per_scene), "frames": sum(len(v) for v in per_scene.values()),
            "media": ex.media, "videos": sum(len(v) for v in frame_sets.values()) if as_video else 0,
            "video_fps": ex.video_fps if as_video else None,
            "dataset": str(cfg.run_path / "dataset" / ex.split), "scans": str(scans),
        })  # fmt: skip
        if out.exists():
            shutil.rmtree(out)
        out.parent.mkdir(parents=True, exist_ok=True)
        os.replace(work, out)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    written = (f"{sum(len(v) for v in frame_sets.values())} mp4s at {ex.video_fps:g} fps" if as_video
               else f"{sum(len(v) for v in per_scene.values())} frames as PNG")  # fmt: skip
    log(f"[{STAGE}] {len(records)} records of {ex.split} ({len(per_scene)} scenes, {written}) -> "
        f"{out / (ex.split + '.jsonl')}")  # fmt: skip
    return out


def write_video(path: Path, frames: list, fps: float) -> None:
    """`frames` (HxWx3 uint8) as an mp4 that decodes to exactly these pixels: H.264 in RGB at
    constant quality 0 (lossless), `fps` frames per second. Written inside the export's work
    folder, which is renamed into place whole."""
    import fractions

    import av

    path.parent.mkdir(parents=True, exist_ok=True)
    h, w = frames[0].shape[:2]
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264rgb", rate=fractions.Fraction(fps).limit_denominator(1000))
        stream.width, stream.height, stream.pix_fmt = w, h, "rgb24"
        stream.options = {"crf": "0", "preset": "ultrafast"}
        for frame in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
