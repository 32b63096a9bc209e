"""`load(preset_or_path)`: a model and its processor, random-initialised or from local weights.

Directories this reads (never the network):
- this package's own `save_pretrained` output (config `model_type: spatial_mllm`);
- a Spatial-MLLM v1.1 release (`spatial_encoder.vggt_model.aggregator.*`, `connector.*`, and
  Qwen's pre-transformers-4.52 names `model.layers.*`, `visual.*`; VGGT's heads are skipped);
- a Spatial-MLLM v1.0 release (`vggt.aggregator.*`, the two-stage connector
  `vggt_embedding_merger.*`; told apart by those tensor names, its config has no spatial part);
- a Qwen2.5-VL-3B-Instruct directory (old or new transformers names), giving plain Qwen2.5-VL,
  or Spatial-MLLM when the preset says so and `spatial_weights` points at a VGGT-1B checkpoint
  (the connector then starts from a fresh init: the paper's SFT starting point).
Every tensor is matched strictly: a missing, unexpected or mis-shaped name is an error listing all.

Memory: tensors are read one at a time and cast to the target dtype as they are read; a tensor
that is not used (VGGT's heads, a tied `lm_head.weight`) is never read (`checkpoint_io.py`).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
from pathlib import Path

import torch
from torch import nn
from transformers import AutoTokenizer, GenerationConfig, PreTrainedTokenizerFast

from modeling.checkpoint_io import checkpoint_files, read_mapped, tensor_names
from modeling.config import PRESETS, VGGT_PRESETS, VGGTConfig, build_config
from modeling.config import SpatialMLLMConfig as _Config
from modeling.connector import init_connector
from modeling.model import SpatialMLLMForConditionalGeneration
from modeling.preprocess import FRAME_PRESETS, FrameSpec
from modeling.processor import SpatialMLLMProcessor
from modeling.tokenizer import build_byte_tokenizer
from modeling.vggt import is_head_tensor, name_list, strip_aggregator_prefix

logger = logging.getLogger(__name__)

DTYPES = {"float32": torch.float32, "fp32": torch.float32, "bfloat16": torch.bfloat16, "bf16": torch.bfloat16}
# Config keys of other writers that are not Qwen2.5-VL fields.
_FOREIGN_CONFIG_KEYS = ("spatial_config", "connector_config", "architectures", "model_type", "auto_map")


def map_name(name: str) -> str | None:
    """A released parameter name -> this model's name; None for tensors that are not used (VGGT heads)."""
    if name.startswith(("spatial_encoder.", "vggt.", "model.spatial_encoder.")):
        return None if is_head_tensor(name) else "model.spatial_encoder." + strip_aggregator_prefix(name)
    if name.startswith("connector."):
        return "model." + name
    if name.startswith("vggt_embedding_merger."):  # release v1.0's connector
        return "model.connector." + name.removeprefix("vggt_embedding_merger.")
    if name.startswith("visual."):
        return "model." + name
    if name.startswith("model.") and not name.startswith(
        ("model.language_model.", "model.visual.", "model.connector.", "model.spatial_encoder.")
    ):
        return "model.language_model." + name.removeprefix("model.")  # pre-4.52 Qwen text names
    return name


def _computed_buffers(model: SpatialMLLMForConditionalGeneration) -> None:
    """Buffers no checkpoint holds (RoPE inverse frequencies), left on meta by a meta-device build:
    materialised and computed by transformers' own `_init_weights`, as `from_pretrained` does."""
    for module in model.modules():
        if any(b.device.type == "meta" for b in module.buffers(recurse=False)):
            module.to_empty(device="cpu", recurse=False)
            model._init_weights(module)
    left = [name for name, b in model.named_buffers() if b.device.type == "meta"]
    if left:
        raise RuntimeError(f"buffers left uncomputed after loading: {name_list(left)}")


