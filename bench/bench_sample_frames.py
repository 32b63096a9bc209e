"""Space-aware frame sampling benchmarks (jobs.sample_frames). Figures measured in this run; ratios
against a baseline measured in this run.

    python bench/bench_sample_frames.py [--videos 8] [--frames 192] [--candidates 128] [--image-size 56]

0. the floor: decoding each video's candidates (+ resize for VGGT) alone, in this process;
1. videos/s of the job (tiny random VGGT on CPU, local Ray, one actor) vs the same work as a plain
   loop in this process (decode, VGGT, selection per video): the ratio is Ray's overhead on top.
   Each run pays a fixed start (the actor imports torch and builds its model); it is measured
   apart, as run(1 video), and the steady rate is (n - 1) / (run(n videos) - run(1 video)). All on a
   warm Ray instance (a first run has gone before);
2. per-video time split into decode, aggregator, heads and selection (the in-process loop; the
   job's own report.json split beside it);
3. VGGT-1B at 128 candidates: measured only on a GPU (random weights, bf16 autocast: time and peak
   memory); on CPU the line says it is unmeasured. Then the memory estimate
   (`modeling.vggt_model.memory_estimate`) for the default and the chunked settings, and that
   estimate held against VGGT's published figures (paper Table 9, H100, 336x518, all 24 layers
   kept: 21.15 GB at 100 frames, 40.63 GB at 200).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")

import torch  # noqa: E402

import modeling  # noqa: E402
from data_gen.synthetic.scenes import generate_scene  # noqa: E402
from modeling.vggt_model import anchored_chunks, memory_estimate, resize_for_vggt  # noqa: E402
from pipelines.config import build_config  # noqa: E402
from pipelines.sample_frames.inputs import candidate_frames  # noqa: E402
from pipelines.sample_frames.sampler import Timings, sample_positions  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
PHASES = ("decode", "aggregator", "heads", "selection")


def write_videos(folder: Path, count: int, frames: int) -> list[Path]:
    """Synthetic rooms' colour frames (320x240) as mp4 (libx264, near-lossless)."""
    import av

    paths = []
    for i in range(count):
        scan, _ = generate_scene(f"scene{i:04d}_00", i, num_frames=frames)
        path = folder / "synthetic" / f"scene{i:04d}_00.mp4"
        path.parent.mkdir(parents=True, exist_ok=True)
        with av.open(str(path), "w") as out:
            stream = out.add_stream("libx264", rate=24)
            stream.width, stream.height, stream.pix_fmt = 320, 240, "yuv420p"
            stream.options = {"crf": "1", "preset": "ultrafast", "g": "24"}
            for j in scan.frames.ids:
                for packet in stream.encode(av.VideoFrame.from_ndarray(scan.frames.color(j), format="rgb24")):
                    out.mux(packet)
            for packet in stream.encode():
                out.mux(packet)
        paths.append(path)
    return paths


def in_process(cfg, paths: list[Path]) -> tuple[float, float, list[dict]]:
    """(seconds of decoding alone, seconds of the whole loop, per-video phase seconds)."""
    sf = cfg.sample_frames
    model = modeling.load_vggt(sf.preset, seed=cfg.seed)
    torch.set_num_threads(1)  # as the job's 1-CPU actor runs
    t0 = time.perf_counter()
    for path in paths:
        _, _, frames = candidate_frames(path, sf.num_candidates)
        resize_for_vggt(frames, sf.image_size)
    decode_only = time.perf_counter() - t0
    per_video = []
    t0 = time.perf_counter()
    for path in paths:
        start = time.perf_counter()
        _, _, frames = candidate_frames(path, sf.num_candidates)
        images = resize_for_vggt(frames, sf.image_size)
        timings = Timings()
        decode = time.perf_counter() - start
        sample_positions(model, images, sf, timings)
        per_video.append({"decode": decode, "aggregator": timings.aggregator, "heads": timings.heads,
                          "selection": timings.selection})  # fmt: skip
    return decode_only, time.perf_counter() - t0, per_video


def job(cfg) -> tuple[float, dict]:
    """(seconds of run(cfg) on a warm Ray instance, its report)."""
    import json

    from pipelines.sample_frames.run import run

    t0 = time.perf_counter()
    out = run(cfg, log=lambda *_: None)
    return time.perf_counter() - t0, json.loads((out / "report.json").read_text())


def gpu_line(candidates: int) -> str:
    if not torch.cuda.is_available():
        return (f"3. VGGT-1B, {candidates} candidates at 518x392: unmeasured (no GPU here); "
                "estimate below")  # fmt: skip
    device = torch.device("cuda")
    model = modeling.load_vggt("vggt-1b", device=device, seed=0)  # random weights: time and memory only
    images = torch.rand(1, candidates, 3, 392, 518, device=device)
    with torch.inference_mode(), torch.autocast("cuda", dtype=torch.bfloat16):
        model.aggregate(images[:, :8])  # warm-up
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    t0 = time.perf_counter()
    with torch.inference_mode():
        with torch.autocast("cuda", dtype=torch.bfloat16):
            layers = model.aggregate(images)
        torch.cuda.synchronize()
        t1 = time.perf_counter()
        model.predict(layers, (392, 518))
        torch.cuda.synchronize()
    t2 = time.perf_counter()
    peak = torch.cuda.max_memory_allocated() / 2**30
    return (f"3. VGGT-1B, {candidates} candidates at 518x392 on {torch.cuda.get_device_name()}: aggregator "
            f"{t1 - t0:.2f} s, heads {t2 - t1:.2f} s, peak {peak:.1f} GiB allocated")  # fmt: skip


