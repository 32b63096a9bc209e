"""The `sample_frames` stage: space-aware frame indices for videos, under run_dir/frames/.

    videos (listed, checked) minus those already in space_aware.jsonl
        ─► Ray Data: map(decode_candidates)        CPU tasks: 128 evenly spaced frames, resized for VGGT
                  ─► map_batches(FrameSampler)     actor pool, one VGGT per actor (one GPU each when
                                                   there are GPUs): one forward per video, then the
                                                   voxel-coverage choice
                  ─► map(write_frame_folder)       only with sample_frames.frames_dir
        ─► space_aware.jsonl (a line per video as it finishes; a re-run skips finished videos)
        ─► frame_indices.json, report.json, meta.json (when every video is done)

A video that cannot be decoded is skipped, counted and named in report.json (a re-run tries it
again); more than sample_frames.max_bad_video_fraction of the videos failing stops the job,
naming them. The indices' format is documented in `pipelines/formats/frame_indices.py`, the frame
folders' in `frame_folders.py`.
"""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path

from pipelines.config import RunConfig
from pipelines.formats.frame_indices import INDEX_FILE, JSON_FILE, IndexFile
from pipelines.run_meta import files_fingerprint, is_complete, write_json_atomic, write_meta
from pipelines.sample_frames.frame_folders import folder_complete, write_frame_folder
from pipelines.sample_frames.inputs import SampleFramesInputError, decode_candidates, list_videos

STAGE = "sample_frames"
OUT_DIR = "frames"
REPORT_FILE = "report.json"  # the last run's counts, failures and timings
# Settings the chosen indices depend on (the rest only say which videos, how fast, or where else to write).
RESULT_KEYS = ("videos_dir", "preset", "image_size", "num_candidates", "num_frames", "conf_threshold",
               "voxel_divisions", "depth_stride", "pad_frames", "frames_per_forward", "precision")  # fmt: skip
PHASES = ("decode", "aggregator", "heads", "selection")


def check_model(cfg: RunConfig) -> None:
    """The model settings, before any work: the 1B size needs its weights, and they must fill the
    preset's VGGT exactly (checked by name and shape, no tensor read)."""
    sf = cfg.sample_frames
    if sf.preset == "vggt-1b" and not sf.weights:
        raise SampleFramesInputError(
            "sample_frames.preset=vggt-1b needs sample_frames.weights (a local VGGT-1B folder or file); "
            "use preset=tiny for a random CPU model"
        )
    if sf.weights:
        from modeling.vggt_model import check_vggt_checkpoint

        try:  # names and shapes only (safetensors headers, memory-mapped .pt): a moment for 5 GB
            check_vggt_checkpoint(sf.preset, Path(sf.weights).expanduser())
        except (FileNotFoundError, ValueError) as e:
            raise SampleFramesInputError(f"sample_frames.weights={sf.weights}: {e}") from None


def settings_key(cfg: RunConfig) -> str:
    """What the indices depend on: the result settings, the weights (by file fingerprint) or the
    seed of a random init."""
    sf = cfg.sample_frames
    settings = {k: getattr(sf, k) for k in RESULT_KEYS} | {"videos_dir": str(Path(sf.videos_dir).expanduser().resolve())}
    weights = files_fingerprint(Path(sf.weights).expanduser().resolve()) if sf.weights else f"random-{cfg.seed}"
    return hashlib.sha256(json.dumps([settings, weights], sort_keys=True).encode()).hexdigest()[:16]


def run(cfg: RunConfig, log=print) -> Path:
    """Sample every listed video that run_dir/frames/space_aware.jsonl does not hold yet."""
    sf = cfg.sample_frames
    check_model(cfg)
    videos = list_videos(sf)  # checks videos_dir is set and every video exists
    out = cfg.run_path / OUT_DIR
    settings = settings_key(cfg)
    frames_dir = Path(sf.frames_dir).expanduser().resolve() if sf.frames_dir else None
    complete = hashlib.sha256(json.dumps([settings, [n for n, _ in videos], str(frames_dir)]).encode()).hexdigest()[:16]
    if is_complete(out, complete):
        log(f"[{STAGE}] already complete: {out}")
        return out
    index = IndexFile(out / INDEX_FILE, settings)
    if index.discarded:
        log(f"[{STAGE}] {index.discarded} videos sampled under other settings are redone")
    todo = [(n, p) for n, p in videos if n not in index]
    folders = [] if frames_dir is None else [
        index.records[n] | {"path": str(p)} for n, p in videos if n in index and not folder_complete(frames_dir, index.records[n])
    ]  # fmt: skip
    log(f"[{STAGE}] {len(videos)} videos: {len(videos) - len(todo)} done before, {len(todo)} to sample"
        + (f", {len(folders)} frame folders to write" if folders else ""))  # fmt: skip
    start = time.perf_counter()
    failed: dict[str, str] = {}
    timings: list[dict] = []
    if todo or folders:
        from pipelines.ray_env import ensure_ray

        ensure_ray(cfg.log_level)
        try:
            failed = _sample(cfg, todo, index, frames_dir, len(videos), timings)
            failed |= _write_folders(cfg, folders, frames_dir)
        finally:
            index.close()
    index.write_json(out / JSON_FILE)
    report = _report(videos, todo, failed, timings, time.perf_counter() - start)
    write_json_atomic(out / REPORT_FILE, report)
    for video, error in failed.items():
        log(f"[{STAGE}] skipped {video}: {error}")
    if len(failed) > sf.max_bad_video_fraction * len(videos):
        raise SampleFramesInputError(_too_many(failed, len(videos), sf.max_bad_video_fraction, out))
    if not failed:
        inputs = {"videos_dir": str(sf.videos_dir), "videos": str(len(videos)), "weights": str(sf.weights)}
        write_meta(out, STAGE, complete, cfg.model_dump(mode="json"), inputs)
    mean = report["seconds_per_video"]
    log(f"[{STAGE}] {report['sampled']} sampled, {len(failed)} skipped -> {out / INDEX_FILE}"
        + ("; per video: " + ", ".join(f"{k} {mean[k]:.2f} s" for k in PHASES) if timings else ""))  # fmt: skip
    return out