def config_from_dir(path: str | os.PathLike, preset: str | None = None) -> _Config:
    """The model config of a local directory (see module docstring for the layouts)."""
    raw = json.loads((Path(path) / "config.json").read_text())
    if raw.get("model_type") == _Config.model_type:
        config = _Config.from_dict(raw)
        if preset is not None and config.preset not in (None, preset):
            logger.warning(
                "%s was saved from preset %r; using its own config, not %r's", path, config.preset, preset
            )
        if preset is not None and build_config(preset).spatial_encoder != config.spatial_encoder:
            raise ValueError(
                f"{path} holds a spatial_encoder={config.spatial_encoder} model, not a {preset!r} one"
            )
        return config
    released_spatial = "spatial_config" in raw
    names = [] if released_spatial else tensor_names(checkpoint_files(path))
    v10 = any(n.startswith("vggt_embedding_merger.") for n in names)  # release v1.0 (no spatial config)
    if preset:
        encoder = build_config(preset).spatial_encoder
    else:
        encoder = "vggt" if released_spatial or any(n.startswith(("vggt.", "spatial_encoder.")) for n in names) else "none"
    # Sizes: the release's `spatial_config` over VGGT-1B defaults, else the preset's (v1.0: VGGT-1B).
    vggt = dataclasses.replace(VGGT_PRESETS.get(preset or "", VGGTConfig()))
    if released_spatial:
        known = {f.name for f in dataclasses.fields(VGGTConfig)}
        vggt = dataclasses.replace(vggt, **{k: v for k, v in raw["spatial_config"].items() if k in known})
    qwen = {k: v for k, v in raw.items() if k not in _FOREIGN_CONFIG_KEYS}
    spatial = dataclasses.asdict(vggt) if encoder == "vggt" else None
    connector = _connector_settings(raw.get("connector_config"), v10, path)
    return _Config.from_dict(
        {**qwen, "spatial_encoder": encoder, "spatial_config": spatial, "preset": preset, **connector}
    )


def _connector_settings(connector_config: dict | None, v10: bool, path) -> dict:
    """`connector_type` and `spatial_layer` from a release's `connector_config` (v1.1) or its
    tensor names (v1.0); a connector this model does not implement stops the load naming it."""
    if v10:
        return {"connector_type": "embedding_merger", "spatial_layer": -1}  # v1.0 reads the last layer
    if connector_config is None:
        return {}
    kind = connector_config.get("connector_type", "mlp_add")
    if kind != "mlp_add":
        raise ValueError(f"{path}: connector_config.connector_type={kind!r} is not supported (mlp_add is)")
    return {"connector_type": "mlp_add", "spatial_layer": int(connector_config.get("spatial_embeds_layer_idx", -1))}


def _mismatch_error(source: str, missing, unexpected, wrong) -> ValueError:
    lines = [f"weights in {source} do not match the model:"]
    if missing:
        lines.append(f"  missing ({len(missing)}): {name_list(sorted(missing))}")
    if unexpected:
        lines.append(f"  unexpected ({len(unexpected)}): {name_list(sorted(unexpected))}")
    if wrong:
        lines.append(f"  shape mismatch ({len(wrong)}): {name_list(sorted(wrong))}")
    return ValueError("\n".join(lines))