def memory_lines() -> list[str]:
    lines = ["   estimate, VGGT-1B, GiB (weights fp32 4.3 + kept layers + largest transient; add ~1-2 for CUDA):"]
    for hw, chunk in (((392, 518), 0), ((518, 518), 0), ((392, 518), 64), ((392, 518), 32), ((280, 378), 0)):
        chunks = anchored_chunks(128, chunk)
        frames = max(map(len, chunks))
        est = memory_estimate("vggt-1b", frames, hw)
        label = "one forward" if not chunk else f"frames_per_forward={chunk}: {len(chunks)} forwards of <= {frames}"
        lines.append(f"     {hw[1]}x{hw[0]}, 128 candidates ({label}): peak {est['peak']:.1f} "
                     f"(kept layers {est['kept_layers']:.1f}, block {est['block']:.1f}, depth head {est['depth_head']:.1f})")  # fmt: skip
    allk = memory_estimate("vggt-1b", 128, (392, 518), kept_layers=24)["peak"]
    lines.append(f"     518x392, 128 frames, all 24 layers kept (VGGT's own aggregator): peak {allk:.1f}")
    for frames, published in ((100, 21.15), (200, 40.63)):
        est = memory_estimate("vggt-1b", frames, (336, 518), kept_layers=24)["peak"]
        lines.append(f"     check: {frames} frames at 518x336, all layers: estimate {est:.1f} vs VGGT's "
                     f"published {published * 1e9 / 2**30:.1f} GiB (ratio {est / (published * 1e9 / 2**30):.2f})")  # fmt: skip
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--videos", type=int, default=8)
    parser.add_argument("--frames", type=int, default=192, help="frames per synthetic video")
    parser.add_argument("--candidates", type=int, default=128)
    parser.add_argument("--image-size", type=int, default=56)
    args = parser.parse_args()

    from pipelines.ray_env import ensure_ray

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        paths = write_videos(tmp / "videos", args.videos, args.frames)
        yaml_text = (REPO / "jobs" / "configs" / "tiny.yaml").read_text()
        overrides = [f"sample_frames.videos_dir={tmp / 'videos'}", f"sample_frames.num_candidates={args.candidates}",
                     f"sample_frames.image_size={args.image_size}"]  # fmt: skip
        one = [*overrides, f"sample_frames.video_list={_one_video_list(tmp, paths[0])}"]
        ensure_ray("quiet")
        job(build_config(yaml_text, [f"run_dir={tmp / 'warm'}", *one]))  # Ray's own first-run costs
        one_s, _ = job(build_config(yaml_text, [f"run_dir={tmp / 'one'}", *one]))
        cfg = build_config(yaml_text, [f"run_dir={tmp / 'run'}", *overrides])
        job_s, report = job(cfg)
        decode_only, loop_s, per_video = in_process(cfg, paths)

    n = len(paths)
    print(f"settings: tiny VGGT (random) on CPU, {n} videos of {args.frames} frames 320x240, "
          f"{args.candidates} candidates at width {args.image_size}, 16 chosen")
    print(f"0. decode (+resize) alone, in-process: {n / decode_only:.2f} videos/s")
    steady = (n - 1) / max(job_s - one_s, 1e-9)
    print(f"1. job (local Ray, 1 actor): {n} videos in {job_s:.1f} s = {n / job_s:.2f} videos/s; fixed start per run "
          f"{one_s - 1 / steady:.1f} s; steady {steady:.2f} videos/s vs in-process loop {n / loop_s:.2f} videos/s "
          f"(steady / loop = {steady * loop_s / n:.2f}x; decoding alone is {decode_only / loop_s:.0%} of the loop)")
    med = {k: statistics.median(v[k] for v in per_video) for k in PHASES}
    total = sum(med.values())
    print("2. per video (median, in-process): " + ", ".join(f"{k} {med[k] * 1e3:.0f} ms ({med[k] / total:.0%})" for k in PHASES))
    print("   per video (mean, the job's report.json): "
          + ", ".join(f"{k} {report['seconds_per_video'][k] * 1e3:.0f} ms" for k in PHASES))  # fmt: skip
    print(gpu_line(128))
    print("\n".join(memory_lines()))


def _one_video_list(tmp: Path, path: Path) -> Path:
    listing = tmp / "warm.txt"
    listing.write_text(path.relative_to(tmp / "videos").as_posix() + "\n")
    return listing


if __name__ == "__main__":
    main()
