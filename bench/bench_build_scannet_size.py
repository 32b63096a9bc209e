"""The build at ScanNet size. Every figure is a ratio against a baseline measured in this run.

    python bench/bench_build_scannet_size.py [--scenes 2] [--frames 1600] [--work runs/bench_scannet_size]

Scenes: `jobs/configs/scannet_size.yaml`'s (1296x968 colour JPEG, 640x480 depth, --frames frames,
a mesh of ~10^5 vertices), written once under --work in the export layout and converted to `.sens`,
then reused by later runs (delete --work to remake them; runs/ is not committed).

1. per scene, split into read (`read_scan`), geometry (objects, boxes, floor area), first
   appearances (the visibility walk), frame selection and questions, each as a ratio to the decode
   floor: decoding its 128 candidate depth frames (target: the whole <= 1.5x); export vs `.sens`;
2. frames-only reads: 16 colour frames of a scene through `read_scan` (mesh, segments, annotations,
   the stream's listing) vs `read_color_frames` (those images alone, as training and evaluation
   workers now fetch them), and vs decoding the 16 JPEGs alone;
3. peak memory of one worker process building 1 scene vs all --scenes (target: flat, <= 1.2x);
4. the Ray Data build vs the same build sequential, all cores of this box (target >= 1.8x on 2);
5. the projected time of a full ScanNet build (1,513 scenes) on 64 and 512 CPUs (docs/benchmarks.md).
"""

from __future__ import annotations

import argparse
import logging
import math
import multiprocessing
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")

from data_gen.build.config import BuildConfig  # noqa: E402
from data_gen.build.run import build_dataset, list_scenes  # noqa: E402
from data_gen.qa.config import QAConfig  # noqa: E402
from data_gen.qa.frame_selection import uniform_indices  # noqa: E402
from data_gen.qa.labels import LabelMapping  # noqa: E402
from data_gen.qa.metadata import SceneMetadata, first_appearances, footprints, room_geometry, scene_objects  # noqa: E402
from data_gen.qa.scene_records import _share_depth, metadata_records, scene_frames, shown_camera_fields  # noqa: E402
from data_gen.scans.scannet import read_color_frames, read_scan, read_scan_stream  # noqa: E402

SCANNET_SCENES = 1513
STAGES = ("read", "geometry", "appearance", "selection", "questions")


def scannet_size_scenes(work: Path, scenes: int, frames: int) -> tuple[Path, Path]:
    """(export root, .sens root) holding `scenes` ScanNet-sized scenes, made when missing, one
    process per scene."""
    export, sens = work / "export" / "scans", work / "sens" / "scans"
    want = [f"scene{i:04d}_00" for i in range(scenes)]
    todo = [i for i, name in enumerate(want) if not (sens / name / f"{name}.sens").is_file()]
    if todo:
        print(f"writing {len(todo)} ScanNet-sized scenes ({frames} frames) under {work} (minutes each, once)")
        t0 = time.perf_counter()
        with multiprocessing.get_context("spawn").Pool(min(len(todo), os.cpu_count() or 1)) as pool:
            pool.starmap(_write_scene, [(export, sens, i, frames) for i in todo])
        print(f"  written in {time.perf_counter() - t0:.0f} s")
    return export, sens


def _write_scene(export: Path, sens: Path, index: int, frames: int) -> None:
    from data_gen.scans.scannet_write import write_scan
    from data_gen.synthetic.scenes import generate_scene, run_scene_type, scene_seed
    from pipelines.config import build_config

    preset = ROOT / "jobs" / "configs" / "scannet_size.yaml"
    syn = build_config(preset.read_text(), [f"data.synthetic.num_frames={frames}"], str(preset)).data.synthetic
    name = f"scene{index:04d}_00"
    if not (export / name).is_dir():
        scan, _ = generate_scene(name, scene_seed(0, index), num_frames=frames, width=syn.width, height=syn.height,
                                 scene_type=run_scene_type(0, index), stream=True, **syn.sizes())  # fmt: skip
        write_scan(scan, export / name)
    write_scan(read_scan(export / name), sens / name, sens=True)  # the same frames as a .sens stream


