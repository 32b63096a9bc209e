"""GRPO benchmarks. Every figure is a ratio against a baseline measured in this run.

    python bench/bench_grpo.py [--steps 4] [--frames 8] [--prompts 2] [--generations 8] [--tokens 32]
                               [--trl-path DIR] [--skip-trl]
    python bench/bench_grpo.py --shape paper [--trl-path DIR] [--skip-trl]

`--shape paper` measures shared prefixes at the paper's GRPO shape on the `small` preset: 16
frames of 448x448 per prompt (2,048 video tokens, prompts of ~2,400 tokens), G = 8, completions of
exactly 128 tokens (eos suppressed), beta 0.04, gradient checkpointing on:
- one GRPO step with grpo.shared_prefix (each prompt computed once per pass) / the same step with
  the prompt repeated per rollout, and each phase's ratio (generation, reference log-probs, update;
  target: step <= 0.35), plus the peak memory of the update phase, shared / repeated, each in a
  fresh process;
- our shared-prefix step / TRL GRPOTrainer's on plain Qwen2.5-VL `small` with one image per prompt
  sized to the same number of visual tokens (target <= 0.4; needs --trl-path, as benchmark 3).

1. reward time as a share of GRPO step time (target <= 5%): the loop's own step
   (`pipelines.grpo.train.grpo_step`: generate, score on a Ray reward actor pool, reference
   log-probs, update) on the tiny preset, where the model is cheapest and the share largest;
2. the rollout phase (generation + reference log-probs, and + old log-probs as with
   num_iterations > 1) with each prompt's video features computed once and reused, vs recomputed
   for every rollout and every pass (target >= 2x), on the `small` preset;
3. our step time / TRL GRPOTrainer's (target <= 1.0) on the plain Qwen2.5-VL `small` preset (no
   spatial encoder), at equal model, prompts, G, completion length (eos suppressed, so every
   completion has exactly --tokens tokens), beta and optimizer. TRL takes images, not video, so
   each prompt holds one image (ours: the same image as a 2-frame video, the same 64 visual
   tokens). TRL is not a project dependency: install it apart, e.g.
   `pip install --target /tmp/trl_site --no-deps trl==1.16.0 accelerate`, and pass
   `--trl-path /tmp/trl_site`.

All on CPU, fp32, 2 torch threads; per-step figures are the median over --steps steps after one
warm-up step. Timings on a shared machine are noisy: read ratios, not seconds.
"""

from __future__ import annotations

import argparse
import copy
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
if "--trl-path" in sys.argv:  # before transformers is imported: it checks for accelerate once, at import
    sys.path.insert(0, sys.argv[sys.argv.index("--trl-path") + 1])
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
os.environ.setdefault("WANDB_MODE", "offline")

import numpy as np  # noqa: E402
import torch  # noqa: E402
from trl_baseline import pil_image, trl_step_times  # noqa: E402  (bench/, beside this file)

import modeling  # noqa: E402
from pipelines.config import RunConfig  # noqa: E402
from pipelines.grpo.logprobs import rollout_logprobs  # noqa: E402
from pipelines.grpo.rollout import PromptBatch, Rollouts, Sampling, completion_mask, generate  # noqa: E402
from pipelines.grpo.step import TorchEngine, reference_logprobs  # noqa: E402
from pipelines.grpo.train import Job, PhaseTimer, grpo_step  # noqa: E402
from pipelines.train.metrics_log import NullLogger  # noqa: E402

QUESTION = "How many chairs are in this room?"
SIDE = {"tiny": 112, "small": 224}


def frames(seed: int, count: int, side: int) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 256, (side, side, 3), dtype=np.uint8) for _ in range(count)]


def records(n: int) -> list[dict]:
    return [{"id": f"p{i}", "question": f"{QUESTION} ({i})", "problem_type": "numerical", "ground_truth": "3",
             "question_type": "object_counting", "options": []} for i in range(n)]  # fmt: skip


def prompt_batch(processor, n: int, num_frames: int, side: int) -> PromptBatch:
    from pipelines import prompting

    recs = records(n)
    texts = [prompting.prompt_text(processor, r, think=True) for r in recs]
    inputs = processor(text=texts, videos=[frames(i, num_frames, side) for i in range(n)], padding_side="left")
    return PromptBatch(dict(inputs), recs)