def load_weights_from_dir(
    config: _Config, path: str | os.PathLike, *, spatial_weights: str | os.PathLike | None, dtype: torch.dtype
) -> SpatialMLLMForConditionalGeneration:
    """Build the model on the meta device (no memory, no init cost), then assign every tensor from
    `path` (names mapped, read in `dtype`) and compute the buffers checkpoints do not hold."""
    from modeling.vggt_model import vggt_checkpoint_files

    with torch.device("meta"):
        model = SpatialMLLMForConditionalGeneration(config)
    tied = config.tie_word_embeddings

    def rename(name: str) -> str | None:
        target = map_name(name)
        return None if tied and target == "lm_head.weight" else target  # tied: the embedding is the head

    state, skipped = read_mapped(checkpoint_files(path), rename, dtype)
    skipped = [n for n in skipped if n != "lm_head.weight"]
    has_connector = any(k.startswith("model.connector.") for k in state)
    if spatial_weights is not None:
        if model.spatial_encoder is None:
            raise ValueError("spatial_weights given but this model has no spatial encoder")

        def encoder_name(name: str) -> str | None:
            return None if is_head_tensor(name) else "model.spatial_encoder." + strip_aggregator_prefix(name)

        encoder_state, heads = read_mapped(vggt_checkpoint_files(spatial_weights), encoder_name, dtype)
        skipped += heads
        state.update(encoder_state)
    if skipped:
        logger.info("skipped %d unused tensors (VGGT heads) from %s", len(skipped), path)
    expected = model.state_dict()
    allowed_missing = {"lm_head.weight"} if tied else set()
    # Qwen weights + separate VGGT weights: the connector does not exist yet and starts fresh.
    fresh_connector = model.connector is not None and spatial_weights is not None and not has_connector
    if fresh_connector:
        allowed_missing |= {k for k in expected if k.startswith("model.connector.")}
    missing = set(expected) - set(state) - allowed_missing
    unexpected = set(state) - set(expected)
    wrong = {k for k in set(state) & set(expected) if tuple(state[k].shape) != tuple(expected[k].shape)}
    if missing or unexpected or wrong:
        hint = ""
        if any(k.startswith("model.spatial_encoder.") for k in missing):
            hint = (
                " (a Qwen2.5-VL directory has no spatial encoder: pass spatial_weights=<VGGT-1B checkpoint>)"
            )
        raise _mismatch_error(f"{path}{hint}", missing, unexpected, wrong)
    model.load_state_dict(state, strict=False, assign=True)
    del state
    _computed_buffers(model)
    if fresh_connector:
        logger.warning("no connector weights in %s: the connector starts from a fresh init", path)
        model.model.connector.to_empty(device="cpu")
        init_connector(model.model.connector, config.text_config.initializer_range)
        model.model.connector.to(dtype)
    if tied:
        model.tie_weights()
    return model


def _cast_parameters(model: nn.Module, dtype: torch.dtype) -> None:
    """Cast parameters only: buffers such as RoPE inverse frequencies stay fp32 (bf16 would shift angles)."""
    for param in model.parameters():
        if param.is_floating_point() and param.dtype != dtype:
            param.data = param.data.to(dtype)


def _load_tokenizer(path: Path, config: _Config):
    """The directory's tokenizer (Qwen2Tokenizer for releases, the byte tokenizer for toy saves)."""
    try:
        # Passing the config stops AutoTokenizer from resolving config.json's model_type itself.
        return AutoTokenizer.from_pretrained(path, config=config, local_files_only=True)
    except (ValueError, KeyError, OSError):  # no tokenizer class it knows: read tokenizer.json directly
        pass
    if not (path / "tokenizer.json").exists():
        raise FileNotFoundError(
            f"no tokenizer files in {path}: save the processor there too (processor.save_pretrained)"
        )
    return PreTrainedTokenizerFast.from_pretrained(path, local_files_only=True)


def _chat_template_from_dir(path: Path, tokenizer) -> str | None:
    if (path / "chat_template.jinja").exists():
        return (path / "chat_template.jinja").read_text()
    if (path / "chat_template.json").exists():
        return json.loads((path / "chat_template.json").read_text()).get("chat_template")
    return getattr(tokenizer, "chat_template", None)


def _toy_generation_config(tokenizer) -> GenerationConfig:
    eos = [tokenizer.convert_tokens_to_ids("<|im_end|>"), tokenizer.convert_tokens_to_ids("<|endoftext|>")]
    return GenerationConfig(
        eos_token_id=eos, pad_token_id=tokenizer.pad_token_id, bos_token_id=tokenizer.pad_token_id
    )


