"""The 3B model at real size on this box: a random-weight Spatial-MLLM v1.1 checkpoint loaded with
`model.path` as the jobs load it, then every phase of training and evaluation at real resolution.

    python bench/real_size_check.py [--dir /tmp/spatial_mllm_3b_random] [--frames 4 16] [--keep]

1. Writes (once; reused while its files are there) a `spatial-mllm-3b` checkpoint in the v1.1
   release layout: every tensor of the authors' listing (tests/modeling/fixtures, VGGT's heads
   included), random bf16, safetensors shards + index, the release's config.json, a Qwen2.5-VL
   generation_config.json and preprocessor_config.json, and a stand-in tokenizer with Qwen's
   vocabulary size and special-token ids (byte tokens; Qwen's BPE merges cannot be downloaded).
2. Loads it through `pipelines.grpo.train.load_policy` (what jobs.grpo / jobs.sft call:
   `modeling.load(preset, path=model.path, dtype=bf16)`), reporting seconds and peak RSS against
   the model's bf16 bytes.
3. For each frame count, at 640x480 (the 3B frame preset: 476x644): both encoders and the
   connector; one generation of 16 tokens with G = 2 (`pipelines.grpo.rollout.generate`, shared
   prefix); one log-prob pass with backward through the language model and connector, gradient
   checkpointing on (`shared_prefix_logprobs` on generation's frozen encoder outputs, as the update
   runs it); one evaluation
   answer (`Predictor.answer`, greedy, 16 tokens).

Prints video tokens, shapes, seconds per phase and peak RSS per phase (reset between phases via
/proc/self/clear_refs); exits non-zero on any failure. Not part of CI: ~10 GB on disk, ~20 GB RAM.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import time
import traceback
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

GIB = 2**30
FIXTURES = REPO / "tests" / "modeling" / "fixtures"
QWEN_SPECIALS = ("<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|object_ref_start|>", "<|object_ref_end|>",
                 "<|box_start|>", "<|box_end|>", "<|quad_start|>", "<|quad_end|>", "<|vision_start|>",
                 "<|vision_end|>", "<|vision_pad|>", "<|image_pad|>", "<|video_pad|>")  # ids 151643..151656  # fmt: skip
QWEN_GENERATION_CONFIG = {"bos_token_id": 151643, "pad_token_id": 151643, "do_sample": True,
                          "eos_token_id": [151645, 151643], "repetition_penalty": 1.05, "temperature": 0.1,
                          "top_p": 0.001, "top_k": 1}  # Qwen2.5-VL-3B-Instruct's  # fmt: skip
SHARD_BYTES = 2 * GIB


def peak_rss_gib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


def reset_peak() -> None:
    """Reset the kernel's high-water mark of this process (VmHWM) so the next phase has its own."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        pass


def phase_peak_gib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 2**20
    return peak_rss_gib()


def qwen_sized_tokenizer():
    """Bytes (ids 0-255), fillers up to 151,642, then Qwen's special tokens at their ids."""
    from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    from modeling.tokenizer import CHAT_TEMPLATE, _byte_to_unicode

    vocab = {ch: b for b, ch in _byte_to_unicode().items()}
    vocab.update({f"<|filler_{i}|>": i for i in range(256, 151643)})
    backend = Tokenizer(models.BPE(vocab=vocab, merges=[]))
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    backend.decoder = decoders.ByteLevel()
    backend.add_special_tokens([AddedToken(t, special=True, normalized=False) for t in QWEN_SPECIALS])
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=backend, eos_token="<|im_end|>", pad_token="<|endoftext|>",
                                        chat_template=CHAT_TEMPLATE, model_max_length=32768)  # fmt: skip
    assert tokenizer.convert_tokens_to_ids("<|video_pad|>") == 151656
    return tokenizer


def random_tensor(name: str, shape: list[int], generator):
    import torch

    if len(shape) == 1 and ("norm" in name or name.endswith(("ln_q.weight", "gamma"))):
        return torch.ones(shape, dtype=torch.bfloat16)
    if name.endswith(".bias"):
        return torch.zeros(shape, dtype=torch.bfloat16)
    return (torch.randn(shape, generator=generator) * 0.02).to(torch.bfloat16)