def run_config(args, **grpo) -> RunConfig:
    return RunConfig.model_validate({"grpo": {
        "num_generations": args.generations, "max_completion_length": args.tokens, "prompts_per_step": args.prompts,
        "micro_batch_prompts": args.prompts, "beta": 0.04, "lr_llm": 1e-6, "lr_connector": 1e-6,
        "reward_pool": {"num_actors": 1, "num_cpus": 0.5}, **grpo,
    }})  # fmt: skip


def fixed_length_sampling(cfg: RunConfig, tokenizer) -> Sampling:
    """The loop's sampling with eos suppressed: every completion is exactly max_completion_length."""
    from pipelines.grpo.rollout import sampling_from_config

    s = sampling_from_config(cfg.grpo, tokenizer)
    return Sampling(**{**s.__dict__, "suppress_token_ids": (*s.suppress_token_ids, s.eos_token_id, s.pad_token_id)})


def make_job(cfg: RunConfig, model, processor, pool, reference) -> Job:
    groups = modeling.trainable_parameter_groups(model, lr_llm=cfg.grpo.lr_llm, lr_connector=cfg.grpo.lr_connector)
    engine = TorchEngine(model, torch.optim.AdamW(groups), max_grad_norm=cfg.grpo.max_grad_norm)
    return Job(cfg=cfg, plan=None, engine=engine, reference=reference, processor=processor,
               sampling=fixed_length_sampling(cfg, processor.tokenizer), pool=pool, records=None,
               group_names=[g["name"] for g in groups], logger=NullLogger(), rank=0, world=1, step=0,
               stop_step=0, trainer_state={})  # fmt: skip


def our_steps(job: Job, batch: PromptBatch, steps: int) -> list[dict[str, float]]:
    """Phase seconds of steps + 1 loop steps (the first is a warm-up and dropped)."""
    out = []
    for _ in range(steps + 1):
        timer = PhaseTimer()
        grpo_step(job, batch, timer)
        out.append({**timer.seconds, "step": timer.total()})
    return out[1:]


def median(rows: list[dict[str, float]], key: str) -> float:
    return statistics.median(r.get(key, 0.0) for r in rows)


# --- 1. reward share ---


def bench_reward_share(args, pool) -> None:
    cfg = run_config(args)
    model, processor = modeling.load("tiny", seed=0)
    model.train()
    reference = copy.deepcopy(model).eval().requires_grad_(False)
    job = make_job(cfg, model, processor, pool, reference)
    rows = our_steps(job, prompt_batch(processor, args.prompts, 4, SIDE["tiny"]), args.steps)
    step, reward = median(rows, "step"), median(rows, "reward")
    phases = ", ".join(f"{k} {median(rows, k):.3f}s" for k in ("generate", "reward", "logprobs", "update"))
    print(f"1. reward share of step time (tiny, {args.prompts} prompts x {args.generations}, {args.tokens} tokens): "
          f"{reward / step:.1%} (reward {reward * 1000:.1f} ms of {step:.2f} s; {phases}); target <= 5%")  # fmt: skip


# --- 2. rollout phase: reuse vs recompute ---


def recompute_rollouts(model, batch: PromptBatch, sampling: Sampling) -> tuple[torch.Tensor, torch.Tensor]:
    """The baseline: every rollout is its own prompt with its own copy of the pixels, so the
    encoders run for each of the B*G rollouts at generation (and again in each log-prob pass)."""
    G, x = sampling.num_generations, batch.inputs
    rows = x["video_grid_thw"].prod(-1).tolist()
    expanded = {k: x[k].repeat_interleave(G, 0) for k in ("input_ids", "attention_mask", "mm_token_type_ids")}
    for k in ("pixel_values_videos", "spatial_pixel_values"):
        expanded[k] = torch.cat([chunk for chunk in torch.split(x[k], rows) for _ in range(G)])  # [B*G*rows, 1176]
    expanded["video_grid_thw"] = x["video_grid_thw"].repeat_interleave(G, 0)  # [B*G, 3]
    out = model.generate(**expanded, do_sample=True, temperature=sampling.temperature, top_k=0,
                         max_new_tokens=sampling.max_new_tokens, eos_token_id=sampling.eos_token_id,
                         pad_token_id=sampling.pad_token_id, suppress_tokens=list(sampling.suppress_token_ids))  # fmt: skip
    return out[:, x["input_ids"].shape[1] :], expanded  # [B*G, T]