def stage_times(scene: Path, qa: QAConfig, labels: LabelMapping) -> dict[str, float]:
    """Seconds of each stage of one scene's records (the steps of `scene_records.scene_qa`), and
    `floor`: decoding its candidate depth frames on a fresh read."""
    out = {}
    t = time.perf_counter()
    scan = read_scan(scene)
    out["read"] = time.perf_counter() - t
    shared = _share_depth(scan, qa)
    t = time.perf_counter()
    objects = scene_objects(shared, qa, labels)
    floor_z, area, centre, floor = room_geometry(shared, footprints(shared, objects), qa)
    out["geometry"] = time.perf_counter() - t
    t = time.perf_counter()
    fps = float(qa.fps or shared.fps)
    appearances = first_appearances(shared, objects, fps, qa)
    out["appearance"] = time.perf_counter() - t
    t = time.perf_counter()
    frame_indices, uniform = scene_frames(shared, qa)
    out["selection"] = time.perf_counter() - t
    t = time.perf_counter()
    meta = SceneMetadata(scene_name=scan.name, dataset=scan.dataset, fps=fps, floor_z=floor_z, room_area=area,
                         room_center=centre, objects=[o for o, _ in objects], first_appearance=appearances,
                         floor_grid=floor, **shown_camera_fields(shared, uniform))  # fmt: skip
    metadata_records(meta, qa, 0, video=scan.name, frame_indices=frame_indices, uniform_indices=uniform)
    out["questions"] = time.perf_counter() - t
    fresh = read_scan_stream(scene)
    t = time.perf_counter()
    for i in uniform_indices(fresh.frames.ids, qa.num_candidates):
        fresh.frames.depth(i)
    out["floor"] = time.perf_counter() - t
    return out


def per_scene(root: Path, qa: QAConfig, repeats: int) -> dict[str, float]:
    """Stage seconds summed over the scenes, each stage the best of `repeats`."""
    labels = LabelMapping.load(qa)
    total = dict.fromkeys((*STAGES, "floor"), 0.0)
    for scene in list_scenes(root):
        runs = [stage_times(scene, qa, labels) for _ in range(repeats)]
        for key in total:
            total[key] += min(r[key] for r in runs)
    return total


def frames_only(scene: Path, repeats: int) -> tuple[float, float, float]:
    """Seconds for 16 colour frames (best of repeats): through `read_scan` (mesh, segments,
    annotations, the stream's listing), through `read_color_frames` (those images alone), and
    decoding the 16 images alone."""
    from data_gen.scans.codecs import decode_image

    ids = uniform_indices(read_scan_stream(scene).frames.ids, 16)
    files = [scene / "color" / f"{i}.jpg" for i in ids]

    def whole() -> None:
        frames = read_scan(scene).frames
        for i in ids:
            frames.color(i)

    times = {}
    for name, fn in (("whole", whole), ("alone", lambda: read_color_frames(scene, ids)),
                     ("decode", lambda: [decode_image(f, where=f, mode="RGB") for f in files])):  # fmt: skip
        runs = []
        for _ in range(repeats):
            t = time.perf_counter()
            fn()
            runs.append(time.perf_counter() - t)
        times[name] = min(runs)
    return times["whole"], times["alone"], times["decode"]