def write_checkpoint(directory: Path) -> Path:
    """The random v1.1-layout checkpoint (see module docstring); skipped when already complete."""
    import torch
    from safetensors.torch import save_file

    if (directory / "complete").exists():
        return directory
    directory.mkdir(parents=True, exist_ok=True)
    listing = json.loads((FIXTURES / "v1.1_3b_state_dict_shapes.json").read_text())
    generator = torch.Generator().manual_seed(0)
    weight_map, shard, shard_bytes, files = {}, {}, 0, []

    def flush():
        nonlocal shard, shard_bytes
        name = f"model-{len(files) + 1:05d}.safetensors"
        save_file(shard, directory / name, metadata={"format": "pt"})
        weight_map.update(dict.fromkeys(shard, name))
        files.append(name)
        shard, shard_bytes = {}, 0

    for name, shape in listing.items():
        shard[name] = random_tensor(name, shape, generator)
        shard_bytes += shard[name].numel() * 2
        if shard_bytes >= SHARD_BYTES:
            flush()
    if shard:
        flush()
    total = sum(int(torch.Size(s).numel()) * 2 for s in listing.values())
    (directory / "model.safetensors.index.json").write_text(
        json.dumps({"metadata": {"total_size": total}, "weight_map": weight_map}, indent=1))
    (directory / "config.json").write_text((FIXTURES / "v1.1_config.json").read_text())
    (directory / "generation_config.json").write_text(json.dumps(QWEN_GENERATION_CONFIG))
    qwen_sized_tokenizer().save_pretrained(directory)
    (directory / "preprocessor_config.json").write_text(json.dumps({
        "min_pixels": 3136, "max_pixels": 12845056, "patch_size": 14, "temporal_patch_size": 2, "merge_size": 2,
        "image_mean": [0.48145466, 0.4578275, 0.40821073], "image_std": [0.26862954, 0.26130258, 0.27577711],
        "image_processor_type": "Qwen2VLImageProcessor", "processor_class": "Qwen2_5_VLProcessor",
    }))  # fmt: skip
    (directory / "complete").write_text("")
    return directory


def run_config(directory: Path):
    from pipelines.config import build_config

    return build_config(None, ["model.preset=spatial-mllm-3b", f"model.path={directory}", "model.dtype=bf16",
                               "grpo.num_generations=2", "grpo.max_completion_length=16", "grpo.beta=0",
                               "grpo.gradient_checkpointing=true"])  # fmt: skip


class Phases:
    def __init__(self):
        self.failed = False

    def run(self, label: str, fn):
        import gc

        gc.collect()
        reset_peak()
        start = time.perf_counter()
        try:
            detail = fn()
        except Exception:  # noqa: BLE001 - report every phase, exit non-zero at the end
            self.failed = True
            print(f"  {label}: FAILED\n{traceback.format_exc()}", flush=True)
            return None
        print(f"  {label}: {time.perf_counter() - start:.1f} s, peak RSS {phase_peak_gib():.1f} GiB; {detail[0]}",
              flush=True)  # fmt: skip
        return detail[1]


