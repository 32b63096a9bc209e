"""Evaluation throughput: each video decoded and encoded once for all of its questions, against the
old way (every question decodes its own frames and the model encodes them again), measured in this
run on the same synthetic VSI-Bench-format set.

    python bench/bench_eval.py [--videos 3] [--questions 18] [--frames 240] [--size 640x480] [--repeats 1]
    python bench/bench_eval.py --shape paper [--videos 2]

The benchmark writes `--videos` mp4s (`--frames` frames at `--size`, 24 fps, a keyframe every 12)
and a VSI-Bench HF question file with `--questions` questions per video (VSI-Bench averages 17.8),
then answers them with the tiny preset (random init, greedy, 16 new tokens, 16 frames, batches of
4) through the evaluation's own steps, in this process:
- ours: `inputs.frame_groups` -> `predictor.decode_group` -> `Predictor` (one decode and one
  encoding per video; what the Ray Data pipeline of `pipelines/evaluate/run.py` maps);
- baseline: per question, `inputs.load_frames` then the processor and `model.generate` on that
  question's own frames, 4 questions per call (the pipeline before issue 16).
It prints questions/s for both and their ratio, decodes per video (counted: calls of
`media.read_frames`), and the frame bytes each question sends through the pipeline.

`--shape paper`: eval.shared_prefix at VSI-Bench's shape on the `small` preset: 18 questions per
video, 16 frames of 448x448 (2,048 video tokens, prompts of ~2,200 tokens), greedy, 16 new tokens,
batches of 4. Both sides decode and encode each video once (`Predictor`); one computes the prompt
once per video and answers from it, the other prefills every question's full prompt.
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
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np  # noqa: E402
import torch  # noqa: E402

from pipelines import media as video_module  # noqa: E402
from pipelines import prompting  # noqa: E402
from pipelines.config import build_config  # noqa: E402
from pipelines.evaluate.inputs import frame_groups, load_frames, load_items  # noqa: E402
from pipelines.evaluate.models import model_source  # noqa: E402
from pipelines.evaluate.predictor import Predictor, decode_group  # noqa: E402
from tests.pipelines.evaluate.video_fixtures import write_mp4  # noqa: E402

BATCH = 4
TYPES = [  # (question_type, question, options, ground truth)
    ("object_counting", "How many chair(s) are in this room?", [], "4"),
    ("object_rel_direction_easy", "If I am standing by the sofa and facing the tv, is the lamp to the left or "
     "the right of the tv?", ["A. left", "B. right"], "B"),
    ("room_size_estimation", "What is the size of this room (in square meters)? \nIf multiple rooms are shown, "
     "estimate the size of the combined space.", [], "21.5"),
]  # fmt: skip


def write_set(root: Path, videos: int, questions: int, frames: int, width: int, height: int) -> Path:
    rng = np.random.default_rng(0)
    rows = []
    for v in range(videos):
        base = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
        clip = [np.roll(base, 7 * i, axis=1) for i in range(frames)]  # a panning camera
        write_mp4(root / "arkitscenes" / f"{v:08d}.mp4", clip)
        for q in range(questions):
            qtype, text, options, truth = TYPES[q % len(TYPES)]
            rows.append({"id": len(rows), "dataset": "arkitscenes", "scene_name": f"{v:08d}", "question_type": qtype,
                         "question": text, "options": options, "ground_truth": truth})  # fmt: skip
    (root / "test.json").write_text(json.dumps(rows))
    return root / "test.json"


def ours(items: list[dict], predictor: Predictor) -> list[str]:
    answers: dict[int, str] = {}
    for g, group in enumerate(frame_groups(items)):
        questions = [{"index": p, **{k: items[p][k] for k in ("question", "options", "problem_type")}}
                     for p in group["items"]]  # fmt: skip
        row = decode_group({"group": g, "frames": json.dumps(group["frames"]), "questions": json.dumps(questions)})
        out = predictor({k: [row[k]] for k in ("group", "questions", "error", "frames_array", "fps")})
        answers.update(zip(out["index"].tolist(), out["prediction"].tolist(), strict=True))
    return [answers[i] for i in range(len(items))]


def baseline(items: list[dict], predictor: Predictor) -> list[str]:
    model, processor, out = predictor.model, predictor.processor, []
    for start in range(0, len(items), BATCH):
        batch = items[start : start + BATCH]
        videos = [load_frames(it["frames"]) for it in batch]  # each question decodes its own frames
        texts = [prompting.prompt_text(processor, it) for it in batch]
        inputs = processor(text=texts, videos=videos, return_tensors="pt", padding_side="left")
        with torch.inference_mode():
            ids = model.generate(**inputs, do_sample=False, max_new_tokens=predictor.max_new_tokens)
        out += processor.batch_decode(ids[:, inputs["input_ids"].shape[1] :], skip_special_tokens=True)
    return out


def timed(fn, items, predictor, repeats: int) -> tuple[float, int, list[str]]:
    """Best questions/s over `repeats`, and the decodes of one run (calls of media.read_frames)."""
    calls = []
    read = video_module.read_frames

    def counting(*args, **kwargs):
        calls.append(1)
        return read(*args, **kwargs)

    video_module.read_frames = counting
    try:
        best, answers = 0.0, []
        for _ in range(repeats):
            calls.clear()
            start = time.perf_counter()
            answers = fn(items, predictor)
            best = max(best, len(items) / (time.perf_counter() - start))
    finally:
        video_module.read_frames = read
    return best, len(calls), answers


def bench_paper_shape(args) -> None:
    import modeling

    side = 448
    with tempfile.TemporaryDirectory() as tmp:
        file = write_set(Path(tmp), args.videos, 18, 64, side, side)
        cfg = build_config(None, [f"run_dir={tmp}/run", "eval.source=vsibench", f"eval.vsibench_file={file}",
                                  f"eval.batch_size={BATCH}", "model.preset=small"])  # fmt: skip
        items = load_items(cfg)
        predictor = Predictor(model_source(cfg), "fp32", cfg.eval.decoding_budget(False), 0, BATCH)
        predictor.model, predictor.processor = modeling.load("small", seed=0, max_pixels=side * side)
        prompt = predictor.processor(text=predictor.prompts(items[:1]), videos=[load_frames(items[0]["frames"])])
        encode = predictor.model.encode_videos
        encoding = []

        def timed_encode(*a, **k):  # the encoders' share, the same on both sides
            start = time.perf_counter()
            out = encode(*a, **k)
            encoding.append(time.perf_counter() - start)
            return out

        predictor.model.encode_videos = timed_encode
        rates, answers, language = {}, {}, {}
        for shared in (False, True, False, True):  # interleaved: a drifting machine load hits both
            predictor.shared_prefix = shared
            encoding.clear()
            start = time.perf_counter()
            qps, _, answers[shared] = timed(ours, items, predictor, 1)
            rest = time.perf_counter() - start - sum(encoding)
            rates[shared] = max(rates.get(shared, 0.0), qps)
            language[shared] = min(language.get(shared, float("inf")), rest)
    same = sum(a == b for a, b in zip(answers[True], answers[False], strict=True))
    print(f"shared-prefix evaluation questions/s / per question: {rates[True] / rates[False]:.2f} "
          f"({rates[True]:.2f} vs {rates[False]:.2f} questions/s; small, {args.videos} videos x 18 questions, prompts of "
          f"{prompt['input_ids'].shape[1]} tokens, 16 frames 448x448, batches of {BATCH}, best of 2); target >= 4; "
          f"same answer for {same}/{len(items)}")  # fmt: skip
    print(f"   the rest besides the encoders (decode, preprocessing, language model): {language[False] / language[True]:.2f}x "
          f"faster ({language[True]:.1f} s vs {language[False]:.1f} s); the encoders took {sum(encoding):.1f} s of the "
          f"last run, once per video on both sides")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--videos", type=int, default=3)
    parser.add_argument("--questions", type=int, default=18, help="questions per video")
    parser.add_argument("--frames", type=int, default=240, help="frames per video")
    parser.add_argument("--size", default="640x480", help="WIDTHxHEIGHT of the videos")
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--shape", choices=("default", "paper"), default="default",
                        help="paper: shared prefixes at VSI-Bench's shape (see above)")
    args = parser.parse_args()
    if args.shape == "paper":
        torch.set_num_threads(max(1, (os.cpu_count() or 2) // 2))
        return bench_paper_shape(args)
    width, height = (int(x) for x in args.size.split("x"))
    torch.set_num_threads(max(1, (os.cpu_count() or 2) // 2))
    with tempfile.TemporaryDirectory() as tmp:
        t = time.perf_counter()
        file = write_set(Path(tmp), args.videos, args.questions, args.frames, width, height)
        print(f"wrote {args.videos} videos ({args.frames} frames, {args.size}) and {args.videos * args.questions} "
              f"questions in {time.perf_counter() - t:.1f} s")  # fmt: skip
        cfg = build_config(None, [f"run_dir={tmp}/run", "eval.source=vsibench", f"eval.vsibench_file={file}",
                                  f"eval.batch_size={BATCH}"])  # fmt: skip
        items = load_items(cfg)
        predictor = Predictor(model_source(cfg), "fp32", cfg.eval.decoding_budget(False), 0, BATCH)
        base_qps, base_decodes, base_answers = timed(baseline, items, predictor, args.repeats)
        our_qps, our_decodes, our_answers = timed(ours, items, predictor, args.repeats)
        frame_bytes = load_frames(items[0]["frames"])[0].nbytes * cfg.eval.num_frames
    n, v = len(items), args.videos
    same = sum(a == b for a, b in zip(our_answers, base_answers, strict=True))
    print(f"baseline (decode + encode per question): {base_qps:.2f} questions/s, {base_decodes / v:.1f} decodes per video, "
          f"{frame_bytes / 1e6:.1f} MB of frames per question")  # fmt: skip
    print(f"ours (decode + encode per video):        {our_qps:.2f} questions/s, {our_decodes / v:.1f} decodes per video, "
          f"{frame_bytes / 1e6 / (n / v):.2f} MB of frames per question")  # fmt: skip
    print(f"ratio ours / baseline: {our_qps / base_qps:.2f}x questions/s; same answer for {same}/{n} questions "
          "(batches differ in padding)")


if __name__ == "__main__":
    main()
