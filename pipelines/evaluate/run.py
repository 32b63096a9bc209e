"""Stage 5: evaluation under run_dir/eval/<name>: greedy answers from a pool of model replicas (Ray
Data), each video decoded once, scored by a named rule, aggregated per VSI-Bench task, reported
beside the paper.

    items (checked) ─► frame_groups: one row per video and frame-id set
        ─► Ray Data: map(decode_group)          CPU tasks, one decode per video
                  ─► map_batches(Predictor)     actor pool; one encoding per video, its questions batched
        ─► completions.jsonl (each answer as it arrives; a re-run resumes)
        ─► score (pipelines.rewards.accuracy, eval.scoring) ─► aggregate ─► report + W&B

A video that cannot be read fails only its questions (scored 0 "as reported", left out "over
decodable"); more than eval.max_bad_video_fraction of the videos failing stops the run, naming them.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from pipelines.config import RunConfig
from pipelines.evaluate.aggregate import aggregate
from pipelines.evaluate.completions import Completions
from pipelines.evaluate.inputs import EvalInputError, frame_groups, frame_sampling, frames_label, load_items
from pipelines.evaluate.models import ModelSource, model_source
from pipelines.run_meta import code_version, files_fingerprint, is_complete, read_meta, write_meta

STAGE = "evaluate"
EVAL_DIR = "eval"
# What the model computes from the same settings and weights; a new value discards answers made
# before it. "qwen-rope": 3D positions by Qwen's original rule (modeling/rope.py), not transformers 5.24's.
ANSWER_SEMANTICS = "qwen-rope"
# eval keys the answers themselves do not depend on (changing them keeps completions.jsonl).
_SCORING_ONLY = ("name", "scoring", "limit", "batch_size", "num_replicas", "max_bad_video_fraction", "shared_prefix")


def eval_name(cfg: RunConfig, src: ModelSource | None = None) -> str:
    """The folder under run_dir/eval: eval.name, else the split or `vsibench`, plus the checkpoint."""
    if cfg.eval.name:
        return cfg.eval.name
    name = {"vsibench": "vsibench", "sources": "+".join(s.name for s in cfg.eval.sources)}.get(cfg.eval.source,
                                                                                                cfg.eval.split)
    if src is not None and src.checkpoint:
        checkpoint = Path(src.checkpoint)
        name += f"-{checkpoint.parent.parent.name}-{checkpoint.name}"
    return name


def output_dir(cfg: RunConfig) -> Path:
    """run_dir/eval/<name> for the model cfg evaluates (`eval_name`)."""
    return cfg.run_path / EVAL_DIR / eval_name(cfg, model_source(cfg))


def _inputs_fingerprint(cfg: RunConfig, items: list[dict]) -> str:
    if cfg.eval.source == "dataset":
        return (read_meta(cfg.run_path / "dataset") or {}).get("config_hash", "none")
    sources = sorted({p for it in items for p in it["frames"].get("paths", [it["frames"]["path"]])})
    files = [cfg.eval.vsibench_file] if cfg.eval.source == "vsibench" else [
        f for s in cfg.eval.sources for f in (s.annotation, s.answers, s.frame_indices_file) if f]
    parts = [files_fingerprint(Path(f).expanduser().resolve()) for f in files]
    parts += [files_fingerprint(Path(p)) for p in sources]
    if cfg.eval.frame_indices_file:
        parts.append(files_fingerprint(Path(cfg.eval.frame_indices_file).expanduser().resolve()))
    return hashlib.sha256("".join(parts).encode()).hexdigest()[:16]


def eval_keys(cfg: RunConfig, src: ModelSource, items: list[dict]) -> tuple[str, str]:
    """(answers key, complete key). Answers key: what the completions depend on (model files,
    prompt, frames, decoding, questions' inputs); completions.jsonl made under another is
    discarded. Complete key: that plus every eval setting; a finished folder with it is skipped."""
    answer_settings = [f"eval.{k}" for k in type(cfg.eval).model_fields if k not in _SCORING_ONLY]
    weights = [files_fingerprint(Path(d)) for d in src.weights_dirs] or ["random-init"]
    parts = [cfg.section_hash("seed", "model", *answer_settings), src.preset_or_path, src.checkpoint,
             src.think, src.style, weights, _inputs_fingerprint(cfg, items), ANSWER_SEMANTICS]  # fmt: skip
    answers = hashlib.sha256(json.dumps(parts).encode()).hexdigest()[:16]
    complete = hashlib.sha256(json.dumps([answers, cfg.section_hash("eval")]).encode()).hexdigest()[:16]
    return answers, complete


PROMPT_FIELDS = ("question", "options", "problem_type", "turns")


def generate(items: list[dict], todo: list[int], src: ModelSource, cfg: RunConfig, completions: Completions,
             log=print) -> dict[str, dict]:  # fmt: skip
    """Answer items[todo] greedily with `eval.num_replicas` model replicas (a Ray Data actor pool,
    one GPU each when the cluster has GPUs), each video decoded once; every answer goes to
    `completions` as it arrives. Returns the videos that could not be read: {video: {"error",
    "questions"}}. Raises EvalInputError once more than eval.max_bad_video_fraction of all the
    evaluation's videos failed."""
    import ray
    from tqdm import tqdm

    from pipelines.evaluate.predictor import Predictor, decode_group
    from pipelines.ray_env import show_dataset_progress

    ev = cfg.eval
    groups = frame_groups([items[i] for i in todo])
    rows = [
        {
            "group": g,
            "video": group["video"],
            "frames": json.dumps(group["frames"]),
            "questions": json.dumps(
                [{"index": todo[p], **{k: items[todo[p]].get(k) for k in PROMPT_FIELDS}} for p in group["items"]]
            ),
        }
        for g, group in enumerate(groups)
    ]
    num_videos = len({it["video"] for it in items})
    allowed = ev.max_bad_video_fraction * num_videos
    gpus = 1 if ray.cluster_resources().get("GPU", 0) >= 1 else 0
    ds = ray.data.from_items(rows).map(decode_group)
    ds = ds.map_batches(
        Predictor,
        fn_constructor_kwargs={
            "source": src,
            "dtype": cfg.model.dtype,
            "max_new_tokens": ev.decoding_budget(src.think),
            "seed": cfg.seed,
            "batch_size": ev.batch_size,
            "shared_prefix": ev.shared_prefix,
            "generation": ev.generation_kwargs(src.think),
            "frame_timing": ev.frame_timing,
        },
        batch_size=1,  # one video (all of its questions) per call
        compute=ray.data.ActorPoolStrategy(size=ev.num_replicas),
        num_gpus=gpus,
        num_cpus=1,
        batch_format="numpy",
    )
    show_dataset_progress(ds, cfg.log_level)  # the answer bar below is the progress
    failed: dict[str, dict] = {}
    try:
        for row in tqdm(ds.iter_rows(), total=len(todo), desc=f"[{STAGE}] answers", unit="q"):
            item = items[int(row["index"])]
            if row["error"]:
                entry = failed.setdefault(item["video"], {"error": str(row["error"]), "questions": 0})
                entry["questions"] += 1
                if len(failed) > allowed:
                    raise EvalInputError(_too_many_failures(failed, num_videos, ev.max_bad_video_fraction, completions))
            else:
                completions.add(item["id"], str(row["prediction"]))
    finally:
        completions.close()
    for video, entry in failed.items():
        log(f"[{STAGE}] cannot read {video}: its {entry['questions']} question(s) score 0 ({entry['error']})")
    return failed


def _too_many_failures(failed: dict, num_videos: int, fraction: float, completions: Completions) -> str:
    listing = "\n".join(f"  {video}: {entry['error']}" for video, entry in failed.items())
    return (
        f"{len(failed)} of {num_videos} videos cannot be read, more than eval.max_bad_video_fraction={fraction} "
        f"allows; stopped:\n{listing}\n{len(completions)} answers so far are kept in {completions.path} "
        "(running again resumes there). Fix or remove those videos, or raise eval.max_bad_video_fraction."
    )


def score_predictions(
    items: list[dict], texts: dict[str, str], failed: dict[str, dict], *, rule: str, answer_tag: bool
) -> list[dict]:
    """One prediction row per item: its question fields, the completion, the answer read from it
    and the score (`pipelines.rewards.accuracy` under `rule`). A question whose video could not be
    read has no prediction, its `error` set and score 0."""
    from pipelines.rewards import accuracy

    rows = []
    for item in items:
        base = {k: item[k] for k in ("id", "question_type", "problem_type", "question", "options", "ground_truth",
                                     "video")}  # fmt: skip
        base["answers"] = item.get("answers") or [item["ground_truth"]]  # an open-ended question's accepted answers
        truth = base["answers"] if item["problem_type"] == "open_ended" else item["ground_truth"]
        if item["id"] in texts:
            text = texts[item["id"]]
            score, parsed = accuracy(text, item["problem_type"], truth, rule=rule, answer_tag=answer_tag)
            rows.append({**base, "prediction": text, "parsed": None if parsed is None else str(parsed),
                         "score": score, "error": None})  # fmt: skip
        else:
            error = failed.get(item["video"], {}).get("error", "not answered")
            rows.append({**base, "prediction": None, "parsed": None, "score": 0.0, "error": error})
    return rows


def _source_label(cfg: RunConfig) -> str:
    sampling = frame_sampling(cfg.eval)
    if cfg.eval.source == "vsibench":
        return f"question file {cfg.eval.vsibench_file} ({sampling} frames)"
    if cfg.eval.source == "sources":
        return "eval.sources " + ", ".join(f"{s.name} ({s.format}: {s.annotation})" for s in cfg.eval.sources)
    return f"run_dir/dataset/{cfg.eval.split} ({sampling} frames)"


def run(cfg: RunConfig, log=print) -> Path:
    """Evaluate the model (`models.model_source`) on cfg.eval's questions; write run_dir/eval/<name>.
    Skipped when already done with the same settings, model files and questions; resumes from
    completions.jsonl when an earlier run stopped."""
    src = model_source(cfg)
    out = cfg.run_path / EVAL_DIR / eval_name(cfg, src)
    if src.path and not Path(src.path).is_dir():
        raise EvalInputError(f"model.path {src.path} is not a directory")
    items = load_items(cfg)  # every question checked before anything is decoded or generated
    answers_key, complete_key = eval_keys(cfg, src, items)
    if is_complete(out, complete_key):
        log(f"[{STAGE}] already complete: {out}")
        return out
    ev = cfg.eval
    completions = Completions(out / "completions.jsonl", answers_key)
    if completions.discarded:
        log(f"[{STAGE}] {completions.path}: {completions.discarded} answers from other settings discarded")
    todo = [i for i, it in enumerate(items) if it["id"] not in completions]
    videos = len({items[i]["video"] for i in todo})
    frame_sets = len(frame_groups([items[i] for i in todo]))
    resumed = f", {len(items) - len(todo)} already answered" if len(todo) < len(items) else ""
    log(f"[{STAGE}] {len(items)} questions from {_source_label(cfg)}{resumed}; model {src.label}; prompt {src.style}"
        f"{' (think)' if src.think and src.style != 'think' else ''}; frames {frames_label(ev)}; "
        f"{ev.num_replicas} replica(s), batch {ev.batch_size}, {ev.decoding} decoding, {ev.decoding_budget(src.think)} "
        f"new tokens, {ev.frame_timing} frame timing; protocol {ev.protocol}")  # fmt: skip
    failed: dict[str, dict] = {}
    if todo:
        from pipelines.ray_env import ensure_ray

        ensure_ray(cfg.log_level)
        log(f"[{STAGE}] {len(todo)} questions on {videos} video(s) ({frame_sets} frame set(s)): each set decoded once")
        failed = generate(items, todo, src, cfg, completions, log)
    predictions = score_predictions(items, completions.texts, failed, rule=ev.scoring, answer_tag=src.think)
    result = aggregate(predictions)
    decodable = [p for p in predictions if p["error"] is None]
    from pipelines.evaluate.caption_metrics import open_ended_metrics

    open_ended = open_ended_metrics(predictions, answer_tag=src.think)
    info = {
        "model": src.label,
        "model_source": src.preset_or_path,
        "checkpoint": src.checkpoint,
        "prompt_style": src.style,
        "think_format": src.think,
        "protocol": ev.protocol,
        "scoring": ev.scoring,
        "decoding": ev.decoding,
        "frame_timing": ev.frame_timing,
        "frames": frames_label(ev),
        "max_new_tokens": ev.decoding_budget(src.think),
        "source": _source_label(cfg),
        "failed_videos": [{"video": v, **entry} for v, entry in failed.items()],
        "failed_questions": sum(entry["questions"] for entry in failed.values()),
        "over_decodable": aggregate(decodable) if failed and decodable else None,
        "open_ended": open_ended,
        "eval": ev.model_dump(mode="json"),
        "code_version": code_version(),
    }
    from pipelines.evaluate.report import write_report
    from pipelines.evaluate.wandb_log import log_eval

    paths = write_report(out, result, predictions, info)
    log_eval(cfg.run_path, eval_name(cfg, src), cfg.model_dump(mode="json"), result, predictions, paths, info)
    write_meta(out, STAGE, complete_key, cfg.model_dump(mode="json"),
               {"model": src.label, "source": _source_label(cfg)})  # fmt: skip
    failures = f"; {len(failed)} unreadable video(s), {info['failed_questions']} questions scored 0" if failed else ""
    if open_ended:
        every = open_ended["all"]
        meteor = "n/a (no Java)" if every["meteor"] is None else f"{every['meteor']:.1f}"
        log(f"[{STAGE}] open-ended ({every['questions']} questions): exact match {every['exact_match']:.1f}, "
            f"BLEU-4 {every['bleu_4']:.1f}, ROUGE-L {every['rouge_l']:.1f}, METEOR {meteor}, CIDEr {every['cider']:.1f}")
    camera = result.get("camera_motion")
    scores = (f"micro {result['micro']:.1f}, macro {result['macro']:.1f}" if result["num_rows"] else "no VSI-Bench type")
    if camera:
        scores += f"; camera motion {camera['mean']:.1f} ({camera['num_rows']} questions, apart)"
    log(f"[{STAGE}] {scores} over {len(predictions)} questions ({ev.scoring} scoring){failures}; "
        f"report: {paths['report.md']}")  # fmt: skip
    return out
