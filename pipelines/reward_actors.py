"""A pool of CPU Ray actors that score completions with `pipelines.rewards`; it only batches,
times out and counts.

    pool = RewardPool(RewardPoolConfig(num_actors=2, num_cpus=0.5), RewardConfig())
    results = pool.score([{"id": "q1/0", "completion": text, "problem_type": "numerical",
                           "ground_truth": "3.2"}, ...])
    # -> [{"id": "q1/0", "format": 1.0, "accuracy": 0.9, "total": 1.9, "parsed": True, "error": None}, ...]
    pool.stats()  # {"timeouts": 0, "actor_deaths": 0, "retries": 0, "unparseable": 3, ...}
    pool.close()

`score` never hangs and never raises on a completion: each batch runs on one actor under a
timeout; a batch that times out or whose actor dies gets a fresh actor and is scored again, up to
`max_retries` times, then comes back with `error` set (values 0; GRPO leaves such items out of
its step). Results come back in input order, each item scored exactly once (a stale result from a
replaced actor is never read).

Timing: an actor runs its batches in submission order, so a batch's clock starts when it reaches
the head of its actor's queue (and not before the actor has started: a fresh actor gets
`startup_timeout_s` to answer a ping).
"""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import ray
from ray.exceptions import RayActorError, RayError, RayTaskError

from pipelines.config.reward_pool import RewardPoolConfig
from pipelines.rewards import DEFAULT_CONFIG, RewardConfig, score_and_parse

OK, UNPARSEABLE, ITEM_ERROR = 0, 1, 2


@ray.remote(num_cpus=1)  # overridden per pool with .options(num_cpus=config.num_cpus)
class RewardActor:
    """Scores batches with `rewards.score_and_parse`; never raises on an item."""

    def __init__(self, config: RewardConfig, test_delays: dict[str, list[float]] | None = None):
        self.config = config
        # Test hook only: {item id: [seconds to sleep on attempt 0, attempt 1, ...]}.
        self.test_delays = test_delays or {}

    def ping(self) -> bool:
        return True

    def score_batch(
        self,
        completions: list[str],
        problem_types: list[str],
        ground_truths: list[Any],
        ids: list[Any] | None = None,
        attempt: int = 0,
    ) -> tuple[list[float], list[float], list[float], list[int], list[str | None]]:
        """Parallel lists (format, accuracy, total, status, error) with status OK / UNPARSEABLE /
        ITEM_ERROR (the item raised, e.g. a bad problem_type; it scores 0)."""
        if self.test_delays and ids is not None:
            delays = [self.test_delays.get(i, ()) for i in ids]
            time.sleep(max((d[attempt] if attempt < len(d) else 0.0 for d in delays), default=0.0))
        n = len(completions)
        fmts, accs, totals, status, errors = [0.0] * n, [0.0] * n, [0.0] * n, [OK] * n, [None] * n
        config = self.config
        for k in range(n):
            try:
                scores, answer = score_and_parse(completions[k], problem_types[k], ground_truths[k], config)
            except Exception as e:  # a data bug in this item; the rest of the batch still counts
                status[k], errors[k] = ITEM_ERROR, f"{type(e).__name__}: {e}"
                continue
            fmts[k], accs[k], totals[k] = scores["format"], scores["accuracy"], scores["total"]
            if answer is None:
                status[k] = UNPARSEABLE
        return fmts, accs, totals, status, errors


@dataclass
class _Batch:
    start: int  # items [start, stop) of the current score() call
    stop: int
    attempt: int = 0


@dataclass
class _Slot:
    """One actor and the batches queued on it, in submission (= execution) order."""

    actor: Any
    ping: Any  # ObjectRef until the actor has answered, then None
    born: float
    inflight: deque[tuple[Any, _Batch]] = field(default_factory=deque)
    head_since: float = 0.0  # when the head batch started running (or could start)


_COUNTERS = (
    "items", "batches", "timeouts", "actor_deaths", "task_errors", "retries", "failed_batches",
    "failed_items", "item_errors", "unparseable", "actors_started", "startup_timeouts",
)  # fmt: skip