def load(
    preset_or_path: str | os.PathLike,
    *,
    path: str | os.PathLike | None = None,
    spatial_weights: str | os.PathLike | None = None,
    spatial_encoder: str | None = None,
    dtype: str | torch.dtype | None = None,
    device: str | torch.device | None = None,
    min_pixels: int | None = None,
    max_pixels: int | None = None,
    seed: int | None = None,
) -> tuple[SpatialMLLMForConditionalGeneration, SpatialMLLMProcessor]:
    """A model (eval mode) and its processor.

    preset_or_path: a preset (`tiny`, `small`, `spatial-mllm-3b`, `qwen2.5-vl-3b`) or a directory.
    path: local weights for the preset (what `model.path` points at); tiny/small without it are
        random-initialised with the offline byte tokenizer; the 3B presets need it.
    spatial_weights: a VGGT checkpoint (`.safetensors`/`.pt`) for the spatial encoder, e.g. when
        `path` is a plain Qwen2.5-VL directory.
    spatial_encoder: override the preset's choice (`"vggt"`/`"none"`) for random-initialised presets.
    dtype: `float32`/`bfloat16` (or a torch dtype); default float32.
    min_pixels, max_pixels: per-frame pixel bounds overriding the preset's (preprocess.FrameSpec).
    seed: makes the random init of tiny/small reproducible without touching the global RNG.
    """
    dtype = DTYPES[dtype] if isinstance(dtype, str) else (dtype or torch.float32)
    preset, source = str(preset_or_path), path
    if os.path.isdir(preset_or_path):
        preset, source = None, preset_or_path
    elif preset not in PRESETS:
        raise ValueError(f"{preset_or_path!r} is neither a preset {PRESETS} nor a directory")
    if source is None:
        if preset not in ("tiny", "small"):
            raise ValueError(
                f"preset {preset!r} needs local weights: set model.path to a Qwen2.5-VL-3B or Spatial-MLLM directory"
            )
        if spatial_weights is not None:
            raise ValueError("spatial_weights needs path (the rest of the weights)")
        config = build_config(preset, spatial_encoder=spatial_encoder)
        with torch.random.fork_rng(devices=[]):
            if seed is not None:
                torch.manual_seed(seed)
            model = SpatialMLLMForConditionalGeneration(config)
        _cast_parameters(model, dtype)
        tokenizer = build_byte_tokenizer()
        model.generation_config = _toy_generation_config(tokenizer)
        processor = SpatialMLLMProcessor(tokenizer, FRAME_PRESETS[preset])
    else:
        source = Path(source)
        if spatial_encoder is not None:
            raise ValueError(
                "spatial_encoder applies to random-initialised presets; a directory's config decides"
            )
        config = config_from_dir(source, preset)
        model = load_weights_from_dir(config, source, spatial_weights=spatial_weights, dtype=dtype)
        tokenizer = _load_tokenizer(source, config)
        if (source / "generation_config.json").exists():
            model.generation_config = GenerationConfig.from_pretrained(source, local_files_only=True)
        else:
            model.generation_config = _toy_generation_config(tokenizer)
        processor = _processor_from_dir(source, preset, config, tokenizer)
    _override_pixels(processor, min_pixels, max_pixels)
    if device is not None:
        model.to(device)
    return model.eval(), processor


def _processor_from_dir(source: Path, preset: str | None, config: _Config, tokenizer) -> SpatialMLLMProcessor:
    default_frames = FRAME_PRESETS.get(preset or config.preset or "", FrameSpec())
    frames = SpatialMLLMProcessor.read_frame_spec(source, default_frames)
    return SpatialMLLMProcessor(tokenizer, frames, _chat_template_from_dir(source, tokenizer))


def _override_pixels(processor: SpatialMLLMProcessor, min_pixels: int | None, max_pixels: int | None) -> None:
    if min_pixels is not None or max_pixels is not None:
        processor.frames = dataclasses.replace(
            processor.frames,
            min_pixels=min_pixels or processor.frames.min_pixels,
            max_pixels=max_pixels or processor.frames.max_pixels,
        )


def load_processor(
    preset_or_path: str | os.PathLike,
    *,
    path: str | os.PathLike | None = None,
    min_pixels: int | None = None,
    max_pixels: int | None = None,
) -> SpatialMLLMProcessor:
    """The processor `load` would return with the same arguments, without building the model
    (for data pipelines that tokenise and preprocess frames away from the model)."""
    preset, source = str(preset_or_path), path
    if os.path.isdir(preset_or_path):
        preset, source = None, preset_or_path
    elif preset not in PRESETS:
        raise ValueError(f"{preset_or_path!r} is neither a preset {PRESETS} nor a directory")
    if source is None:
        if preset not in ("tiny", "small"):
            raise ValueError(
                f"preset {preset!r} needs local weights: set model.path to a Qwen2.5-VL-3B or Spatial-MLLM directory"
            )
        processor = SpatialMLLMProcessor(build_byte_tokenizer(), FRAME_PRESETS[preset])
    else:
        source = Path(source)
        config = config_from_dir(source, preset)
        processor = _processor_from_dir(source, preset, config, _load_tokenizer(source, config))
    _override_pixels(processor, min_pixels, max_pixels)
    return processor
