"""SFT data: the Ray Data pipeline that loads and preprocesses each worker's records in CPU actors
and streams them into the training workers (which records, in which order: `pipelines.train.data`).

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
from pathlib import Path
from typing import Any

import pyarrow as pa

from pipelines import prompting
from pipelines.sft.samples import encode_sample, pack, unpack
from pipelines.train.data import DataError, DataPlan


@functools.lru_cache(maxsize=2)
def _processor(preset_or_path: str, path: str | None):
    """One processor per process (each BlockEncoder actor builds it once)."""
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
        arrays, cut = encode_sample(processor, record, frames, think=sft["think_format"], max_length=sft["max_length"],
                                    style=sft["prompt_style"])  # fmt: skip
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
    table: pa.Table, plan: DataPlan, start_step: int, *, encoder_args: dict, tasks: int, cpus_per_task: float,
    log_level: str = "quiet",
) -> dict:
    """One lazy Ray Dataset per worker: its records from start_step on, in consumption order,
    one block per optimizer step, mapped by `tasks` BlockEncoder actors (CPU)."""
    import ray.data

    from pipelines.ray_env import show_dataset_progress

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
        show_dataset_progress(ds, log_level)  # one bar per worker would drown the log; the step lines show progress
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