@torch.no_grad()
def recompute_logprobs(model, expanded: dict, completion_ids: torch.Tensor, sampling: Sampling) -> torch.Tensor:
    T = completion_ids.shape[1]
    logits = model(
        input_ids=torch.cat([expanded["input_ids"], completion_ids], 1),
        attention_mask=torch.cat([expanded["attention_mask"], completion_mask(completion_ids, sampling.eos_token_id)], 1),
        pixel_values_videos=expanded["pixel_values_videos"], spatial_pixel_values=expanded["spatial_pixel_values"],
        video_grid_thw=expanded["video_grid_thw"], logits_to_keep=T + 1, use_cache=False,
    ).logits[:, :-1]  # fmt: skip
    return torch.log_softmax(logits.float() / sampling.temperature, -1).gather(-1, completion_ids.unsqueeze(-1))


def bench_reuse(args) -> None:
    cfg = run_config(args)
    model, processor = modeling.load("small", seed=0)
    reference = copy.deepcopy(model).eval().requires_grad_(False)
    sampling = fixed_length_sampling(cfg, processor.tokenizer)
    batch = prompt_batch(processor, args.prompts, args.frames, SIDE["small"])
    times: dict[str, list[float]] = {"reuse_gen": [], "reuse_ref": [], "reuse_old": [], "recompute_gen": [],
                                     "recompute_pass": []}  # fmt: skip
    for i in range(args.reuse_repeats):
        torch.manual_seed(i)
        t0 = time.perf_counter()
        rollouts: Rollouts = generate(model, batch, sampling)
        t1 = time.perf_counter()
        reference_logprobs(reference, batch, rollouts, cfg.grpo, sampling.suppress_token_ids)  # encodes B videos
        t2 = time.perf_counter()
        rollout_logprobs(model, rollouts, temperature=1.0, batch_size=cfg.grpo.logprob_batch_size,
                         suppress_token_ids=sampling.suppress_token_ids)  # old pass: no encoder at all
        t3 = time.perf_counter()
        with torch.no_grad():
            completion_ids, expanded = recompute_rollouts(model, batch, sampling)
        t4 = time.perf_counter()
        recompute_logprobs(reference, expanded, completion_ids, sampling)
        t5 = time.perf_counter()
        times["reuse_gen"].append(t1 - t0)
        times["reuse_ref"].append(t2 - t1)
        times["reuse_old"].append(t3 - t2)
        times["recompute_gen"].append(t4 - t3)
        times["recompute_pass"].append(t5 - t4)
    m = {k: min(v) for k, v in times.items()}  # best of: the stable statistic on a shared box
    shape = f"small, {args.prompts} prompts x {args.generations} rollouts, {args.frames} frames 224x224, {args.tokens} tokens"
    for label, old in (("generation + reference pass (defaults)", 0), ("+ old-log-prob pass (num_iterations > 1)", 1)):
        reuse = m["reuse_gen"] + m["reuse_ref"] + old * m["reuse_old"]
        recompute = m["recompute_gen"] + (1 + old) * m["recompute_pass"]
        print(f"2. rollout phase, {label} ({shape}): recompute {recompute:.1f} s / reuse {reuse:.1f} s = "
              f"{recompute / reuse:.2f}x; target >= 2x")  # fmt: skip
    print(f"   generation alone {m['recompute_gen'] / m['reuse_gen']:.2f}x, reference pass "
          f"{m['recompute_pass'] / m['reuse_ref']:.2f}x, old pass {m['recompute_pass'] / m['reuse_old']:.2f}x "
          f"(best of {args.reuse_repeats})")


# --- 3. vs TRL ---