def check(frames_count: int, model, processor, cfg, phases: Phases) -> None:
    import numpy as np
    import torch

    from pipelines.evaluate.models import model_source
    from pipelines.evaluate.predictor import Predictor
    from pipelines.grpo.logprobs import rollout_prompts, shared_prefix_logprobs
    from pipelines.grpo.prompts import prompt_batch
    from pipelines.grpo.rollout import generate, sampling_from_config

    rng = np.random.default_rng(frames_count)
    base = rng.integers(0, 256, (480, 640, 3), dtype=np.uint8)
    frames = [np.roll(base, 9 * i, axis=1) for i in range(frames_count)]  # a panning camera
    fps = frames_count / 60.0  # sampled from a 60 s video
    record = {"id": "q", "question": "How many chairs are in this room?", "options": [], "problem_type": "numerical",
              "ground_truth": "4", "question_type": "object_counting"}  # fmt: skip
    batch = prompt_batch(processor, [record], [frames], think=True, fps=[fps])
    x = batch.inputs
    video_tokens = int(x["video_grid_thw"].prod()) // 4
    print(f"[{frames_count} frames of 640x480] grid {x['video_grid_thw'].tolist()[0]}, {video_tokens:,} video tokens, "
          f"prompt {x['input_ids'].shape[1]:,} tokens, pixel_values_videos {tuple(x['pixel_values_videos'].shape)}, "
          f"second_per_grid_ts {x['second_per_grid_ts'].tolist()}", flush=True)  # fmt: skip

    def encoders():
        with torch.no_grad():
            embeds = model.encode_videos(x["pixel_values_videos"], x["video_grid_thw"], x["spatial_pixel_values"])
        return f"video_embeds {tuple(embeds.shape)} {embeds.dtype}, finite {bool(torch.isfinite(embeds).all())}", embeds

    phases.run("encoders + connector", encoders)

    sampling = sampling_from_config(cfg.grpo, processor.tokenizer)

    def rollouts():
        torch.manual_seed(0)
        r = generate(model, batch, sampling)
        return f"completions {tuple(r.completion_ids.shape)}, lengths {r.lengths.tolist()}", r

    r = phases.run("generation, G = 2 x 16 tokens (shared prefix)", rollouts)

    def logprob_backward():
        model.train()
        try:
            prompts = rollout_prompts(model.config, r, slice(0, 1))
            # as the update runs it (pipelines/grpo/step.py): generation's frozen encoder outputs fused
            # with grad through the connector, so the frozen encoders are not run a second time
            logp, _ = shared_prefix_logprobs(
                model, **prompts, completion_ids=r.completion_ids, completion_mask=r.completion_mask,
                temperature=1.0, dtype=torch.bfloat16, suppress_token_ids=sampling.suppress_token_ids,
                frozen_video=r.frozen.select([0]), video_grid_thw=x["video_grid_thw"],
            )  # fmt: skip
            (logp * r.completion_mask).sum().backward()
            llm = model.model.language_model.layers[0].mlp.down_proj.weight.grad
            conn = next(model.connector.parameters()).grad
            detail = (f"log-probs {tuple(logp.shape)} mean {float(logp[r.completion_mask.bool()].mean()):.2f}; "
                      f"grad norms: LLM layer 0 {float(llm.float().norm()):.3g}, connector {float(conn.float().norm()):.3g}")  # fmt: skip
        finally:
            model.zero_grad(set_to_none=True)
            model.eval()
        return detail, None

    if r is not None:
        phases.run("log-prob pass + backward (LLM + connector, checkpointing)", logprob_backward)

    def answer():
        predictor = Predictor.around(model, processor, model_source(cfg), max_new_tokens=16)  # no second copy
        question = {"index": 0, **{k: record[k] for k in ("question", "options", "problem_type")}}
        out = predictor.answer(np.stack(frames), [question], fps=fps)
        return f"answer {out[0]!r:.60}", out

    phases.run("evaluation answer (greedy, 16 tokens)", answer)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dir", default="/tmp/spatial_mllm_3b_random", help="where the random checkpoint goes")
    parser.add_argument("--frames", type=int, nargs="+", default=[4, 16])
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 2)
    args = parser.parse_args()
    import torch

    torch.set_num_threads(args.threads)
    from pipelines.grpo.train import load_policy

    phases = Phases()
    start = time.perf_counter()
    directory = write_checkpoint(Path(args.dir))
    size = sum(f.stat().st_size for f in directory.glob("*.safetensors"))
    print(f"checkpoint {directory}: {size / GIB:.1f} GiB of safetensors ({time.perf_counter() - start:.0f} s to have it)",
          flush=True)  # fmt: skip
    cfg = run_config(directory)
    loaded = phases.run("load (model.path, bf16)", lambda: ("", load_policy(cfg, {"dir": None})))
    if loaded is None:
        return 1
    model, processor = loaded
    model_bytes = sum(p.numel() * p.element_size() for p in model.parameters())
    print(f"  model: {sum(p.numel() for p in model.parameters()) / 1e9:.3f} B parameters, {model_bytes / GIB:.2f} GiB "
          f"in bf16; load peak RSS / model bytes = {phase_peak_gib() * GIB / model_bytes:.2f} (bf16 weights stay "
          "memory-mapped until used; bench/bench_load_memory.py reads them all)", flush=True)  # fmt: skip
    import modeling

    modeling.trainable_parameter_groups(model)  # the recipe's trainable parts (encoders frozen)
    model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    model.config.use_cache = True
    for count in args.frames:
        check(count, model, processor, cfg, phases)
    print(f"process peak RSS {peak_rss_gib():.1f} GiB; {time.perf_counter() - start:.0f} s in all; "
          f"{'FAILED' if phases.failed else 'ok'}", flush=True)  # fmt: skip
    return 1 if phases.failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
