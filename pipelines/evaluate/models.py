"""Which model an evaluation asks, how to ask it, and loading it (training checkpoints included).

`model_source(cfg)` picks the model (eval.model, else the run's grpo/final, sft/final, else
model.preset with model.path) and the prompt it was trained with; `load_model(src, ...)` builds
it in a replica. A training checkpoint (`<run>/<stage>/checkpoints/step_N/`, DeepSpeed ZeRO shards
written by `pipelines/train/checkpointing.py`) has no config.json: the model is built as that stage
builds its starting point (SFT: model.preset / model.path; GRPO: grpo.init_from, else
<run>/sft/final, else model.preset / model.path), and the shards, consolidated by DeepSpeed's
`zero_to_fp32` utilities, replace every weight (strictly: a name or shape that does not match is
an error naming the checkpoint).
"""

from __future__ import annotations

import contextlib
import io
from dataclasses import dataclass, replace
from pathlib import Path

from pipelines.evaluate.inputs import EvalInputError
from pipelines.train.checkpointing import DS_TAG, EXPERIMENT, STATE_FILE

TRAINED_STAGES = ("grpo", "sft")  # evaluated by default in this order (the last finished wins)


@dataclass(frozen=True)
class ModelSource:
    """What `modeling.load(preset_or_path, path=path, spatial_weights=...)` gets (then the
    checkpoint's weights, if any), how the report names it, and how it is asked."""

    preset_or_path: str
    path: str | None
    label: str
    weights_dirs: tuple[str, ...]  # the folders the weights come from (fingerprinted); () = random init
    think: bool  # ask for <think>...</think><answer>...</answer> and read the answer tag
    style: str  # pipelines.prompting style: spatial_mllm, vsi_bench or think
    spatial_weights: str | None = None  # a VGGT checkpoint beside a plain Qwen2.5-VL model.path
    checkpoint: str | None = None  # a DeepSpeed training checkpoint whose weights replace the built ones


def is_training_checkpoint(folder: Path) -> bool:
    return (folder / STATE_FILE).is_file() and (folder / DS_TAG).is_dir()


def _trained_prompt(cfg, stage: str | None) -> tuple[bool, str]:
    """(think, style) that `stage` trained with (nothing trained here: spatial_mllm, no think),
    unless eval.prompt_style says otherwise."""
    if cfg.eval.prompt_style is not None:
        return cfg.eval.prompt_style == "think", cfg.eval.prompt_style
    if stage is None:
        return False, "spatial_mllm"
    section = getattr(cfg, stage)
    return bool(section.think_format), section.prompt_style


def _configured(cfg, think: bool, style: str, **extra) -> ModelSource:
    """model.preset with model.path weights (random init without them)."""
    path = str(Path(cfg.model.path).expanduser().resolve()) if cfg.model.path else None
    label = cfg.model.preset + (f" ({path})" if path else " (random init)")
    fields = {"label": label, "weights_dirs": (path,) if path else (), **extra}
    return ModelSource(cfg.model.preset, path, think=think, style=style,
                       spatial_weights=cfg.model.spatial_weights, **fields)  # fmt: skip


def _folder(folder: Path, label: str, think: bool, style: str, **extra) -> ModelSource:
    fields = {"label": label, "weights_dirs": (str(folder),), **extra}
    return ModelSource(str(folder), None, think=think, style=style, **fields)


def checkpoint_source(cfg, folder: Path) -> ModelSource:
    """A training checkpoint, built on what its stage starts from (see module docstring)."""
    stage = folder.parent.parent.name
    if folder.parent.name != EXPERIMENT or stage not in TRAINED_STAGES:
        raise EvalInputError(
            f"{folder}: a DeepSpeed checkpoint outside <run_dir>/{{sft,grpo}}/{EXPERIMENT}/step_N; cannot tell "
            "which model it was trained from"
        )
    think, style = _trained_prompt(cfg, stage)
    label = f"{stage}/{EXPERIMENT}/{folder.name}"
    extra = {"checkpoint": str(folder)}
    if stage == "grpo":
        start = Path(cfg.grpo.init_from).expanduser().resolve() if cfg.grpo.init_from else folder.parents[2] / "sft" / "final"
        if (start / "config.json").is_file():
            src = _folder(start, label, think, style, **extra)
            return replace(src, weights_dirs=(str(start), str(folder)))
    src = _configured(cfg, think, style, **extra)
    return replace(src, label=label, weights_dirs=(*src.weights_dirs, str(folder)))


def model_source(cfg) -> ModelSource:
    """The model to evaluate: eval.model (a model folder or a training checkpoint), else the last
    finished training stage of this run, `run_dir/grpo/final`, else `run_dir/sft/final`, else the
    configured model (`model.preset`, weights from `model.path`). A `final/` counts once it holds a
    `config.json`. The prompt is the one that stage trained with (eval.prompt_style, when set, wins)."""
    if cfg.eval.model:
        folder = Path(cfg.eval.model).expanduser().resolve()
        if not folder.is_dir():
            raise EvalInputError(f"eval.model={cfg.eval.model}: no such folder")
        if is_training_checkpoint(folder):
            return checkpoint_source(cfg, folder)
        if not (folder / "config.json").is_file():
            raise EvalInputError(
                f"eval.model={folder}: neither a model folder (config.json) nor a training checkpoint "
                f"({STATE_FILE} + {DS_TAG}/)"
            )
        stage = folder.parent.name if folder.name == "final" and folder.parent.name in TRAINED_STAGES else None
        think, style = _trained_prompt(cfg, stage)
        return _folder(folder, f"{stage}/final" if stage else str(folder), think, style)
    for stage in TRAINED_STAGES:
        final = cfg.run_path / stage / "final"
        if (final / "config.json").is_file():
            return _folder(final, f"{stage}/final", *_trained_prompt(cfg, stage))
    if cfg.model.path and is_training_checkpoint(Path(cfg.model.path).expanduser()):
        raise EvalInputError(
            f"model.path={cfg.model.path} is a training checkpoint (DeepSpeed shards): evaluate it with "
            f"eval.model={cfg.model.path}"
        )
    return _configured(cfg, *_trained_prompt(cfg, None))


def checkpoint_state_dict(folder: Path) -> dict:
    """The full fp32 weights of a DeepSpeed checkpoint (any ZeRO stage), by parameter name."""
    from deepspeed.utils.zero_to_fp32 import get_fp32_state_dict_from_zero_checkpoint

    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):  # a line per shard
        return get_fp32_state_dict_from_zero_checkpoint(str(folder), tag=DS_TAG)


def load_model(src: ModelSource, *, dtype: str, device: str, seed: int):
    """(model in eval mode on `device`, processor) for `src`."""
    import modeling

    model, processor = modeling.load(
        src.preset_or_path, path=src.path, spatial_weights=src.spatial_weights, dtype=dtype, seed=seed
    )
    if src.checkpoint:
        state = checkpoint_state_dict(Path(src.checkpoint))
        try:
            model.load_state_dict(state, strict=True)  # copies into the built parameters, cast to dtype
        except RuntimeError as e:
            raise EvalInputError(
                f"{src.checkpoint}: its weights do not fit the model it was taken to start from "
                f"({src.preset_or_path}): {str(e)[:1000]}"
            ) from None
        if model.config.tie_word_embeddings:
            model.tie_weights()
    return model.to(device).eval(), processor
