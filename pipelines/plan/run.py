"""`jobs.plan`: what the configured SFT and GRPO runs cost, before anything runs.

From the model config (a preset, or `model.path`'s config.json; built on the meta device for its
parameter counts, no weights read), the configured frames (count x `plan.frame_size`, resized as
the processor resizes them) and text lengths (measured on the run's records when they and a
tokenizer are at hand, else stated defaults), it prints FLOPs per SFT sample and per GRPO step
(generation, log-prob passes, update; with and without shared prefixes), GPU-hours at
`plan.mfu` of `plan.gpu_peak_tflops`, and per-GPU memory under the configured ZeRO stage against
`train.gpu_memory_gb`. No Ray, no GPU, no weights.
"""

from __future__ import annotations

from dataclasses import dataclass

from pipelines.config import RunConfig
from pipelines.config.plan import DEFAULT_ANSWER_TOKENS, DEFAULT_PROMPT_TEXT_TOKENS, PAPER_SFT_SAMPLES
from pipelines.plan import costs

GIB = 2**30


@dataclass
class TextLengths:
    sft_prompt: int  # text tokens of an SFT prompt besides the video
    grpo_prompt: int  # the same with GRPO's think-format instruction
    answer: int
    source: str  # where they come from, for the report


def model_config(cfg: RunConfig):
    """The model's config, as the jobs would build it, without weights."""
    import modeling
    from modeling.loading import config_from_dir

    if cfg.model.path:
        return config_from_dir(cfg.model.path, cfg.model.preset)
    return modeling.build_config(cfg.model.preset)


def parameter_counts(config, cfg: RunConfig) -> tuple[int, int]:
    """(all parameters, trainable ones under the recipe) of a meta-device build."""
    import torch

    import modeling

    with torch.device("meta"):
        model = modeling.SpatialMLLMForConditionalGeneration(config)
    modeling.trainable_parameter_groups(model)
    params = list(model.parameters())  # tied weights once
    return sum(p.numel() for p in params), sum(p.numel() for p in params if p.requires_grad)


