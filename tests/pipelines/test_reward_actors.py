"""The reward actor pool: same values as the pure function, every item exactly once, recovery from
a killed actor and from timeouts, and no hang when actors cannot start."""

from __future__ import annotations

import threading
import time

import pytest

from pipelines.reward_actors import RewardPool, RewardPoolConfig
from pipelines.rewards import parse_answer, score

FAST = dict(num_actors=2, num_cpus=0.25, batch_size=10, max_retries=2, timeout_s=20.0)


def _items(n: int) -> list[dict]:
    """Mixed tasks whose correct scores differ from item to item, so a mix-up would show."""
    items = []
    for k in range(n):
        if k % 3 == 0:
            items.append(
                {
                    "id": f"q{k}",
                    "problem_type": "multiple_choice",
                    "ground_truth": "ABCD"[k % 4],
                    "completion": f"<think>t{k}</think><answer>{'ABCD'[(k // 3) % 4]}</answer>",
                }
            )
        elif k % 3 == 1:
            items.append(
                {
                    "id": f"q{k}",
                    "problem_type": "numerical",
                    "ground_truth": str(k),
                    "completion": f"<think>t</think><answer>{k + k % 7}</answer>",
                }
            )
        else:
            items.append(
                {
                    "id": f"q{k}",
                    "problem_type": "numerical",
                    "ground_truth": "2.5",
                    "completion": "no answer here" if k % 2 else f"{k / 10} m",
                }
            )
    return items  # fmt: skip


def _check_exactly_once(items: list[dict], results: list[dict]) -> None:
    assert [r["id"] for r in results] == [it["id"] for it in items]
    for it, r in zip(items, results, strict=True):
        expected = score(it["completion"], it["problem_type"], it["ground_truth"])
        assert {k: r[k] for k in expected} == expected, it["id"]
        assert r["error"] is None
        assert r["parsed"] == (parse_answer(it["completion"], it["problem_type"]) is not None)


def test_pool_scores_like_the_pure_function(ray_session):
    items = _items(237)  # not a multiple of the batch size
    bad = {"id": "bad", "completion": "<answer>3</answer>", "problem_type": "free_form", "ground_truth": "3"}
    with RewardPool(RewardPoolConfig(**FAST)) as pool:
        results = pool.score(items + [bad])
        _check_exactly_once(items, results[:-1])
        assert results[-1]["total"] == 0.0 and "ValueError" in results[-1]["error"]
        stats = pool.stats()
        assert stats["items"] == 238 and stats["batches"] == 24
        assert stats["item_errors"] == 1
        assert stats["unparseable"] == sum(
            parse_answer(it["completion"], it["problem_type"]) is None for it in items
        )
        assert stats["timeouts"] == stats["actor_deaths"] == stats["retries"] == stats["failed_items"] == 0
        assert pool.score([]) == []
        # items without ids work too, and a second call reuses the actors
        plain = [{k: v for k, v in it.items() if k != "id"} for it in items[:25]]
        assert [r["total"] for r in pool.score(plain)] == [r["total"] for r in results[:25]]
        assert pool.stats()["actors_started"] == 2


def test_killed_actor_is_replaced_and_its_batches_rescored(ray_session):
    items = _items(400)
    # Every batch sleeps 50 ms on its first attempt: about 1 s per actor, so the kill lands mid-run.
    delays = {it["id"]: [0.05] for it in items}
    with RewardPool(RewardPoolConfig(**FAST), test_delays=delays) as pool:
        assert pool.wait_ready()
        victim = pool.actors[0]
        killer = threading.Timer(0.3, lambda: ray_session.kill(victim))
        killer.start()
        results = pool.score(items)
        killer.join()
        _check_exactly_once(items, results)
        stats = pool.stats()
        assert stats["actor_deaths"] == 1 and stats["actors_started"] == 3
        assert stats["retries"] >= 1 and stats["failed_items"] == 0
        assert victim not in pool.actors


def test_timeouts_retry_then_score_zero_without_hanging(ray_session):
    items = _items(60)
    # "q5" times out on its first attempt only; "q42" never finishes within the timeout.
    delays = {"q5": [60.0], "q42": [60.0, 60.0, 60.0]}
    config = RewardPoolConfig(**{**FAST, "timeout_s": 1.0, "max_retries": 1})
    with RewardPool(config, test_delays=delays) as pool:
        assert pool.wait_ready()
        start = time.monotonic()
        results = pool.score(items)
        elapsed = time.monotonic() - start
        assert elapsed < 30.0  # three timeouts and restarts, never the 60 s sleeps
        stuck = {f"q{k}" for k in range(40, 50)}  # the batch holding q42
        ok = [(it, r) for it, r in zip(items, results, strict=True) if it["id"] not in stuck]
        _check_exactly_once([it for it, _ in ok], [r for _, r in ok])
        for it, r in zip(items, results, strict=True):
            if it["id"] in stuck:
                assert (r["format"], r["accuracy"], r["total"]) == (0.0, 0.0, 0.0)
                assert "timeout" in r["error"] and not r["parsed"]
        stats = pool.stats()
        assert stats["timeouts"] >= 3  # q5 once, q42 on both attempts
        assert stats["failed_batches"] == 1 and stats["failed_items"] == 10


def test_actors_that_never_start_raise_instead_of_hanging(ray_session):
    config = RewardPoolConfig(**{**FAST, "startup_timeout_s": 1e-6, "max_retries": 1})
    with RewardPool(config) as pool:
        with pytest.raises(RuntimeError, match="fail to start"):
            pool.score(_items(20))


def test_closed_pool_refuses_work(ray_session):
    pool = RewardPool(RewardPoolConfig(**FAST))
    pool.close()
    with pytest.raises(RuntimeError, match="closed"):
        pool.score(_items(3))
