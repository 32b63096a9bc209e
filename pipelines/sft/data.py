"""SFT data: the Ray Data pipeline that loads and preprocesses each worker's records in CPU actors
and streams them into the training workers (which records, in which order: `pipelines.train.data`).

Determinism (what exact resume rests on): the sample at global position p is record
`perm(seed, epoch)[p % N]` with epoch = p // N, a pure function. Optimizer step k uses positions
[k*G, (k+1)*G) (G = global batch); worker r takes the contiguous slice [r*M*A, (r+1)*M*A) of them
(M = micro batch, A = accumulation), micro-batch by micro-batch. The driver lays out each worker's
(position, record row) pairs from the first step to run, in order, as its own Ray Dataset
(`train_rank{r}`, not split by Ray, order preserved), so neither block timing nor Ray's splitter
can reorder anything; every row carries its position and the worker checks it. The records
themselves are in the stage's records file (`pipelines/train/records_file.py`), memory-mapped by
every encoder actor; the object store holds only the encoded samples in flight. Resuming at step k starts
the datasets at k; a worker restarted by Ray Train mid-run skips to its checkpoint's step.

A record whose frames cannot be decoded (or whose sample cannot be built) never fails the
pipeline: the next record of the mixture that works takes its place
(`pipelines.train.data.with_fallback`) and the sample carries a line naming the failure, which
the worker counts against the bad-record budget (`pipelines.train.loop.count_bad_samples`).
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa

from pipelines import media, prompting
from pipelines.sft.samples import encode_sample, pack, unpack
from pipelines.train.data import DataError, DataPlan, with_fallback
from pipelines.train.records_file import open_records


@functools.lru_cache(maxsize=2)
def _processor(preset_or_path: str, path: str | None, min_pixels: int | None = None, max_pixels: int | None = None):
    """One processor per process (each BlockEncoder actor builds it once), with sft's pixel bounds."""
    import modeling

    return modeling.load_processor(preset_or_path, path=path, min_pixels=min_pixels, max_pixels=max_pixels)


def encode_block(
    batch: pa.Table, *, records: pa.Table, preset_or_path: str, path: str | None, sft: dict[str, Any], rule: dict
) -> pa.Table:
    """Ray Data map step (CPU actors): (position, record row) pairs in, packed samples out (frames
    read, prompt rendered, tokenised, label mask built). `errors` lists the records that failed
    and were replaced; an empty `sample` means that no record in reach worked."""
    processor = _processor(preset_or_path, path, sft.get("min_pixels"), sft.get("max_pixels"))
    frame_rule = media.FrameRule(**rule)

    def make(record: dict) -> tuple[bytes, bool]:
        clip = prompting.record_clip(record, sampling=sft["frame_sampling"], rule=frame_rule)
        arrays, cut = encode_sample(processor, record, clip.frames, think=sft["think_format"],
                                    max_length=sft["max_length"], style=sft["prompt_style"], fps=clip.fps,
                                    train_newline=sft.get("train_turn_end_newline", False))  # fmt: skip
        return pack(arrays), cut

    blobs, truncated, errors = [], [], []
    for row in batch["row"].to_pylist():
        made, failed = with_fallback(records, row, make)
        blob, cut = made if made is not None else (b"", False)
        blobs.append(blob)
        truncated.append(cut)
        errors.append(failed)
    return pa.table(
        {
            "position": batch["position"],
            "sample": pa.array(blobs, type=pa.binary()),
            "truncated": pa.array(truncated, type=pa.bool_()),
            "errors": pa.array(errors, type=pa.list_(pa.string())),
        }
    )


class BlockEncoder:
    """`encode_block` as a Ray Data actor. An actor keeps its process (and the processor) for the
    whole run; a task's process counts as idle between blocks, and Ray reaps idle processes beyond
    its per-node soft limit after a second, so tasks re-imported torch every few steps (a 6-7 s
    stall every ~5 steps on the 2-CPU demo)."""

    def __init__(self, records: str, **encoder_args: Any):
        self.records = open_records(records)  # memory-mapped: rows are read as they are used
        self.encoder_args = encoder_args

    def __call__(self, batch: pa.Table) -> pa.Table:
        return encode_block(batch, records=self.records, **self.encoder_args)


def rank_dataset_name(rank: int) -> str:
    return f"train_rank{rank}"


def build_rank_datasets(
    records: Path, plan: DataPlan, start_step: int, *, encoder_args: dict, tasks: int, cpus_per_task: float,
    log_level: str = "quiet",
) -> dict:
    """One lazy Ray Dataset per worker: its (position, record row) pairs from start_step on, in
    consumption order, one block per optimizer step, mapped by `tasks` BlockEncoder actors (CPU)
    that read the records from their file (`records`, memory-mapped by each actor)."""
    import ray.data

    from pipelines.ray_env import show_dataset_progress

    datasets = {}
    for rank in range(plan.world_size):
        positions = plan.rank_positions(rank, start_step)  # empty when resuming at the end
        rows = pa.table({"position": pa.array(positions, type=pa.int64()),
                         "row": pa.array(plan.record_rows(positions), type=pa.int64())})  # fmt: skip
        blocks = [rows.slice(i, plan.per_rank) for i in range(0, max(rows.num_rows, 1), plan.per_rank)]
        ds = ray.data.from_arrow(blocks).map_batches(
            BlockEncoder,
            fn_constructor_kwargs={"records": str(records), **encoder_args},
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
    """(positions, samples, truncated count, failure lines) per micro-batch for worker `rank`, from
    first_step on; a sample is None when no record in reach could be made into one.

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
        samples = [unpack(b) if b else None for b in batch["sample"].to_pylist()]
        failures = [line for lines in batch["errors"].to_pylist() for line in lines]
        yield positions, samples, sum(batch["truncated"].to_pylist()), failures