def bench_trl(args, pool) -> None:
    try:
        import trl  # noqa: F401
    except ImportError as e:
        print(f"3. vs TRL: not run: trl does not import ({e}); install it apart and pass --trl-path (see --help)")
        return
    cfg = run_config(args)
    recs = records(args.prompts)
    images = [frames(i, 1, SIDE["small"])[0] for i in range(args.prompts)]
    try:
        trl_times, trl_lengths = trl_step_times(args, cfg, [pil_image(i) for i in images], recs)
    except ImportError as e:  # report what stopped it, as the issue asks
        print(f"3. vs TRL: TRL's GRPOTrainer failed on the plain small preset: {type(e).__name__}: {e}")
        return
    ours, _ = plain_qwen_steps(args, cfg, pool, images, recs)
    theirs = statistics.median(trl_times)
    print(f"3. step time, ours / TRL GRPOTrainer (plain Qwen2.5-VL small, {args.prompts} prompts x "
          f"{args.generations}, 1 image, {args.tokens} tokens, beta {cfg.grpo.beta}): {ours:.2f} s / {theirs:.2f} s "
          f"= {ours / theirs:.2f}; target <= 1.0 (TRL's mean completion lengths {trl_lengths})")  # fmt: skip


def plain_qwen_steps(args, cfg, pool, images, recs, max_pixels=None, checkpointing=False) -> tuple[float, int]:
    """(median seconds of our loop's step, prompt tokens) on the plain `small` preset, each image
    shown as a 2-frame video of itself (the image's own visual tokens)."""
    from pipelines import prompting

    model, processor = modeling.load("small", seed=0, spatial_encoder="none", max_pixels=max_pixels)
    if checkpointing:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    model.train()
    reference = copy.deepcopy(model).eval().requires_grad_(False)
    job = make_job(cfg, model, processor, pool, reference)
    texts = [prompting.prompt_text(processor, r, think=True) for r in recs]
    inputs = processor(text=texts, videos=[[img, img] for img in images], padding_side="left")
    rows = our_steps(job, PromptBatch(dict(inputs), recs), args.steps)
    return median(rows, "step"), inputs["input_ids"].shape[1]


# --- paper shape: shared prefixes ---

PAPER = {"frames": 16, "side": 448, "generations": 8, "tokens": 128, "prompts": 2}


def paper_batch(processor, prompts: int) -> PromptBatch:
    """`prompts` left-padded think-format prompts of different lengths, 16 frames of 448x448 each."""
    from pipelines import prompting

    recs = records(prompts)
    for i, r in enumerate(recs):
        r["question"] += " Count every one you can see." * i
    texts = [prompting.prompt_text(processor, r, think=True) for r in recs]
    videos = [frames(i, PAPER["frames"], PAPER["side"]) for i in range(prompts)]
    return PromptBatch(dict(processor(text=texts, videos=videos, padding_side="left")), recs)


def paper_config(args, shared: bool) -> RunConfig:
    return run_config(args, shared_prefix=shared, gradient_checkpointing=True)


def shared_prefix_phases(args, model, reference, batch: PromptBatch, sampling: Sampling, shared: bool) -> dict:
    """Seconds of one step's phases (fresh optimizer over a copy of `model`, so both paths start
    from the same weights): generation, reference log-probs, the update (forward, backward, step)."""
    from pipelines.grpo.step import policy_step

    cfg = paper_config(args, shared)
    policy = copy.deepcopy(model).train()
    policy.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    groups = modeling.trainable_parameter_groups(policy, lr_llm=1e-6, lr_connector=1e-6)
    engine = TorchEngine(policy, torch.optim.AdamW(groups), max_grad_norm=1.0)
    out = {}
    torch.manual_seed(0)
    t0 = time.perf_counter()
    policy.eval()
    rollouts = generate(policy, batch, sampling, shared_prefix=shared)
    policy.train()
    t1 = time.perf_counter()
    ref = reference_logprobs(reference, batch, rollouts, cfg.grpo, sampling.suppress_token_ids)
    t2 = time.perf_counter()
    advantages = torch.randn(rollouts.num_rollouts)
    policy_step(engine, batch, rollouts, advantages, None, ref, cfg.grpo, sampling.suppress_token_ids)
    t3 = time.perf_counter()
    out.update(generate=t1 - t0, logprobs=t2 - t1, update=t3 - t2, step=t3 - t0)
    out["tokens"] = rollouts.completion_ids.shape[1]
    return out


