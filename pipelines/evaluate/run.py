"""Stage 5: evaluation under run_dir/eval: greedy answers from a pool of model replicas (Ray Data),
scored with the shared reward functions, aggregated per VSI-Bench task, reported beside the paper.

    items ─► Ray Data: from_items ─► map(with_frames)            CPU tasks decode frames
                                 ─► map_batches(Predictor)       actor pool, one model per replica
          ─► score (pipelines.rewards) ─► aggregate ─► report + W&B
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

from pipelines.config import RunConfig
from pipelines.evaluate.aggregate import aggregate
from pipelines.evaluate.inputs import EvalInputError, load_items
from pipelines.run_meta import code_version, files_fingerprint, is_complete, read_meta, write_meta

STAGE = "evaluate"


@dataclass(frozen=True)
class ModelSource:
    """What `modeling.load(preset_or_path, path=path, spatial_weights=...)` gets, and how the report names it."""

    preset_or_path: str
    path: str | None
    label: str
    weights_dir: str | None  # the folder the weights come from; None = random init
    think: bool  # prompt for <think>...</think><answer>...</answer>
    spatial_weights: str | None = None  # a VGGT checkpoint beside a plain Qwen2.5-VL model.path


def model_source(cfg: RunConfig) -> ModelSource:
    """The model to evaluate: the last finished training stage of this run, `run_dir/grpo/final`,
    else `run_dir/sft/final`, else the configured model (`model.preset`, with weights from
    `model.path` when given). A `final/` counts once it holds a `config.json`. The prompt asks for
    the think format when that stage was trained with it (eval.think_format, when set, wins)."""
    think = cfg.eval.think_format
    for stage, stage_think in (("grpo", cfg.grpo.think_format), ("sft", cfg.sft.think_format)):
        final = cfg.run_path / stage / "final"
        if (final / "config.json").is_file():
            return ModelSource(
                str(final), None, f"{stage}/final", str(final), stage_think if think is None else think
            )
    path = str(Path(cfg.model.path).expanduser().resolve()) if cfg.model.path else None
    label = cfg.model.preset + (f" ({path})" if path else " (random init)")
    return ModelSource(cfg.model.preset, path, label, path, bool(think), cfg.model.spatial_weights)


def eval_hash(cfg: RunConfig, src: ModelSource) -> str:
    """Same settings, same model files, same questions -> same hash (the stage is then skipped)."""
    model = files_fingerprint(Path(src.weights_dir)) if src.weights_dir else "random-init"
    if cfg.eval.source == "vsibench":
        file = Path(cfg.eval.vsibench_file).expanduser().resolve()
        videos = Path(cfg.eval.videos_dir).expanduser().resolve() if cfg.eval.videos_dir else file.parent
        inputs = files_fingerprint(file) + files_fingerprint(videos)
    else:
        inputs = (read_meta(cfg.run_path / "dataset") or {}).get("config_hash", "none")
    parts = [cfg.section_hash("seed", "eval", "model"), src.preset_or_path, src.think, model, inputs]
    return hashlib.sha256(json.dumps(parts).encode()).hexdigest()[:16]


def generate(items: list[dict], src: ModelSource, cfg: RunConfig) -> list[str]:
    """Greedy completions for `items` (in their order) from `eval.num_replicas` model replicas in a
    Ray Data actor pool; each replica takes a GPU when the cluster has GPUs."""
    import ray
    from tqdm import tqdm

    from pipelines.evaluate.predictor import Predictor, with_frames
    from pipelines.ray_env import show_dataset_progress

    ev = cfg.eval
    gpus = 1 if ray.cluster_resources().get("GPU", 0) >= 1 else 0
    ds = ray.data.from_items([{**item, "index": i} for i, item in enumerate(items)])
    ds = ds.map(with_frames)
    ds = ds.map_batches(
        Predictor,
        fn_constructor_kwargs={
            "preset_or_path": src.preset_or_path,
            "path": src.path,
            "spatial_weights": src.spatial_weights,
            "dtype": cfg.model.dtype,
            "max_new_tokens": ev.max_new_tokens,
            "seed": cfg.seed,
            "think": src.think,
        },
        batch_size=ev.batch_size,
        compute=ray.data.ActorPoolStrategy(size=ev.num_replicas),
        num_gpus=gpus,
        num_cpus=1,
        batch_format="numpy",
    )
    show_dataset_progress(ds, cfg.log_level)  # the answer bar below is the progress
    completions: dict[int, str] = {}
    for row in tqdm(ds.iter_rows(), total=len(items), desc=f"[{STAGE}] answers", unit="q"):
        completions[int(row["index"])] = str(row["prediction"])
    return [completions[i] for i in range(len(items))]


def score_predictions(items: list[dict], completions: list[str]) -> list[dict]:
    """One prediction row per item: its question fields, the completion, the parsed answer and
    the score (accuracy of `pipelines.rewards`: option letter match, or MRA; 0 when unparseable)."""
    from pipelines.rewards import score_and_parse

    rows = []
    for item, text in zip(items, completions, strict=True):
        try:
            scores, parsed = score_and_parse(text, item["problem_type"], item["ground_truth"])
        except ValueError as e:  # a ground truth that does not parse: the data's fault
            raise EvalInputError(f"question {item['id']}: {e}") from None
        rows.append(
            {
                **{
                    k: item[k]
                    for k in ("id", "question_type", "problem_type", "question", "options", "ground_truth")
                },
                "prediction": text,
                "parsed": None if parsed is None else str(parsed),
                "score": scores["accuracy"],
            }
        )
    return rows


def _source_label(cfg: RunConfig) -> str:
    if cfg.eval.source == "vsibench":
        return f"VSI-Bench file {cfg.eval.vsibench_file}"
    return f"run_dir/dataset/{cfg.eval.split} ({cfg.eval.frame_sampling} frames)"


def run(cfg: RunConfig, log=print) -> Path:
    """Evaluate the model (see `model_source`) on cfg.eval's questions; write run_dir/eval.
    Skipped when already done with the same settings, model files and questions."""
    out = cfg.run_path / "eval"
    src = model_source(cfg)
    key = eval_hash(cfg, src)
    if is_complete(out, key):
        log(f"[{STAGE}] already complete: {out}")
        return out
    if src.path and not Path(src.path).is_dir():
        raise EvalInputError(f"model.path {src.path} is not a directory")
    items = load_items(cfg)
    ev = cfg.eval
    log(f"[{STAGE}] {len(items)} questions from {_source_label(cfg)}; model {src.label}; "
        f"{ev.num_replicas} replica(s), batch {ev.batch_size}, {ev.num_frames} frames, greedy")  # fmt: skip
    from pipelines.ray_env import ensure_ray

    ensure_ray(cfg.log_level)
    predictions = score_predictions(items, generate(items, src, cfg))
    result = aggregate(predictions)
    info = {
        "model": src.label,
        "model_source": src.preset_or_path,
        "think_format": src.think,
        "source": _source_label(cfg),
        "eval": ev.model_dump(mode="json"),
        "code_version": code_version(),
    }
    from pipelines.evaluate.report import write_report
    from pipelines.evaluate.wandb_log import log_eval

    paths = write_report(out, result, predictions, info)
    log_eval(cfg.run_path, cfg.model_dump(mode="json"), result, predictions, paths)
    write_meta(
        out,
        STAGE,
        key,
        cfg.model_dump(mode="json"),
        {"model": src.preset_or_path, "source": _source_label(cfg)},
    )
    log(f"[{STAGE}] micro {result['micro']:.1f}, macro {result['macro']:.1f} over {len(predictions)} questions; "
        f"report: {paths['report.md']}")  # fmt: skip
    return out