def video_grid(cfg: RunConfig, config, frames: int, min_pixels: int | None = None,
               max_pixels: int | None = None) -> costs.Video:  # fmt: skip
    """The configured frames as the processor sizes them (a stage's own pixel bounds, if any)."""
    from modeling.preprocess import FRAME_PRESETS, FrameSpec, smart_resize
    from modeling.processor import SpatialMLLMProcessor

    spec = FRAME_PRESETS.get(cfg.model.preset, FrameSpec())
    if cfg.model.path:
        spec = SpatialMLLMProcessor.read_frame_spec(cfg.model.path, spec)
    width, height = cfg.plan.frame_width_height
    low, high = min_pixels or spec.min_pixels, max_pixels or spec.max_pixels
    h, w = smart_resize(height, width, spec.factor, low, high)
    return costs.Video(frames, h // spec.patch_size, w // spec.patch_size)


def measured_text(cfg: RunConfig) -> TextLengths:
    """Text lengths of up to plan.sample_records records of run_dir/dataset/train, with the
    model's tokenizer; stated defaults where either is missing (or plan.* sets them)."""
    p = cfg.plan
    stated = TextLengths(DEFAULT_PROMPT_TEXT_TOKENS, DEFAULT_PROMPT_TEXT_TOKENS + 45, DEFAULT_ANSWER_TOKENS,
                         "stated defaults")  # fmt: skip
    measured = _measure(cfg) or stated
    return TextLengths(
        sft_prompt=p.prompt_text_tokens or measured.sft_prompt,
        grpo_prompt=p.prompt_text_tokens or measured.grpo_prompt,
        answer=p.answer_tokens or measured.answer,
        source="plan.* settings" if p.prompt_text_tokens and p.answer_tokens else measured.source,
    )


def _measure(cfg: RunConfig) -> TextLengths | None:
    import pyarrow.parquet as pq

    folder = cfg.run_path / "dataset" / "train"
    files = sorted(folder.glob("*.parquet")) if folder.is_dir() else []
    if not files:
        return None
    try:
        import modeling

        processor = modeling.load_processor(cfg.model.path or cfg.model.preset)
    except (ValueError, FileNotFoundError, OSError):
        return None  # a 3B preset without model.path: no tokenizer here
    from pipelines import prompting

    records = pq.read_table(files[0]).slice(0, cfg.plan.sample_records).to_pylist()
    tok = processor.tokenizer

    def length(text: str) -> int:
        return len(tok(text)["input_ids"])

    def mean(values) -> int:
        values = list(values)
        return round(sum(values) / len(values))

    placeholder = 1  # the one <|video_pad|> the processor expands
    return TextLengths(
        sft_prompt=mean(length(prompting.prompt_text(processor, r)) - placeholder for r in records),
        grpo_prompt=mean(length(prompting.prompt_text(processor, r, think=True)) - placeholder for r in records),
        answer=mean(length(prompting.target_text(r, think=False)) + 1 for r in records),  # + <|im_end|>
        source=f"measured on {len(records)} records of {folder}",
    )


def sft_samples(cfg: RunConfig) -> tuple[int, str]:
    if cfg.plan.sft_samples:
        return cfg.plan.sft_samples, "plan.sft_samples"
    if cfg.sft.max_steps > 0:
        return cfg.sft.max_steps * cfg.sft.global_batch_size, "sft.max_steps x sft.global_batch_size"
    folder = cfg.run_path / "dataset" / "train"
    if folder.is_dir() and any(folder.glob("*.parquet")):
        import pyarrow.parquet as pq

        rows = sum(pq.ParquetFile(f).metadata.num_rows for f in folder.glob("*.parquet"))
        return round(rows * cfg.sft.num_epochs), f"{rows:,} records of {folder} x {cfg.sft.num_epochs:g} epoch(s)"
    epochs = cfg.sft.num_epochs
    return round(PAPER_SFT_SAMPLES * epochs), f"the paper's {PAPER_SFT_SAMPLES:,} records x {epochs:g} epoch(s)"


def plan(cfg: RunConfig) -> dict:
    """Every figure of the report, as numbers (FLOPs, GPU-hours, bytes)."""
    config = model_config(cfg)
    d = costs.dims_from_config(config)
    params, trainable = parameter_counts(config, cfg)
    text = measured_text(cfg)
    dtype_bytes = 2 if cfg.model.dtype == "bf16" else 4
    flops_per_gpu_hour = cfg.plan.mfu * cfg.plan.gpu_peak_tflops * 1e12 * 3600
    train = cfg.train

    s = cfg.sft
    sft_video = video_grid(cfg, config, s.num_frames, s.min_pixels, s.max_pixels)
    sft = costs.sft_sample(d, sft_video, text.sft_prompt, text.answer, s.gradient_checkpointing)
    samples, samples_from = sft_samples(cfg)
    sft_sequence = s.micro_batch_size * (sft_video.tokens(d) + text.sft_prompt + text.answer)
    sft_memory = costs.memory(d, params=params, trainable=trainable, dtype_bytes=dtype_bytes,
                              zero_stage=train.zero_stage, world=train.num_workers, sequence=sft_sequence,
                              logits=sft_sequence, kv_tokens=0, reference=False)  # fmt: skip

    g = cfg.grpo
    grpo_video = video_grid(cfg, config, g.num_frames)
    completion = cfg.plan.completion_tokens or max(1, g.max_completion_length // 2)
    rollouts = costs.Rollouts(grpo_video.tokens(d) + text.grpo_prompt, g.num_generations, completion)
    prompts_per_step = train.num_workers * g.prompts_per_step
    grpo = {}
    for shared in (True, False):
        per_prompt = costs.grpo_prompt(d, grpo_video, rollouts, shared=shared, reference=g.beta > 0,
                                       old_pass=g.num_iterations > 1, iterations=g.num_iterations,
                                       checkpointing=g.gradient_checkpointing)  # fmt: skip
        grpo[shared] = {k: v * prompts_per_step for k, v in per_prompt.items()}
        # the update's attention mask: one packed row per prompt, additive in the model dtype (shared),
        # or G rows of P + T, boolean (transformers' SDPA mask)
        row = rollouts.tokens(shared) if shared else rollouts.prompt + completion
        mask = g.micro_batch_prompts * (row * row * dtype_bytes if shared else g.num_generations * row * row)
        grpo[shared]["memory"] = costs.memory(
            d, params=params, trainable=trainable, dtype_bytes=dtype_bytes, zero_stage=train.zero_stage,
            world=train.num_workers, sequence=g.micro_batch_prompts * rollouts.tokens(shared),
            logits=g.micro_batch_prompts * g.num_generations * completion,
            kv_tokens=g.prompts_per_step * rollouts.tokens(shared), reference=g.beta > 0, mask=mask,
        )  # fmt: skip
    steps = g.max_steps if g.max_steps > 0 else 0
    return {
        "config": config, "dims": d, "params": params, "trainable": trainable, "text": text,
        "sft": {"flops_per_sample": sft, "samples": samples, "samples_from": samples_from, "video": sft_video,
                "gpu_hours": samples * sum(sft.values()) / flops_per_gpu_hour, "memory": sft_memory},
        "grpo": {"per_step": grpo, "steps": steps, "prompt_tokens": rollouts.prompt, "completion": completion,
                 "video": grpo_video, "prompts_per_step": prompts_per_step,
                 "gpu_hours": {k: steps * sum(v[p] for p in ("generate", "logprobs", "update")) / flops_per_gpu_hour
                               for k, v in grpo.items()}},
    }  # fmt: skip


def _tf(flops: float) -> str:
    return f"{flops / 1e12:,.1f} TFLOP"


def _gib(n: int) -> str:
    return f"{n / GIB:,.1f} GiB"


def memory_lines(memory: costs.Memory, checkpointing: bool, budget: float) -> list[str]:
    total = memory.total(checkpointing)
    other = memory.total(not checkpointing)
    fits = "fits" if total <= budget * GIB else "does NOT fit"
    gathered = f", weights gathered for generation {_gib(memory.gathered)}" if memory.gathered else ""
    return [
        f"    parameters {_gib(memory.parameters)}, gradients {_gib(memory.gradients)}, optimizer states "
        f"{_gib(memory.optimizer)}, frozen reference {_gib(memory.reference)}, KV cache {_gib(memory.kv_cache)}"
        f"{gathered}",
        f"    activations {_gib(memory.activations)} with gradient checkpointing, "
        f"{_gib(memory.activations_no_checkpointing)} without",
        f"    total {_gib(total)}, the larger of the update and generation ({'with' if checkpointing else 'without'} "
        "checkpointing, as configured; "
        f"{_gib(other)} {'without' if checkpointing else 'with'}): {fits} train.gpu_memory_gb = {budget:g}",
    ]


def report(cfg: RunConfig) -> str:
    r = plan(cfg)
    d, text, s, g = r["dims"], r["text"], r["sft"], r["grpo"]
    rate = f"{cfg.plan.mfu:.0%} MFU of {cfg.plan.gpu_peak_tflops:g} TFLOP/s"
    lines = [
        f"[plan] model {cfg.model.preset}{' from ' + cfg.model.path if cfg.model.path else ''}: "
        f"{r['params'] / 1e9:.3f} B parameters, {r['trainable'] / 1e9:.3f} B trained; {cfg.model.dtype}, "
        f"ZeRO-{cfg.train.zero_stage} over {cfg.train.num_workers} GPUs",
        f"[plan] text: SFT prompt {text.sft_prompt} tokens, GRPO prompt {text.grpo_prompt}, answer {text.answer} "
        f"({text.source})",
        f"[plan] SFT: {cfg.sft.num_frames} frames of {cfg.plan.frame_size} -> {s['video'].grid_h}x{s['video'].grid_w} "
        f"patches, {s['video'].tokens(d):,} video tokens",
        "  FLOPs per sample: " + ", ".join(f"{k} {_tf(v)}" for k, v in s["flops_per_sample"].items())
        + f"; total {_tf(sum(s['flops_per_sample'].values()))}",
        f"  {s['samples']:,} samples ({s['samples_from']}): {s['gpu_hours']:,.0f} GPU-hours at {rate}",
        "  memory per GPU (micro-batch of " + f"{cfg.sft.micro_batch_size}):",
        *memory_lines(s["memory"], cfg.sft.gradient_checkpointing, cfg.train.gpu_memory_gb),
        f"[plan] GRPO: {g['prompts_per_step']} prompts a step of {g['prompt_tokens']:,} tokens "
        f"({g['video'].tokens(d):,} video), G {cfg.grpo.num_generations} completions of {g['completion']} tokens "
        f"(mean), {g['steps']:,} steps",
    ]
    for shared in (True, False):
        per = g["per_step"][shared]
        label = "shared prefixes" if shared else "repeated prompts"
        mark = " (configured)" if shared == cfg.grpo.shared_prefix else ""
        lines += [
            f"  {label}{mark}: FLOPs per step: generation {_tf(per['generate'])}, log-prob passes "
            f"{_tf(per['logprobs'])}, update {_tf(per['update'])}; total "
            f"{_tf(per['generate'] + per['logprobs'] + per['update'])}; {g['gpu_hours'][shared]:,.0f} GPU-hours at {rate}"
            + (" (decoding is memory-bound: its share runs below that MFU)" if shared else ""),
            "  memory per GPU:",
            *memory_lines(per["memory"], cfg.grpo.gradient_checkpointing, cfg.train.gpu_memory_gb),
        ]
    return "\n".join(lines)


def run(cfg: RunConfig) -> None:
    print(report(cfg), flush=True)

