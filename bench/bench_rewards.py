"""Reward scoring throughput. Every figure is a ratio against a baseline measured in this run.

    python bench/bench_rewards.py [--n 100000] [--batch-size 50] [--actors 2] [--cpus 1.0] [--repeats 3]

Pool throughput (completions/s) of `RewardPool.score` at batch 50 on a local 2-CPU Ray vs
scoring the same completions in this process with the pure `rewards.score` (the baseline; target:
pool >= 100k completions/s on 2 cores). For context it also prints Ray's own ceiling at that batch
size: the same batches sent to actors that do nothing, all submitted at once. Completions are
GRPO-like: a few hundred characters of reasoning, mixed multiple-choice and numerical answers,
some malformed.
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.chdir(Path(__file__).resolve().parents[1])  # Ray workers import `pipelines` from the repo root
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")

from pipelines.reward_actors import RewardPool, RewardPoolConfig  # noqa: E402
from pipelines.rewards import score  # noqa: E402

WORDS = "the chair is left of the table so I count two sofas and measure the distance in meters".split()


def make_items(n: int, seed: int = 0) -> list[dict]:
    rng = random.Random(seed)
    items = []
    for k in range(n):
        think = " ".join(rng.choice(WORDS) for _ in range(rng.randint(40, 160)))  # ~200-800 chars
        if k % 2:
            gt, answer, problem_type = (
                rng.choice("ABCD"),
                rng.choice(["A", "B.", "(C)", "d. sofa", "none"]),
                "multiple_choice",
            )
        else:
            gt = f"{rng.uniform(0.5, 20):.1f}"
            answer, problem_type = (
                rng.choice([f"{rng.uniform(0.5, 20):.2f}", "1,234", "about 3 m", "nan"]),
                "numerical",
            )
        style = k % 10
        if style == 0:
            text = f"{think} so the answer is {answer}"  # no tags
        elif style == 1:
            text = f"<think>{think}<answer>{answer}</answer>"  # unclosed think
        else:
            text = f"<think>{think}</think>\n<answer>{answer}</answer>"
        items.append({"id": f"s{k}", "completion": text, "problem_type": problem_type, "ground_truth": gt})
    return items


def in_process(items: list[dict]) -> tuple[float, list[float]]:
    start = time.perf_counter()
    totals = [score(it["completion"], it["problem_type"], it["ground_truth"])["total"] for it in items]
    return time.perf_counter() - start, totals


def ray_ceiling(items: list[dict], batch_size: int, num_actors: int, num_cpus: float) -> float:
    """Seconds for no-op actors to receive the same batches and return as many floats: the cost
    of the actor calls themselves, the floor under any pool at this batch size."""
    import ray

    @ray.remote
    class NoopActor:
        def score_batch(self, completions, problem_types, ground_truths, ids=None, attempt=0):
            zeros = [0.0] * len(completions)
            return zeros, zeros, zeros, [0] * len(completions), [None] * len(completions)

    actors = [NoopActor.options(num_cpus=num_cpus).remote() for _ in range(num_actors)]
    cols = [[it[k] for it in items] for k in ("completion", "problem_type", "ground_truth")]
    ray.get([a.score_batch.remote([], [], []) for a in actors])
    start = time.perf_counter()
    refs = [
        actors[(s // batch_size) % num_actors].score_batch.remote(*(c[s : s + batch_size] for c in cols))
        for s in range(0, len(items), batch_size)
    ]
    ray.get(refs)
    elapsed = time.perf_counter() - start
    for a in actors:
        ray.kill(a)
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=100_000, help="completions per timed run")
    parser.add_argument("--batch-size", type=int, default=50)
    parser.add_argument("--actors", type=int, default=2)
    parser.add_argument("--cpus", type=float, default=1.0, help="CPUs per actor")
    parser.add_argument("--max-inflight", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=3, help="timed runs of each; the best counts")
    args = parser.parse_args()

    import ray

    items = make_items(args.n)
    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False)
    config = RewardPoolConfig(
        num_actors=args.actors, num_cpus=args.cpus, batch_size=args.batch_size, max_inflight=args.max_inflight
    )
    with RewardPool(config) as pool:
        assert pool.wait_ready(), "reward actors did not start"
        pool.score(items[:2000])  # warm-up: imports, regex compilation, first transfers
        base_s, pool_s = [], []
        for _ in range(args.repeats):  # interleaved, so both see the same machine load
            t, expected = in_process(items)
            base_s.append(t)
            start = time.perf_counter()
            results = pool.score(items)
            pool_s.append(time.perf_counter() - start)
            assert [r["total"] for r in results] == expected, "pool and in-process scores differ"
        stats = pool.stats()
    ceiling_s = [ray_ceiling(items, args.batch_size, args.actors, args.cpus) for _ in range(args.repeats)]
    ray.shutdown()

    base, best, ceiling = args.n / min(base_s), args.n / min(pool_s), args.n / min(ceiling_s)
    print(f"reward scoring, {args.n} completions, batch {args.batch_size}, {args.actors} actors x {args.cpus} CPU, "
          f"best of {args.repeats}")  # fmt: skip
    print(f"  in-process pure function (baseline): {base:10,.0f} completions/s")
    print(f"  RewardPool:                          {best:10,.0f} completions/s -> {best / base:.2f}x baseline "
          f"(target >= 100,000/s: {'met' if best >= 100_000 else 'NOT met'})")  # fmt: skip
    print(f"  Ray ceiling (no-op actors, same batches): {ceiling:10,.0f} completions/s -> pool at "
          f"{best / ceiling:.2f}x of it")  # fmt: skip
    print(f"  all runs (completions/s): baseline {[round(args.n / t) for t in base_s]}, "
          f"pool {[round(args.n / t) for t in pool_s]}, ceiling {[round(args.n / t) for t in ceiling_s]}")  # fmt: skip
    print(f"  pool counters: timeouts {stats['timeouts']}, actor_deaths {stats['actor_deaths']}, "
          f"retries {stats['retries']}, unparseable {stats['unparseable']} of {stats['items']}")  # fmt: skip


if __name__ == "__main__":
    main()
