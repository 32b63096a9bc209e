"""Peak memory of GRPO's log-prob phase: ours (`selective_logprobs`, fp32 one slice at a time)
vs the naive `log_softmax(logits.float()).gather(...)`, as a ratio measured in this run.

    python bench/bench_logprob_memory.py [--rollouts 8] [--tokens 256]

Two lines:
1. the `small` preset's update forward (bf16 weights, `--rollouts` completions of `--tokens`
   tokens after a 2-frame video prompt): forward, log-probs of the completion tokens, backward;
2. the log-prob head alone at Qwen2.5-VL-3B's vocabulary (151,936), on bf16 logits of the same
   shape, where the fp32 copies are what dominates (the `small` preset's byte vocabulary is tiny,
   so line 1 shows how little the rest of the phase changes).

Each variant runs in a fresh process and reports its peak resident memory above what it held
before the phase (`ru_maxrss` on CPU; `torch.cuda.max_memory_allocated` when CUDA is there).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
QWEN_VOCAB = 151_936


def rss_mib() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def naive_logprobs(logits, targets, temperature: float = 1.0):
    import torch

    return torch.log_softmax(logits.float() / temperature, dim=-1).gather(-1, targets[..., None]).squeeze(-1)


def measure(which: str, variant: str, rollouts: int, tokens: int) -> float:
    """Peak MiB of one phase above the memory held before it (run in a child process)."""
    sys.path.insert(0, str(REPO))
    import torch

    from pipelines.grpo.logprobs import selective_logprobs

    torch.manual_seed(0)
    logprobs = selective_logprobs if variant == "ours" else naive_logprobs
    cuda = torch.cuda.is_available()
    device = "cuda" if cuda else "cpu"
    if which == "head":
        hidden = torch.randn(rollouts, tokens, 64, dtype=torch.bfloat16, device=device)
        head = torch.nn.Linear(64, QWEN_VOCAB, bias=False, dtype=torch.bfloat16, device=device)
        targets = torch.randint(0, QWEN_VOCAB, (rollouts, tokens), device=device)

        def phase():
            logprobs(head(hidden), targets).sum().backward()

    else:
        import modeling
        from tests.modeling.helpers import random_video, video_prompt

        model, processor = modeling.load("small", seed=0, dtype="bf16")
        model.to(device)
        inputs = processor(text=[video_prompt(processor)], videos=[random_video(0, 2)], return_tensors="pt")
        inputs = {k: v.to(device) for k, v in inputs.items()}
        completion = torch.randint(0, 200, (rollouts, tokens), device=device)  # [N, T]
        ids = torch.cat([inputs["input_ids"].expand(rollouts, -1), completion], 1)  # [N, P + T]

        def phase():
            logits = model(input_ids=ids, attention_mask=torch.ones_like(ids),
                           pixel_values_videos=inputs["pixel_values_videos"],
                           spatial_pixel_values=inputs["spatial_pixel_values"], video_grid_thw=inputs["video_grid_thw"],
                           video_repeats=rollouts, logits_to_keep=tokens + 1, use_cache=False).logits[:, :-1]  # fmt: skip
            logprobs(logits, completion).sum().backward()

    if cuda:
        torch.cuda.synchronize()
        base = torch.cuda.memory_allocated()
        torch.cuda.reset_peak_memory_stats()
        phase()
        torch.cuda.synchronize()
        return (torch.cuda.max_memory_allocated() - base) / 2**20
    base = rss_mib()
    phase()
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 - base


def run_child(which: str, variant: str, args) -> float:
    cmd = [sys.executable, __file__, "--child", which, variant, "--rollouts", str(args.rollouts),
           "--tokens", str(args.tokens)]  # fmt: skip
    out = subprocess.run(cmd, capture_output=True, text=True, check=True, cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)})
    return json.loads(out.stdout.strip().splitlines()[-1])["mib"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rollouts", type=int, default=8)
    parser.add_argument("--tokens", type=int, default=256)
    parser.add_argument("--child", nargs=2, metavar=("WHICH", "VARIANT"))
    args = parser.parse_args()
    if args.child:
        print(json.dumps({"mib": measure(*args.child, args.rollouts, args.tokens)}))
        return
    for which, label in (("small", "small preset, update forward + log-probs + backward"),
                         ("head", f"log-prob head alone, vocabulary {QWEN_VOCAB:,}")):  # fmt: skip
        ours, naive = run_child(which, "ours", args), run_child(which, "naive", args)
        print(f"{label} ({args.rollouts} x {args.tokens} tokens): ours {ours:.0f} MiB, naive {naive:.0f} MiB, "
              f"ours/naive = {ours / naive:.2f}")  # fmt: skip


if __name__ == "__main__":
    main()
