"""GPU check: a few bf16 ZeRO-3 SFT steps and GRPO steps of the `small` preset on one GPU, through
the same code the jobs run (`pipelines.sft.train.train_step`, `pipelines.grpo.step.policy_step`,
generation unwrapped from ZeRO-3), on random frames and a random-initialised model.

    python bench/gpu_check.py [--steps 4] [--frames 16] [--size 224] [--generations 8] [--tokens 128]
    python bench/gpu_check.py --device cpu --preset tiny --dtype fp32 --steps 1   # smoke test of this script

GRPO runs twice, with shared prefixes (grpo.shared_prefix, the default: each prompt computed once
for its G rollouts) and with the prompt repeated per rollout, so the first GPU run measures what
sharing buys there (`--shared-prefix on|off` runs one).

Prints per stage: median step time (after one warm-up step), tokens/s, peak GPU memory and an MFU
estimate = 6 x parameters x trained tokens / step time / the GPU's peak dense bf16 FLOP/s (a
rough upper-bound style figure: frozen encoders only run forward, generation is memory-bound).
Without CUDA (and without --device cpu) it prints one line and exits 0.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path
from types import SimpleNamespace

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

PEAK_BF16_FLOPS = {"H100": 989e12, "H200": 989e12, "A100": 312e12, "A800": 312e12, "L40S": 362e12}


def peak_flops(name: str) -> float | None:
    return next((v for k, v in PEAK_BF16_FLOPS.items() if k in name), None)


def run_config(args, stage: str, lr: float):
    """The jobs' own config for this check: ZeRO-3 on one worker, the stage's recipe section."""
    from pipelines.config import build_config

    return build_config(None, [
        f"model.preset={args.preset}", f"model.dtype={args.dtype}", "train.zero_stage=3", "train.num_workers=1",
        f"train.use_gpu={str(args.device == 'cuda').lower()}", f"{stage}.lr_llm={lr}", f"{stage}.lr_connector={lr}",
        f"{stage}.gradient_checkpointing={str(args.gradient_checkpointing).lower()}",
    ])  # fmt: skip


def engine_for(model, args, stage: str, *, micro_batch: int, accumulation: int, lr: float):
    """(engine, group names) built as the jobs build them (`deepspeed_setup.training_engine`)."""
    from pipelines.train.deepspeed_setup import training_engine

    cfg = run_config(args, stage, lr)
    return training_engine(model, cfg, getattr(cfg, stage), micro_batch_size=micro_batch,
                           accumulation=accumulation, total_updates=100)  # fmt: skip


def timed(fn, steps: int, sync) -> tuple[float, list]:
    """Median seconds of `steps` calls after one warm-up call, and the calls' results."""
    results, times = [fn()], []
    for _ in range(steps):
        sync()
        start = time.perf_counter()
        results.append(fn())
        sync()
        times.append(time.perf_counter() - start)
    return statistics.median(times), results


def sft_check(args, report) -> None:
    import torch

    import modeling
    from pipelines.sft.samples import collate, encode_sample
    from pipelines.sft.train import train_step
    from tests.modeling.helpers import random_video

    model, processor = modeling.load(args.preset, seed=0, dtype=args.dtype)
    model.config.use_cache = False
    n_params = sum(p.numel() for p in model.parameters())
    engine, names = engine_for(model, args, "sft", micro_batch=1, accumulation=2, lr=1e-5)
    record = {"id": "r", "question": "How many chairs are in this room?", "options": [], "problem_type": "numerical",
              "ground_truth": "4", "rationale": ""}  # fmt: skip
    frames = random_video(0, args.frames, args.size, args.size)
    arrays, _ = encode_sample(processor, record, frames, think=False, max_length=8192)
    micro = [{**collate([arrays], processor), "truncated": 0} for _ in range(2)]
    job = SimpleNamespace(engine=engine, plan=SimpleNamespace(world_size=1), trainer_state={"truncated": 0},
                          group_names=names)  # fmt: skip
    tokens = sum(int(b["attention_mask"].sum()) for b in micro)
    seconds, stats = timed(lambda: train_step(job, [dict(b) for b in micro]), args.steps, report.sync)
    report.line("sft", seconds, tokens, n_params,
                f"loss {stats[-1]['loss']:.3f}, grad norm {stats[-1]['grad_norm']:.3f}, "
                f"{tokens} tokens/step ({args.frames} frames {args.size}x{args.size}, 2 micro-batches)")  # fmt: skip
    del engine, model
    torch.cuda.empty_cache() if torch.cuda.is_available() else None