class RewardPool:
    """Driver-side owner of `num_actors` RewardActors. Call `score`, read `stats`, then `close`."""

    def __init__(
        self,
        config: RewardPoolConfig,
        reward_config: RewardConfig = DEFAULT_CONFIG,
        *,
        test_delays: dict[str, list[float]] | None = None,
    ):
        """`test_delays` is a test hook: {item id: [seconds to sleep on attempt 0, 1, ...]}."""
        self.config = config
        self.reward_config = reward_config
        self._test_delays = test_delays
        self._stats = dict.fromkeys(_COUNTERS, 0)
        self._startup_failures = 0  # in a row, across slots
        self._slots = [self._new_slot() for _ in range(config.num_actors)]

    # -- public -----------------------------------------------------------------------------

    @property
    def actors(self) -> list[Any]:
        """The live actor handles (a copy; tests kill one to check recovery)."""
        return [slot.actor for slot in self._slots]

    def wait_ready(self, timeout_s: float | None = None) -> bool:
        """Wait until every actor has started (optional: `score` does not need it; benchmarks use
        it to keep start-up out of their timings). True when all answered; an actor that failed
        to start is left for `score` to replace."""
        pings = {slot.ping: slot for slot in self._slots if slot.ping is not None}
        if pings:
            ready, _ = ray.wait(
                list(pings), num_returns=len(pings), timeout=timeout_s or self.config.startup_timeout_s
            )
            for ref in ready:
                try:
                    ray.get(ref, timeout=0)
                except RayError:
                    continue
                pings[ref].ping = None
        return all(slot.ping is None for slot in self._slots)

    def stats(self) -> dict[str, int]:
        """Cumulative counters since construction, for logging as reward/*:
        items, batches (scored), timeouts (batches past timeout_s), startup_timeouts,
        actor_deaths, task_errors (score_batch raised), retries (batches sent again),
        failed_batches/failed_items (scored 0 after max_retries), item_errors (an item raised,
        e.g. a bad problem_type; it scores 0), unparseable (no answer found), actors_started."""
        return dict(self._stats)

    def close(self) -> None:
        for i in range(len(self._slots)):
            self._kill(i)
        self._slots = []

    def __enter__(self) -> RewardPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def score(self, items: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Score `items` (dicts with completion, problem_type, ground_truth and optionally id);
        returns one dict per item, in order: id (None when not given), format, accuracy, total,
        parsed (an answer was found), error (None, or why the item scored 0)."""
        if not self._slots:
            raise RuntimeError("RewardPool is closed")
        call = _Call(items, self.config.batch_size, with_ids=self._test_delays is not None)
        try:
            while call.pending or any(slot.inflight for slot in self._slots):
                self._dispatch(call)
                self._wait_and_collect(call)
        except BaseException:
            # Interrupted mid-call: actors still busy with our batches would delay the next call.
            for i, slot in enumerate(self._slots):
                if slot.inflight:
                    self._replace(i)
            raise
        self._stats["items"] += len(items)
        self._stats["unparseable"] += call.out.status.count(UNPARSEABLE)
        self._stats["item_errors"] += call.out.status.count(ITEM_ERROR) - call.failed_items
        return call.out.rows(call.ids)

    # -- one round of the loop ----------------------------------------------------------------

    def _dispatch(self, call: _Call) -> None:
        for slot in self._slots:
            while call.pending and len(slot.inflight) < self.config.max_inflight:
                batch = call.pending.popleft()
                ref = slot.actor.score_batch.remote(*call.args(batch), batch.attempt)
                if not slot.inflight:
                    slot.head_since = time.monotonic()
                slot.inflight.append((ref, batch))

    def _wait_and_collect(self, call: _Call) -> None:
        owner: dict[Any, int] = {}
        for i, slot in enumerate(self._slots):
            if slot.ping is not None:
                owner[slot.ping] = i
            for ref, _ in slot.inflight:
                owner[ref] = i
        busy = [self._deadline(slot) for slot in self._slots if slot.inflight or slot.ping is not None]
        wait_s = max(0.0, min(busy) - time.monotonic())
        ready, _ = ray.wait(list(owner), num_returns=1, timeout=wait_s)
        if ready:  # one at a time: the next wait returns at once if more are done
            i = owner[ready[0]]
            if ready[0] == self._slots[i].ping:
                self._on_ping(i, ready[0], call)
            else:
                self._on_result(i, ready[0], call)
        now = time.monotonic()
        for i, slot in enumerate(self._slots):
            if (slot.inflight or slot.ping is not None) and now >= self._deadline(slot):
                if slot.ping is None:
                    self._stats["timeouts"] += 1
                    self._fail(i, call, reason="timeout")
                else:
                    self._stats["startup_timeouts"] += 1
                    limit = self.config.startup_timeout_s
                    self._start_failed(f"no answer in {limit} s (are num_actors x num_cpus CPUs free?)")
                    self._fail(i, call, reason="actor did not start")

    def _deadline(self, slot: _Slot) -> float:
        if slot.ping is not None:
            return slot.born + self.config.startup_timeout_s
        return slot.head_since + self.config.timeout_s

    def _on_ping(self, i: int, ref: Any, call: _Call) -> None:
        slot = self._slots[i]
        try:
            ray.get(ref, timeout=0)
        except RayError as e:
            self._stats["actor_deaths"] += 1
            self._start_failed(e)
            self._fail(i, call, reason="actor died")
            return
        self._startup_failures = 0
        slot.ping = None
        slot.head_since = time.monotonic()  # batches queued behind the ping start only now

    def _start_failed(self, error: BaseException | str) -> None:
        """An actor that never comes up is a broken environment (e.g. `pipelines` not importable
        on the workers), not a bad completion: after max_retries + 1 in a row, raise."""
        self._startup_failures += 1
        if self._startup_failures > self.config.max_retries:
            msg = str(error)[:2000]
            raise RuntimeError(f"reward actors fail to start ({self._startup_failures} in a row): {msg}")

    def _on_result(self, i: int, ref: Any, call: _Call) -> None:
        slot = self._slots[i]
        try:
            result = ray.get(ref, timeout=0)
        except RayActorError:
            self._stats["actor_deaths"] += 1
            self._fail(i, call, reason="actor died")
            return
        except RayTaskError:  # score_batch itself raised: the actor lives, only this batch failed
            self._stats["task_errors"] += 1
            self._retry_or_give_up(self._remove(slot, ref), call, reason="task error")
            return
        except RayError:  # anything else Ray reports (a lost object, an unreachable worker)
            self._stats["actor_deaths"] += 1
            self._fail(i, call, reason="actor unreachable")
            return
        call.out.put(self._remove(slot, ref), result)
        self._stats["batches"] += 1

    # -- failure handling -----------------------------------------------------------------------

    def _remove(self, slot: _Slot, ref: Any) -> _Batch:
        was_head = slot.inflight[0][0] == ref
        for k, (r, batch) in enumerate(slot.inflight):
            if r == ref:
                del slot.inflight[k]
                if was_head:
                    slot.head_since = time.monotonic()
                return batch
        raise KeyError(ref)

    def _fail(self, i: int, call: _Call, *, reason: str) -> None:
        """The actor of slot i timed out or died: replace it. Its head batch (the one running)
        spends an attempt; the batches queued behind it are sent again as they were."""
        inflight = list(self._slots[i].inflight)
        self._replace(i)
        for k, (_, batch) in reversed(list(enumerate(inflight))):  # appendleft keeps their order
            if k == 0:
                self._retry_or_give_up(batch, call, reason=reason)
            else:
                self._stats["retries"] += 1
                call.pending.appendleft(batch)

    def _retry_or_give_up(self, batch: _Batch, call: _Call, *, reason: str) -> None:
        if batch.attempt < self.config.max_retries:
            self._stats["retries"] += 1
            call.pending.appendleft(_Batch(batch.start, batch.stop, batch.attempt + 1))
            return
        self._stats["failed_batches"] += 1
        self._stats["failed_items"] += batch.stop - batch.start
        call.failed_items += batch.stop - batch.start
        call.out.fail(batch, reason)

    def _replace(self, i: int) -> None:
        self._kill(i)
        self._slots[i] = self._new_slot()

    def _kill(self, i: int) -> None:
        try:
            ray.kill(self._slots[i].actor)  # no restart: a stale result can never be read
        except Exception:  # already gone
            pass

    def _new_slot(self) -> _Slot:
        actor = RewardActor.options(num_cpus=self.config.num_cpus).remote(
            self.reward_config, self._test_delays
        )
        self._stats["actors_started"] += 1
        return _Slot(actor=actor, ping=actor.ping.remote(), born=time.monotonic())


class _Call:
    """The state of one score() call: the items as columns, the batches still to send, the results."""

    def __init__(self, items: list[dict[str, Any]], batch_size: int, *, with_ids: bool):
        n = len(items)
        self.completions = [it["completion"] for it in items]
        self.problem_types = [it["problem_type"] for it in items]
        self.ground_truths = [it["ground_truth"] for it in items]
        self.ids = [it.get("id") for it in items]
        self.with_ids = with_ids  # ids travel to the actors only for the test hook
        self.pending = deque(_Batch(s, min(s + batch_size, n)) for s in range(0, n, batch_size))
        self.out = _Results(n)
        self.failed_items = 0

    def args(self, batch: _Batch) -> tuple:
        s, e = batch.start, batch.stop
        ids = self.ids[s:e] if self.with_ids else None
        return self.completions[s:e], self.problem_types[s:e], self.ground_truths[s:e], ids


class _Results:
    """Per-item outputs of one score() call, each filled exactly once."""

    def __init__(self, n: int):
        self.fmt = [0.0] * n
        self.acc = [0.0] * n
        self.total = [0.0] * n
        self.status = [-1] * n  # -1 = not yet scored
        self.error: list[str | None] = [None] * n

    def put(self, batch: _Batch, result: tuple) -> None:
        s, e = batch.start, batch.stop
        if any(st != -1 for st in self.status[s:e]):
            raise RuntimeError(f"items {s}..{e} scored twice")  # a bookkeeping bug, never expected
        self.fmt[s:e], self.acc[s:e], self.total[s:e], self.status[s:e], self.error[s:e] = result

    def fail(self, batch: _Batch, reason: str) -> None:
        s, e = batch.start, batch.stop
        self.status[s:e] = [ITEM_ERROR] * (e - s)
        self.error[s:e] = [f"{reason}; scored 0 after {batch.attempt + 1} attempts"] * (e - s)

    def rows(self, ids: list[Any]) -> list[dict[str, Any]]:
        if -1 in self.status:
            raise RuntimeError("some items were never scored")  # a bookkeeping bug, never expected
        return [
            {"id": i, "format": f, "accuracy": a, "total": t, "parsed": st == OK, "error": err}
            for i, f, a, t, st, err in zip(
                ids, self.fmt, self.acc, self.total, self.status, self.error, strict=True
            )
        ]