def update_peak_memory(args, shared: bool) -> float:
    """Peak MiB of one update phase above what the process held before it, in a fresh process."""
    import json
    import subprocess

    code = (f"import sys; sys.argv = ['bench', '--prompts', '{args.prompts}']; sys.path.insert(0, {str(Path(__file__).parent)!r}); "
            f"import bench_grpo, json; print(json.dumps(bench_grpo.measure_update_memory({shared})))")  # fmt: skip
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=3600)
    if proc.returncode:
        raise RuntimeError(proc.stderr[-3000:])
    return json.loads(proc.stdout.strip().splitlines()[-1])


def measure_update_memory(shared: bool) -> float:
    from pipelines.grpo.step import policy_step

    torch.set_num_threads(2)
    args = argparse.Namespace(prompts=PAPER["prompts"], generations=PAPER["generations"], tokens=PAPER["tokens"])
    cfg = paper_config(args, shared)
    model, processor = modeling.load("small", seed=0, max_pixels=PAPER["side"] ** 2)
    model.train().gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    batch = paper_batch(processor, args.prompts)
    sampling = fixed_length_sampling(cfg, processor.tokenizer)
    G, T, x = args.generations, args.tokens, batch.inputs
    completions = torch.randint(0, 250, (args.prompts * G, T), generator=torch.Generator().manual_seed(0))
    frozen = model.frozen_video_features(x["pixel_values_videos"], x["video_grid_thw"], x["spatial_pixel_values"])
    with torch.no_grad():
        embeds = model.fuse_frozen(frozen)
    rollouts = Rollouts(x["input_ids"].repeat_interleave(G, 0), x["attention_mask"].repeat_interleave(G, 0),
                        completions, torch.ones_like(completions), embeds, x["video_grid_thw"], G,
                        frozen=frozen if shared else None)  # fmt: skip
    groups = modeling.trainable_parameter_groups(model, lr_llm=1e-6, lr_connector=1e-6)
    engine = TorchEngine(model, torch.optim.AdamW(groups), max_grad_norm=1.0)
    reference = torch.zeros(args.prompts * G, T)  # the KL term's input (beta 0.04), as the loop passes it
    with open("/proc/self/statm") as f:
        before = int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
    with open("/proc/self/clear_refs", "w") as f:  # the peak so far (the encoders' attention) is not the update's
        f.write("5")
    policy_step(engine, batch, rollouts, torch.randn(args.prompts * G), None, reference, cfg.grpo,
                sampling.suppress_token_ids)  # fmt: skip
    with open("/proc/self/status") as f:
        peak = next(int(line.split()[1]) for line in f if line.startswith("VmHWM:")) / 1024
    return peak - before


def bench_paper_shape(args, pool) -> None:
    args.generations, args.tokens, args.prompts = PAPER["generations"], PAPER["tokens"], PAPER["prompts"]
    model, processor = modeling.load("small", seed=0, max_pixels=PAPER["side"] ** 2)
    reference = copy.deepcopy(model).eval().requires_grad_(False)
    batch = paper_batch(processor, args.prompts)
    sampling = fixed_length_sampling(paper_config(args, True), processor.tokenizer)
    P = batch.inputs["input_ids"].shape[1]
    video = int(batch.inputs["video_grid_thw"][0].prod()) // 4
    parts = set(args.paper_parts.split(","))
    if "step" in parts:
        phases = {shared: shared_prefix_phases(args, model, reference, batch, sampling, shared) for shared in (True, False)}
        s, r = phases[True], phases[False]
        shape = (f"small, {args.prompts} prompts of {P} tokens ({video} video tokens, 16 frames 448x448) x G "
                 f"{args.generations}, {s['tokens']} completion tokens")  # fmt: skip
        print(f"shared-prefix GRPO step / repeated: {s['step'] / r['step']:.3f} ({s['step']:.1f} s / {r['step']:.1f} s; "
              f"{shape}); target <= 0.35")  # fmt: skip
        for phase in ("generate", "logprobs", "update"):
            print(f"   {phase}: {s[phase] / r[phase]:.3f} ({s[phase]:.1f} s / {r[phase]:.1f} s)")
    if "memory" in parts:
        memory = {shared: update_peak_memory(args, shared) for shared in (True, False)}
        print(f"   update peak memory, shared / repeated: {memory[True] / memory[False]:.3f} "
              f"({memory[True]:.0f} MiB / {memory[False]:.0f} MiB above what the process held before it, fresh processes)")
    if "trl" in parts and not args.skip_trl:
        bench_trl_paper(args, pool, P)


