"""A pool of CPU Ray actors that score completions with `pipelines.rewards`; it only batches,
times out and counts.

    pool = RewardPool(RewardPoolConfig(num_actors=2, num_cpus=0.5), RewardConfig())
    results = pool.score([{"id": "q1/0", "completion": text, "problem_type": "numerical",
                           "ground_truth": "3.2"}, ...])
    # -> [{"id": "q1/0", "format": 1.0, "accuracy": 0.9, "total": 1.9, "parsed": True, "error": None}, ...]
    pool.stats()  # {"timeouts": 0, "actor_deaths": 0, "retries": 0, "unparseable": 3, ...}
    pool.close()

`score` never hangs and never raises on a completion: results come back in input order, each item
scored exactly once; a batch that times out or loses its actor is sent again, up to `max_retries`
times, then comes back with `error` set (values 0; GRPO leaves such items out of its step); actors
that cannot start make `score` raise instead of waiting for them.

What Ray gives us:
- Failure detection: every ref of an actor that crashed, was killed or never got constructed
  resolves to a `RayActorError`, never to a late value. So each batch has one live ref at a time,
  and the refs of a replaced actor are simply dropped: no stale result can be read.
- Order: one actor runs our tasks in submission order, so the batch at the head of its queue is the
  one running; the timeout clock below relies on that.
- Readiness (`__ray_ready__`, as Ray Serve and Ray Data use it) and waiting with a timeout
  (`ray.wait`).

What we do ourselves, because Ray 2.60 does not (each reason measured on a local 2-CPU Ray):
- Per-batch timeout. Ray has none, and cannot stop a running sync actor task: `ray.cancel` lets it
  run to its end (the actor stays blocked), `force=True` is refused for actor tasks. So a batch's
  clock starts when it reaches the head of its actor's queue, and past `timeout_s` we kill the actor.
- Retries, instead of `max_task_retries`. When an actor dies, Ray retries every task sent to it,
  charging each a retry even if it never ran; it runs the retries out of submission order (seen:
  t1, t3, t0, t2), which breaks the head-of-queue clock; the attempt number (needed by the
  `test_delays` hook) is visible only through a private core-worker call; and `ray.kill(actor)`'s
  default `no_restart=True` fails every task whatever the retries. We charge an attempt only to the
  batch that was running; the ones queued behind it go again as they were (with max_retries=0, a
  timeout must not cost its neighbours their scores: tests/pipelines/grpo/test_failed_rewards.py).
- A fresh actor, instead of `max_restarts`. A restart in place also loses the tasks sent just after
  `ray.kill(no_restart=False)` and reports the lost tasks only 1.2-2 s later, while a kill plus a
  new actor answers in 0.5-0.7 s; an actor whose constructor raised is not restarted by Ray anyway.
  Every death is thus seen by us, so `actor_deaths` is exact.
- Start-up timeout. An actor that cannot be scheduled (no free CPUs) or whose constructor hangs
  stays pending in Ray for ever. A fresh actor gets `startup_timeout_s` to be ready (counting as an
  attempt of the batch at its head); after `max_retries + 1` failed starts in a row, `score` raises:
  a broken environment (e.g. `pipelines` not importable on the workers), not a bad completion.
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
    """One actor and the batches sent to it, in submission (= execution) order."""

    actor: Any
    ready: Any  # the actor's `__ray_ready__` ref until it has answered, then None
    clock: float  # when it was created while starting, then when its head batch began to run
    queue: deque[tuple[Any, _Batch]] = field(default_factory=deque)


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
        starting = {slot.ready: slot for slot in self._slots if slot.ready is not None}
        if starting:
            timeout = timeout_s or self.config.startup_timeout_s
            answered, _ = ray.wait(list(starting), num_returns=len(starting), timeout=timeout)
            for ref in answered:
                try:
                    ray.get(ref, timeout=0)
                except RayError:
                    continue
                starting[ref].ready = None
                starting[ref].clock = time.monotonic()
        return all(slot.ready is None for slot in self._slots)

    def stats(self) -> dict[str, int]:
        """Cumulative counters since construction, for logging as reward/*:
        items, batches (scored), timeouts (batches past timeout_s), startup_timeouts,
        actor_deaths, task_errors (score_batch raised), retries (batches sent again),
        failed_batches/failed_items (scored 0 after max_retries), item_errors (an item raised,
        e.g. a bad problem_type; it scores 0), unparseable (no answer found), actors_started."""
        return dict(self._stats)

    def close(self) -> None:
        for slot in self._slots:
            _kill(slot.actor)
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
            while call.pending or any(slot.queue for slot in self._slots):
                self._dispatch(call)
                self._wait_and_handle(call)
        except BaseException:
            # Interrupted mid-call: actors still busy with our batches would delay the next call.
            for i, slot in enumerate(self._slots):
                if slot.queue:
                    _kill(slot.actor)
                    self._slots[i] = self._new_slot()
            raise
        status = [st for part in call.results.values() for st in part[3]]
        self._stats["items"] += len(items)
        self._stats["unparseable"] += status.count(UNPARSEABLE)
        self._stats["item_errors"] += status.count(ITEM_ERROR) - call.failed_items
        return call.rows()

    # -- one round of the loop ----------------------------------------------------------------

    def _dispatch(self, call: _Call) -> None:
        for slot in self._slots:
            while call.pending and len(slot.queue) < self.config.max_inflight:
                batch = call.pending.popleft()
                if not slot.queue and slot.ready is None:
                    slot.clock = time.monotonic()  # it runs at once
                slot.queue.append((slot.actor.score_batch.remote(*call.args(batch), batch.attempt), batch))

    def _wait_and_handle(self, call: _Call) -> None:
        """Wait for one ref (or the nearest deadline), handle it, then act on passed deadlines."""
        owner: dict[Any, int] = {}
        for i, slot in enumerate(self._slots):
            if slot.ready is not None:
                owner[slot.ready] = i  # first, so that a failed start reads as one
            owner.update((ref, i) for ref, _ in slot.queue)
        busy = [self._deadline(slot) for slot in self._slots if slot.queue or slot.ready is not None]
        done, _ = ray.wait(list(owner), num_returns=1, timeout=max(0.0, min(busy) - time.monotonic()))
        if done:  # one at a time: the next wait returns at once if more are done
            self._on_ref(owner[done[0]], done[0], call)
        now = time.monotonic()
        for i, slot in enumerate(self._slots):
            if (slot.queue or slot.ready is not None) and now >= self._deadline(slot):
                if slot.ready is None:
                    self._stats["timeouts"] += 1
                    self._lose_actor(i, call, reason="timeout")
                else:
                    self._stats["startup_timeouts"] += 1
                    limit = self.config.startup_timeout_s
                    self._start_failed(f"not ready in {limit} s (are num_actors x num_cpus CPUs free?)")
                    self._lose_actor(i, call, reason="actor did not start")

    def _deadline(self, slot: _Slot) -> float:
        return slot.clock + (self.config.timeout_s if slot.ready is None else self.config.startup_timeout_s)

    def _on_ref(self, i: int, ref: Any, call: _Call) -> None:
        slot = self._slots[i]
        try:
            result = ray.get(ref, timeout=0)
        except RayTaskError:  # score_batch itself raised: the actor lives, only this batch failed
            self._stats["task_errors"] += 1
            self._retry_or_give_up(self._take(slot, ref), call, reason="task error")
            return
        except RayError as e:  # the actor died, or Ray lost its worker or the result
            self._stats["actor_deaths"] += 1
            if slot.ready is not None:
                self._start_failed(e)
                self._lose_actor(i, call, reason="actor did not start")
            else:
                reason = "actor died" if isinstance(e, RayActorError) else "actor lost"
                self._lose_actor(i, call, reason=reason)
            return
        if ref == slot.ready:
            self._startup_failures = 0
            slot.ready, slot.clock = None, time.monotonic()  # batches queued behind start only now
        else:
            call.put(self._take(slot, ref), result)
            self._stats["batches"] += 1

    # -- failure handling -----------------------------------------------------------------------

    def _take(self, slot: _Slot, ref: Any) -> _Batch:
        """Remove ref's batch from the slot's queue; the next batch's clock starts if it was the head."""
        k = next(k for k, (r, _) in enumerate(slot.queue) if r == ref)
        _, batch = slot.queue[k]
        del slot.queue[k]
        if k == 0:
            slot.clock = time.monotonic()
        return batch

    def _start_failed(self, error: BaseException | str) -> None:
        self._startup_failures += 1
        if self._startup_failures > self.config.max_retries:
            msg = str(error)[:2000]
            raise RuntimeError(f"reward actors fail to start ({self._startup_failures} in a row): {msg}")

    def _lose_actor(self, i: int, call: _Call, *, reason: str) -> None:
        """Slot i's actor timed out, died or did not start: kill it and start a fresh one. Its head
        batch (the one running) spends an attempt; the batches queued behind it never ran and
        are sent again as they were."""
        queue = self._slots[i].queue
        _kill(self._slots[i].actor)
        self._slots[i] = self._new_slot()
        for k, (_, batch) in reversed(list(enumerate(queue))):  # appendleft keeps their order
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
        n = batch.stop - batch.start
        self._stats["failed_batches"] += 1
        self._stats["failed_items"] += n
        call.failed_items += n
        error = f"{reason}; scored 0 after {batch.attempt + 1} attempts"
        call.put(batch, ([0.0] * n, [0.0] * n, [0.0] * n, [ITEM_ERROR] * n, [error] * n))

    def _new_slot(self) -> _Slot:
        # max_restarts stays 0 and max_task_retries 0 (Ray's defaults): see the module docstring.
        options = RewardActor.options(num_cpus=self.config.num_cpus)
        actor = options.remote(self.reward_config, self._test_delays)
        self._stats["actors_started"] += 1
        return _Slot(actor=actor, ready=actor.__ray_ready__.remote(), clock=time.monotonic())


def _kill(actor: Any) -> None:
    try:
        ray.kill(actor)  # no restart: its refs all fail, so none of its results is read later
    except Exception:  # already gone
        pass


class _Call:
    """One score() call: the items as columns, the batches still to send, the results by batch."""

    def __init__(self, items: list[dict[str, Any]], batch_size: int, *, with_ids: bool):
        n = len(items)
        self.completions = [it["completion"] for it in items]
        self.problem_types = [it["problem_type"] for it in items]
        self.ground_truths = [it["ground_truth"] for it in items]
        self.ids = [it.get("id") for it in items]
        self.with_ids = with_ids  # ids travel to the actors only for the test hook
        self.pending = deque(_Batch(s, min(s + batch_size, n)) for s in range(0, n, batch_size))
        self.results: dict[int, tuple] = {}  # batch start -> its (format, accuracy, total, status, error)
        self.failed_items = 0

    def args(self, batch: _Batch) -> tuple:
        s, e = batch.start, batch.stop
        ids = self.ids[s:e] if self.with_ids else None
        return self.completions[s:e], self.problem_types[s:e], self.ground_truths[s:e], ids

    def put(self, batch: _Batch, columns: tuple) -> None:
        if batch.start in self.results:  # a bookkeeping bug, never expected
            raise RuntimeError(f"items {batch.start}..{batch.stop} scored twice")
        self.results[batch.start] = columns

    def rows(self) -> list[dict[str, Any]]:
        parts = [self.results[start] for start in sorted(self.results)]
        fmt, acc, total, status, error = ([x for part in parts for x in part[c]] for c in range(5))
        if len(status) != len(self.ids):  # a bookkeeping bug, never expected
            raise RuntimeError("some items were never scored")
        return [
            {"id": i, "format": f, "accuracy": a, "total": t, "parsed": st == OK, "error": err}
            for i, f, a, t, st, err in zip(self.ids, fmt, acc, total, status, error, strict=True)
        ]