def worker_peak_mib(scenes: list[Path]) -> float:
    """Peak RSS of one fresh process computing the records of `scenes` one after another, as a
    build worker does."""
    code = (
        f"import sys, resource; sys.path.insert(0, {str(ROOT)!r})\n"
        "from data_gen.qa.config import QAConfig; from data_gen.qa.scene_records import scene_records\n"
        "from data_gen.scans.scannet import read_scan\n"
        f"for s in {[str(s) for s in scenes]!r}: scene_records(read_scan(s), QAConfig(), 0)\n"
        "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return int(out.stdout.split()[-1]) / 1024  # ru_maxrss is in KiB on Linux


def build_speedup(root: Path, work: Path, repeats: int) -> tuple[float, float, int]:
    """(sequential seconds, Ray Data seconds, CPUs), best of `repeats` builds each."""
    import ray

    cpus = os.cpu_count() or 1
    qa, build = QAConfig(), BuildConfig()

    def timed(tag: str, sequential: bool) -> float:
        t = time.perf_counter()
        build_dataset(root, work / tag / "dataset", work / tag / "cache", qa, build, 0, log=lambda _: None,
                      sequential=sequential)  # fmt: skip
        return time.perf_counter() - t

    shutil.rmtree(work, ignore_errors=True)  # no scene cache from an earlier run
    ray.init(address="local", num_cpus=cpus, include_dashboard=False, log_to_driver=False)
    logging.getLogger("ray.data").setLevel(logging.WARNING)  # no progress lines between the figures
    timed("warm", sequential=False)  # workers import the stack once
    seq = [timed(f"seq{r}", True) for r in range(repeats)]
    par = [timed(f"ray{r}", False) for r in range(repeats)]
    ray.shutdown()
    return min(seq), min(par), cpus


def projection(scene_s: float, efficiency: float, cpus: int) -> float:
    """Seconds for SCANNET_SCENES scenes on `cpus` CPUs: waves of one scene per CPU, each as long
    as one scene here, slowed by the parallel efficiency measured here."""
    return math.ceil(SCANNET_SCENES / cpus) * scene_s / efficiency


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scenes", type=int, default=2)
    ap.add_argument("--frames", type=int, default=1600)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--work", type=Path, default=ROOT / "runs" / "bench_scannet_size")
    args = ap.parse_args()
    export, sens = scannet_size_scenes(args.work, args.scenes, args.frames)
    qa, n = QAConfig(), args.scenes

    for label, root in (("export", export), (".sens", sens)):
        t = per_scene(root, qa, args.repeats)
        whole = sum(t[s] for s in STAGES)
        split = ", ".join(f"{s} {t[s] / n:.2f} s ({t[s] / t['floor']:.2f}x)" for s in STAGES)
        print(f"1. per scene ({label}): {whole / n:.2f} s = {whole / t['floor']:.2f}x the decode floor "
              f"{t['floor'] / n:.2f} s (target <= 1.5x); {split}")
        if label == "export":
            floor_s = t["floor"] / n

    whole, alone, decode = frames_only(list_scenes(export)[0], args.repeats)
    print(f"2. 16 colour frames of a scene: read_scan then the frames {whole * 1e3:.0f} ms, read_color_frames "
          f"{alone * 1e3:.0f} ms -> {whole / alone:.2f}x faster; read_color_frames / decoding the 16 JPEGs alone "
          f"({decode * 1e3:.0f} ms): {alone / decode:.2f}x")

    one, every = worker_peak_mib(list_scenes(export)[:1]), worker_peak_mib(list_scenes(export))
    print(f"3. peak memory of a worker: 1 scene {one:.0f} MiB, {n} scenes {every:.0f} MiB -> {every / one:.2f}x "
          f"(target <= 1.2x)")

    seq, par, cpus = build_speedup(export, args.work / "builds", args.repeats)
    speedup = seq / par
    print(f"4. build of {n} scenes: sequential {seq:.1f} s, Ray Data on {cpus} CPUs {par:.1f} s -> {speedup:.2f}x "
          f"(target >= 1.8x on 2 cores)")

    efficiency = min(1.0, speedup / min(cpus, n))
    scene_s = seq / n  # a scene through the whole build, hashing, cache and shards included
    parts = [f"{c} CPUs {projection(scene_s, efficiency, c):.0f} s (decode floor alone "
             f"{math.ceil(SCANNET_SCENES / c) * floor_s:.0f} s)" for c in (64, 512)]  # fmt: skip
    print(f"5. projected full ScanNet build ({SCANNET_SCENES} scenes, {scene_s:.1f} s a scene here, parallel "
          f"efficiency {efficiency:.2f}): {'; '.join(parts)}")


if __name__ == "__main__":
    main()
