"""Training-sample throughput: SFT samples per second per CPU, 16 frames at ScanNet's colour size
(1296x968; --size 640x480 for VSI-Bench-sized videos), from an mp4 and from a ScanNet scan folder,
as a ratio to the bare decode of the same frames, measured in this run.

    python bench/bench_training_samples.py [--size 1296x968] [--seconds 30] [--scan-frames 64] [--repeats 3]

What one Ray Data encoder actor does per SFT record (`pipelines/sft/data.py:encode_block`), timed in
this process on one thread (OMP_NUM_THREADS=1, torch 1 thread, so the figures are per CPU):
- bare decode: the 16 frames alone, `media.read_frames(mp4, indices=...)` (qwen-vl-finetune's
  frames: linspace over the video, seeking to keyframes) or `media.scan_frames(scene, ids)` (the
  scan's JPEG colour frames);
- sample: `prompting.record_clip` (the same decode, through the record's media) + `encode_sample`
  (chat template, tokenising, label mask, resize to 476x644 and patchify: the 3B presets' per-frame
  pixel bounds) + `pack` (the bytes Ray Data moves);
- collate: what the training worker adds per sample (`collate`: uint8 rows -> both encoders' float
  pixels), reported apart because it runs in the training worker, not in a data actor.
Then the CPUs one GPU needs for the data: (samples a GPU consumes per second) / (samples per second
of one CPU), at the paper's compute (SFT: ~310 A800 GPU-hours for ~120k samples, one epoch:
9.3 GPU-seconds a sample, reference §3) and at ten times that speed.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("OMP_NUM_THREADS", "1")

import torch  # noqa: E402

import modeling  # noqa: E402
from data_gen.synthetic.scenes import synthesize_scans  # noqa: E402
from pipelines import media, prompting  # noqa: E402
from pipelines.sft.samples import collate, encode_sample, pack  # noqa: E402
from tests.pipelines.evaluate.video_fixtures import synthetic_frames, write_mp4  # noqa: E402

FRAMES = 16
PAPER_GPU_SECONDS_PER_SAMPLE = 310 * 3600 / 120_000  # SFT: ~310 GPU-hours, ~120k samples, 1 epoch


def best_rate(fn, samples: int, repeats: int) -> float:
    """Best samples/s over `repeats` runs of `samples` calls of fn(i)."""
    best = 0.0
    for _ in range(repeats):
        start = time.perf_counter()
        for i in range(samples):
            fn(i)
        best = max(best, samples / (time.perf_counter() - start))
    return best


def record(kind: str, path: Path, ids: list[int]) -> dict:
    return {"id": "bench", "question": "How many chair(s) are in this room?", "problem_type": "numerical",
            "options": [], "ground_truth": "4", "rationale": "", "turns": "", "media_kind": kind,
            "media_paths": [str(path)], "frame_indices": ids, "uniform_indices": ids}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", default="1296x968", help="colour frame size WxH (ScanNet's: 1296x968)")
    parser.add_argument("--seconds", type=float, default=30.0, help="mp4 length at 24 fps")
    parser.add_argument("--scan-frames", type=int, default=64, help="frames of the synthetic scan (depth 640x480)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--samples", type=int, default=8, help="samples per timed run")
    args = parser.parse_args()
    torch.set_num_threads(1)
    processor = modeling.load_processor("tiny", min_pixels=128 * 28 * 28, max_pixels=768 * 28 * 28)  # 3B bounds
    rule = media.FrameRule(num_frames=FRAMES, min_frames=FRAMES, interval_s=2.0)
    width, height = (int(v) for v in args.size.lower().split("x"))
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        total = int(args.seconds * 24)
        video = write_mp4(root / "v.mp4", synthetic_frames(total, width, height), fps=24, gop=24)
        scale = 2 if width % 2 == 0 and height % 2 == 0 and width > 640 else 1  # as jobs/configs/scannet_size.yaml
        (scene,) = synthesize_scans(root, 1, seed=0, num_frames=args.scan_frames, width=width, height=height,
                                    depth_size=(640, 480), color_scale=scale)  # fmt: skip
        scan_ids = media.uniform_indices(media.scan_frame_ids(scene), FRAMES)
        video_ids = media.qwen_vl_indices(total, 24.0, interval_s=2.0, min_frames=FRAMES, max_frames=FRAMES)
        cases = {
            "mp4": (lambda i: media.read_frames(video, indices=video_ids), record("video", video, [])),
            "scan": (lambda i: media.scan_frames(scene, scan_ids), record("scan", scene, scan_ids)),
        }
        for name, (decode, rec) in cases.items():

            def sample(i, rec=rec):
                clip = prompting.record_clip(rec, sampling="space_aware", rule=rule)
                arrays, _ = encode_sample(processor, rec, clip.frames, think=False, max_length=8192, fps=clip.fps)
                return pack(arrays)

            bare = best_rate(decode, args.samples, args.repeats)
            full = best_rate(sample, args.samples, args.repeats)
            arrays, _ = encode_sample(processor, rec, decode(0), think=False, max_length=8192)
            collated = best_rate(lambda i, a=arrays: collate([a], processor), args.samples, args.repeats)
            results[name] = {"bare_decode_per_s": bare, "sample_per_s": full, "ratio": full / bare,
                             "collate_per_s": collated, "grid": arrays["video_grid_thw"].tolist()[0]}  # fmt: skip
    need = 1 / PAPER_GPU_SECONDS_PER_SAMPLE
    for name, r in results.items():
        print(f"{name} ({width}x{height}): {r['sample_per_s']:.2f} samples/s per CPU vs bare decode {r['bare_decode_per_s']:.2f}/s: "
              f"ratio {r['ratio']:.2f} (grid {r['grid']}); collate in the training worker {r['collate_per_s']:.1f}/s")
        print(f"  CPUs per GPU for the 3B recipe: {need / r['sample_per_s']:.3f} at the paper's "
              f"{PAPER_GPU_SECONDS_PER_SAMPLE:.1f} GPU-s per sample, {10 * need / r['sample_per_s']:.2f} at ten times that speed")  # fmt: skip
    print(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