def grpo_check(args, report, shared_prefix: bool) -> None:
    import torch

    import modeling
    from pipelines import rl_math
    from pipelines.config.grpo import GRPOConfig
    from pipelines.grpo.rollout import MEDIA_TOKENS, PromptBatch, Sampling, generate
    from pipelines.grpo.step import policy_step, reference_logprobs
    from pipelines.train import deepspeed_setup
    from tests.modeling.helpers import random_video, video_prompt

    G = args.generations
    model, processor = modeling.load(args.preset, seed=0, dtype=args.dtype)
    reference, _ = modeling.load(args.preset, seed=0, dtype=args.dtype)
    reference.to(args.device).eval().requires_grad_(False)
    model.config.use_cache = True
    n_params = sum(p.numel() for p in model.parameters())
    engine, _ = engine_for(model, args, "grpo", micro_batch=G, accumulation=2, lr=1e-6)
    questions = ["How many chairs are in this room?", "Which is closer to the door, the sofa or the table?"]
    inputs = processor(text=[video_prompt(processor, q) for q in questions], padding_side="left",
                       videos=[random_video(i, args.frames, args.size, args.size) for i in range(2)])  # fmt: skip
    batch = PromptBatch(dict(inputs), [{"id": str(i)} for i in range(2)]).to(engine.device)
    tok = processor.tokenizer
    eos = tok.convert_tokens_to_ids("<|im_end|>")
    suppress = (*(tok.convert_tokens_to_ids(t) for t in MEDIA_TOKENS), eos)  # eos too: every completion full length
    sampling = Sampling(G, args.tokens, 1.0, eos, tok.pad_token_id, suppress_token_ids=suppress)
    grpo = GRPOConfig(num_generations=G, max_completion_length=args.tokens, prompts_per_step=2, micro_batch_prompts=1,
                      beta=0.04, lr_llm=1e-6, lr_connector=1e-6, shared_prefix=shared_prefix)  # fmt: skip
    phases: dict[str, list[float]] = {"generate": [], "reference": [], "update": []}

    def step():
        start = time.perf_counter()
        with deepspeed_setup.unwrapped_for_generation(engine) as module:
            module.eval()
            rollouts = generate(module, batch, sampling, shared_prefix=shared_prefix)
            module.train()
        report.sync()
        t1 = time.perf_counter()
        ref = reference_logprobs(reference, batch, rollouts, grpo, suppress)
        report.sync()
        t2 = time.perf_counter()
        advantages = rl_math.group_advantages(torch.rand(2 * G), G).to(engine.device)
        stats = policy_step(engine, batch, rollouts, advantages, None, ref, grpo, suppress)
        report.sync()
        t3 = time.perf_counter()
        for name, s in zip(phases, (t1 - start, t2 - t1, t3 - t2), strict=True):
            phases[name].append(s)
        return stats

    seconds, stats = timed(step, args.steps, report.sync)
    completion_tokens = 2 * G * args.tokens
    medians = ", ".join(f"{k} {statistics.median(v[1:] or v):.2f} s" for k, v in phases.items())
    prompt_tokens = int(batch.inputs["attention_mask"].sum())
    report.line("grpo shared prefix" if shared_prefix else "grpo repeated prompts", seconds, completion_tokens, n_params,
                f"{medians}; kl {stats[-1].get('kl', float('nan')):.2e}; {2 * G} completions x {args.tokens} tokens "
                f"after 2 prompts of {prompt_tokens // 2} tokens")  # fmt: skip


class Report:
    def __init__(self, device: str):
        import torch

        self.cuda = device == "cuda"
        self.name = torch.cuda.get_device_name() if self.cuda else "cpu"
        self.peak = peak_flops(self.name) if self.cuda else None

    def sync(self) -> None:
        import torch

        if self.cuda:
            torch.cuda.synchronize()

    def line(self, stage: str, seconds: float, tokens: int, n_params: int, extra: str) -> None:
        import torch

        memory = f"{torch.cuda.max_memory_allocated() / 2**30:.1f} GiB peak" if self.cuda else "peak memory n/a on CPU"
        mfu = f"MFU ~{6 * n_params * tokens / seconds / self.peak:.1%}" if self.peak else "MFU n/a"
        print(f"[{stage}] {seconds:.3f} s/step, {tokens / seconds:,.0f} tokens/s, {memory}, {mfu} "
              f"({n_params / 1e6:.0f} M parameters); {extra}", flush=True)  # fmt: skip
        if self.cuda:
            torch.cuda.reset_peak_memory_stats()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--frames", type=int, default=16)
    parser.add_argument("--size", type=int, default=224, help="frame height and width, pixels")
    parser.add_argument("--generations", type=int, default=8)
    parser.add_argument("--tokens", type=int, default=128, help="completion tokens per rollout")
    parser.add_argument("--preset", default="small")
    parser.add_argument("--dtype", default="bf16", choices=["bf16", "fp32"])
    parser.add_argument("--device", default="cuda", choices=["cuda", "cpu"])
    parser.add_argument("--no-gradient-checkpointing", dest="gradient_checkpointing", action="store_false")
    parser.add_argument("--shared-prefix", choices=("both", "on", "off"), default="both",
                        help="GRPO with shared prefixes, repeated prompts, or both (default)")
    args = parser.parse_args()
    import torch

    if args.device == "cuda" and not torch.cuda.is_available():
        print("gpu_check: no CUDA device visible; nothing to check (run it on a GPU machine)")
        return 0
    from tests.pipelines.deepspeed_runs import free_port, init_group

    if args.device == "cuda":
        import os

        os.environ.pop("DS_ACCELERATOR", None)
        torch.cuda.set_device(0)
    import torch.distributed as dist

    port = free_port()
    if args.device == "cuda":
        dist.init_process_group("nccl", init_method=f"tcp://127.0.0.1:{port}", rank=0, world_size=1)
    else:
        init_group(0, 1, port)
    report = Report(args.device)
    print(f"gpu_check: {report.name}, preset {args.preset}, {args.dtype}, ZeRO-3, torch {torch.__version__}")
    sft_check(args, report)
    for shared in {"both": (True, False), "on": (True,), "off": (False,)}[args.shared_prefix]:
        grpo_check(args, report, shared)
        torch.cuda.empty_cache() if args.device == "cuda" else None  # the check's engine and models are gone
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