def bench_trl_paper(args, pool, prompt_tokens: int) -> None:
    """Our shared-prefix step vs TRL's on plain Qwen2.5-VL `small`: one 1792x896 image per prompt
    (128 x 64 patches -> 2,048 visual tokens, the paper-shape video's count); ours sees the same
    image as a 2-frame video (the same 2,048 tokens). Gradient checkpointing on in both."""
    try:
        import trl  # noqa: F401
    except ImportError as e:
        print(f"   vs TRL: not run: trl does not import ({e}); install it apart and pass --trl-path (see --help)")
        return
    width, height = 1792, 896
    cfg = paper_config(args, True)
    recs = records(args.prompts)
    rng = np.random.default_rng(0)
    images = [rng.integers(0, 256, (height, width, 3), dtype=np.uint8) for _ in range(args.prompts)]
    try:
        trl_times, _ = trl_step_times(args, cfg, [pil_image(i) for i in images], recs, max_pixels=width * height,
                                      gradient_checkpointing=True)  # fmt: skip
    except ImportError as e:
        print(f"   vs TRL: TRL's GRPOTrainer failed: {type(e).__name__}: {e}")
        return
    ours, prompt = plain_qwen_steps(args, cfg, pool, images, recs, max_pixels=width * height, checkpointing=True)
    theirs = statistics.median(trl_times)
    print(f"   shared-prefix step / TRL GRPOTrainer (plain small, {prompt} prompt tokens vs "
          f"{prompt_tokens} with video, G {args.generations}, {args.tokens} tokens): {ours:.1f} s / {theirs:.1f} s "
          f"= {ours / theirs:.3f}; target <= 0.4")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=None, help="timed steps after one warm-up step (4; 1 at --shape paper)")
    parser.add_argument("--prompts", type=int, default=2, help="prompts per step")
    parser.add_argument("--generations", type=int, default=8, help="G, rollouts per prompt")
    parser.add_argument("--tokens", type=int, default=32, help="completion length (eos suppressed)")
    parser.add_argument("--frames", type=int, default=8, help="frames per video in benchmark 2")
    parser.add_argument("--reuse-repeats", type=int, default=2, help="repeats of benchmark 2 (best of)")
    parser.add_argument("--trl-path", default=None, help="a folder holding trl and accelerate (pip --target)")
    parser.add_argument("--skip-trl", action="store_true")
    parser.add_argument("--only", type=int, choices=(1, 2, 3), default=None, help="run one benchmark")
    parser.add_argument("--tmp", default="/tmp/bench_grpo")
    parser.add_argument("--shape", choices=("default", "paper"), default="default",
                        help="paper: the shared-prefix benchmark at the paper's GRPO shape (see above)")
    parser.add_argument("--paper-parts", default="step,memory,trl", help="with --shape paper: which of step, memory, trl")
    args = parser.parse_args()
    args.steps = args.steps or (1 if args.shape == "paper" else 4)
    torch.set_num_threads(2)
    import ray

    from pipelines.reward_actors import RewardPool, RewardPoolConfig

    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False)
    with RewardPool(RewardPoolConfig(num_actors=1, num_cpus=0.5)) as pool:
        pool.wait_ready()
        if args.shape == "paper":
            bench_paper_shape(args, pool)
        elif args.only in (None, 1):
            bench_reward_share(args, pool)
        if args.shape == "default" and args.only in (None, 2):
            bench_reuse(args)
        if args.shape == "default" and args.only in (None, 3) and not args.skip_trl:
            bench_trl(args, pool)
    ray.shutdown()


if __name__ == "__main__":
    main()
