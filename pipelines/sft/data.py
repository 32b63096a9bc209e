"""SFT data: which record every worker sees at every step, and the Ray Data pipeline that loads and
preprocesses those records in CPU tasks and streams them into the training workers.

Determinism (what exact resume rests on): the sample at global position p is record
`perm(seed, epoch)[p % N]` with epoch = p // N, a pure function. Optimizer step k uses positions
[k*G, (k+1)*G) (G = global batch); worker r takes the contiguous slice [r*M*A, (r+1)*M*A) of them
(M = micro batch, A = accumulation), micro-batch by micro-batch. The driver materialises each
worker's records from the first step to run, in order, as its own Ray Dataset (`train_rank{r}`,
not split by Ray, order preserved), so neither block timing nor Ray's splitter can reorder
anything; every row carries its position and the worker checks it. Resuming at step k starts
the datasets at k; a worker restarted by Ray Train mid-run skips to its checkpoint's step.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from data_gen.errors import InputError
from data_gen.schema import RECORD_SCHEMA
from pipelines import prompting
from pipelines.sft.samples import encode_sample, pack, unpack


class DataError(InputError):
    """The dataset cannot feed training (missing, empty, unreadable); the message says what to do."""


@dataclass(frozen=True)
class DataPlan:
    """Record order and sharding of a run; pure arithmetic, the same on the driver and every worker."""

    num_records: int
    seed: int
    shuffle: bool
    world_size: int
    micro_batch: int
    global_batch: int
    total_steps: int

    @property
    def accumulation(self) -> int:
        return self.global_batch // (self.micro_batch * self.world_size)

    @property
    def per_rank(self) -> int:
        """Samples one worker consumes per optimizer step."""
        return self.micro_batch * self.accumulation

    def epoch_order(self, epoch: int) -> np.ndarray:
        """Record rows in the order epoch `epoch` visits them."""
        if not self.shuffle:
            return np.arange(self.num_records)
        return np.random.default_rng([self.seed, epoch]).permutation(self.num_records)

    def rank_positions(self, rank: int, start_step: int) -> np.ndarray:
        """Global sample positions worker `rank` consumes from start_step to the end, in order."""
        steps = np.arange(start_step, self.total_steps)[:, None]  # [S, 1]
        offsets = rank * self.per_rank + np.arange(self.per_rank)[None, :]  # [1, M*A]
        return (steps * self.global_batch + offsets).reshape(-1)  # [S*M*A]

    def record_rows(self, positions: np.ndarray) -> np.ndarray:
        """Record row of each global position."""
        epochs = positions // self.num_records
        rows = np.empty_like(positions)
        for epoch in np.unique(epochs):
            at = epochs == epoch
            rows[at] = self.epoch_order(int(epoch))[positions[at] % self.num_records]
        return rows

    def epoch_of_step(self, step: int) -> float:
        """Epochs completed after `step` optimizer steps."""
        return step * self.global_batch / self.num_records


def read_split(dataset_dir: Path, split: str) -> pa.Table:
    """All records of `dataset_dir/<split>/*.parquet` (shards in name order). Raises DataError."""
    folder = dataset_dir / split
    if not dataset_dir.is_dir():
        raise DataError(f"{dataset_dir}: no dataset folder (run `python -m jobs.build_dataset` first)")
    shards = sorted(folder.glob("*.parquet"))
    if not shards:
        raise DataError(f"{folder}: no *.parquet shards (run `python -m jobs.build_dataset` first)")
    try:
        table = pa.concat_tables([pq.read_table(s, schema=RECORD_SCHEMA) for s in shards])
    except (pa.ArrowInvalid, OSError) as e:
        raise DataError(f"{folder}: cannot read the shards as QA records: {e}") from e
    if table.num_rows == 0:
        raise DataError(f"{folder}: the {split} split has no records")
    return table


def check_frames(
    table: pa.Table, scans_root: Path, *, sampling: str, num_frames: int, skip: bool
) -> tuple[pa.Table, list[str]]:
    """(records whose frames exist, ids of the skipped ones). With skip=False a record with
    missing frames raises DataError listing the first few, before any training starts."""
    cols = {c: table[c].to_pylist() for c in ("id", "video", "frame_indices", "uniform_indices")}
    records = [{k: v[i] for k, v in cols.items()} for i in range(table.num_rows)]
    wanted = [prompting.frame_ids(r, sampling=sampling, num_frames=num_frames) for r in records]
    per_scene: dict[str, set[int]] = {}
    for record, ids in zip(records, wanted, strict=True):
        per_scene.setdefault(record["video"], set()).update(ids)
    lost_in = {v: set(prompting.missing_frames(scans_root / v, sorted(ids))) for v, ids in per_scene.items()}
    bad: list[tuple[str, str]] = []
    keep = []
    for i, (record, ids) in enumerate(zip(records, wanted, strict=True)):
        lost = sorted(lost_in[record["video"]].intersection(ids)) if ids else ["(none listed)"]
        if lost:
            bad.append((record["id"], f"{scans_root / record['video']}: frames {lost[:5]} missing"))
        else:
            keep.append(i)
    if bad and not skip:
        listing = "\n".join(f"  {rid}: {why}" for rid, why in bad[:5])
        raise DataError(
            f"{len(bad)} of {table.num_rows} records have missing frames (set sft.skip_bad_records=true "
            f"to skip them):\n{listing}"
        )
    kept = table.take(pa.array(keep, type=pa.int64()))
    if kept.num_rows == 0:
        raise DataError(f"no record has all its frames under {scans_root}")
    return kept, [rid for rid, _ in bad]


@functools.lru_cache(maxsize=2)
def _processor(preset_or_path: str, path: str | None):
    """One processor per process (Ray reuses task processes, so this is built once per process)."""
    import modeling

    return modeling.load_processor(preset_or_path, path=path)


def encode_block(
    batch: pa.Table, *, preset_or_path: str, path: str | None, scans_root: str, sft: dict[str, Any]
) -> pa.Table:
    """Ray Data map step (CPU tasks): record rows in, packed samples out (frames read, prompt
    rendered, tokenised, label mask built)."""
    processor = _processor(preset_or_path, path)
    blobs, truncated = [], []
    for record in batch.to_pylist():
        frames = prompting.load_frames(
            record, Path(scans_root), sampling=sft["frame_sampling"], num_frames=sft["num_frames"]
        )
        arrays, cut = encode_sample(processor, record, frames, think=sft["think_format"], max_length=sft["max_length"])
        blobs.append(pack(arrays))
        truncated.append(cut)
    return pa.table(
        {
            "position": batch["position"],
            "sample": pa.array(blobs, type=pa.binary()),
            "truncated": pa.array(truncated, type=pa.bool_()),
        }
    )


class BlockEncoder:
    """`encode_block` as a Ray Data actor. An actor keeps its process (and the processor) for the
    whole run; a task's process counts as idle between blocks, and Ray reaps idle processes beyond
    its per-node soft limit after a second, so tasks re-imported torch every few steps (a 6-7 s
    stall every ~5 steps on the 2-CPU demo)."""

    def __init__(self, **encoder_args: Any):
        self.encoder_args = encoder_args

    def __call__(self, batch: pa.Table) -> pa.Table:
        return encode_block(batch, **self.encoder_args)


def rank_dataset_name(rank: int) -> str:
    return f"train_rank{rank}"


def build_rank_datasets(
    table: pa.Table, plan: DataPlan, start_step: int, *, encoder_args: dict, tasks: int, cpus_per_task: float
) -> dict:
    """One lazy Ray Dataset per worker: its records from start_step on, in consumption order,
    one block per optimizer step, mapped by `tasks` BlockEncoder actors (CPU)."""
    import ray.data

    datasets = {}
    for rank in range(plan.world_size):
        positions = plan.rank_positions(rank, start_step)  # empty when resuming at the end
        rows = table.take(pa.array(plan.record_rows(positions), type=pa.int64()))
        rows = rows.append_column("position", pa.array(positions, type=pa.int64()))
        blocks = [rows.slice(i, plan.per_rank) for i in range(0, max(rows.num_rows, 1), plan.per_rank)]
        ds = ray.data.from_arrow(blocks).map_batches(
            BlockEncoder,
            fn_constructor_kwargs=encoder_args,
            batch_size=None,
            batch_format="pyarrow",
            compute=ray.data.ActorPoolStrategy(size=tasks),
            num_cpus=cpus_per_task,
        )
        ds.context.enable_progress_bars = False  # one bar per worker would drown the log
        datasets[rank_dataset_name(rank)] = ds
    return datasets


def start_early(batches: Iterable) -> Iterator:
    """Start pulling from `batches` in a background thread now (so the data tasks spin up while
    the model loads); the returned iterator yields everything in order, the first item included."""
    it = iter(batches)
    first: list = []
    error: list[BaseException] = []

    def pull() -> None:
        try:
            first.append(next(it))
        except StopIteration:
            pass
        except BaseException as e:  # re-raised in the consumer's thread
            error.append(e)

    thread = threading.Thread(target=pull, name="sft-data-start", daemon=True)
    thread.start()

    def chained() -> Iterator:
        thread.join()
        if error:
            raise error[0]
        yield from first
        yield from it

    return chained()


def micro_batches(batches: Iterable, plan: DataPlan, rank: int, start_step: int, first_step: int) -> Iterator:
    """(positions, samples, truncated count) per micro-batch for worker `rank`, from first_step on.

    `batches` are this worker's pyarrow batches of plan.micro_batch rows, beginning at start_step
    (what the driver built); a worker that Ray Train restarted from a later checkpoint skips ahead
    to first_step. Positions are checked against the plan: a reordered stream fails loudly.
    """
    expected = iter(plan.rank_positions(rank, start_step).tolist())
    skip = (first_step - start_step) * plan.per_rank
    if skip < 0:
        raise DataError(f"the checkpoint is at step {first_step} but the data starts at step {start_step}")
    for batch in batches:
        positions = batch["position"].to_pylist()
        want = [next(expected) for _ in positions]
        if positions != want:
            raise DataError(f"worker {rank} got samples {positions}, expected {want}: the stream is out of order")
        if skip > 0:
            skip -= len(positions)
            continue
        samples = [unpack(b) for b in batch["sample"].to_pylist()]
        yield positions, samples, sum(batch["truncated"].to_pylist())