def _sample(cfg: RunConfig, todo, index: IndexFile, frames_dir: Path | None, num_videos: int,
            timings: list) -> dict[str, str]:  # fmt: skip
    """Run the Ray Data pipeline over `todo`, adding each finished video to `index`. Returns the
    videos that failed ({video: error}), stopping early once more than the allowed share of all
    `num_videos` failed (the caller then stops the job, naming them)."""
    import ray
    from tqdm import tqdm

    from pipelines.ray_env import show_dataset_progress
    from pipelines.sample_frames.sampler import FrameSampler

    if not todo:
        return {}
    sf = cfg.sample_frames
    gpus = 1 if ray.cluster_resources().get("GPU", 0) >= 1 else 0
    ds = ray.data.from_items([{"video": n, "path": str(p)} for n, p in todo])
    ds = ds.map(decode_candidates, fn_kwargs={"num_candidates": sf.num_candidates, "image_size": sf.image_size})
    ds = ds.map_batches(
        FrameSampler,
        fn_constructor_kwargs={"sf": sf.model_dump(mode="json"), "seed": cfg.seed},
        batch_size=1,  # one video's candidates per forward
        compute=ray.data.ActorPoolStrategy(size=sf.num_actors),
        num_gpus=gpus,
        num_cpus=1,
        batch_format="numpy",
    )
    if frames_dir is not None:
        ds = ds.map(write_frame_folder, fn_kwargs={"frames_dir": str(frames_dir)})
    show_dataset_progress(ds, cfg.log_level)  # the bar below is the progress
    failed: dict[str, str] = {}
    for row in tqdm(ds.iter_rows(), total=len(todo), desc=f"[{STAGE}] videos", unit="video"):
        video = str(row["video"])
        if row["error"]:
            failed[video] = str(row["error"])
            if len(failed) > sf.max_bad_video_fraction * num_videos:
                break  # the caller reports, naming them; finished videos are kept
            continue
        index.add(video, int(row["num_frames"]), json.loads(row["candidates"]), json.loads(row["frame_indices"]))
        timings.append(json.loads(row["timings"]))
    return failed


def _write_folders(cfg: RunConfig, records: list[dict], frames_dir: Path | None) -> dict[str, str]:
    """Frame folders of videos sampled by an earlier run (frames_dir set later, or a folder lost)."""
    import ray

    if not records or frames_dir is None:
        return {}
    rows = [{"video": r["video"], "path": r["path"], "frame_indices": json.dumps(r["frame_indices"]), "error": ""}
            for r in records]  # fmt: skip
    ds = ray.data.from_items(rows).map(write_frame_folder, fn_kwargs={"frames_dir": str(frames_dir)})
    return {str(r["video"]): str(r["error"]) for r in ds.iter_rows() if r["error"]}


def _report(videos, todo, failed: dict[str, str], timings: list[dict], elapsed: float) -> dict:
    mean = {k: (sum(t[k] for t in timings) / len(timings) if timings else 0.0) for k in PHASES}
    return {
        "videos": len(videos),
        "done_before": len(videos) - len(todo),
        "sampled": len(timings),
        "failed": failed,
        "seconds_per_video": mean,
        "elapsed_s": elapsed,
    }


def _too_many(failed: dict[str, str], num_videos: int, fraction: float, out: Path) -> str:
    listing = "\n".join(f"  {video}: {error}" for video, error in list(failed.items())[:20])
    if len(failed) > 20:
        listing += f"\n  ... and {len(failed) - 20} more (all in {out / REPORT_FILE})"
    return (
        f"{len(failed)} of {num_videos} videos failed, more than sample_frames.max_bad_video_fraction={fraction} "
        f"allows; stopped:\n{listing}\nVideos finished so far are kept in {out / INDEX_FILE} (running again "
        "resumes there). Fix or remove those videos, or raise sample_frames.max_bad_video_fraction."
    )
