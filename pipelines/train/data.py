"""The records a training stage reads (SFT and GRPO): the split from Parquet, the check that their
frames exist, and `DataPlan`, the pure arithmetic of which record every worker sees at every step."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from data_gen.errors import InputError
from data_gen.schema import RECORD_SCHEMA
from pipelines import prompting


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


def read_split(dataset_dir: Path, split: str, limit: int = 0) -> pa.Table:
    """All records of `dataset_dir/<split>/*.parquet` (shards in name order, rows in file order),
    read with the record schema; with limit > 0 only the first `limit` of them (shards past those
    are not read). Raises DataError."""
    folder = dataset_dir / split
    if not dataset_dir.is_dir():
        raise DataError(f"{dataset_dir}: no dataset folder (run `python -m jobs.build_dataset` first)")
    shards = sorted(folder.glob("*.parquet"))
    if not shards:
        raise DataError(f"{folder}: no *.parquet shards (run `python -m jobs.build_dataset` first)")
    tables: list[pa.Table] = []
    try:
        for shard in shards:
            tables.append(pq.read_table(shard, schema=RECORD_SCHEMA))
            if limit and sum(t.num_rows for t in tables) >= limit:
                break
    except (pa.ArrowInvalid, OSError) as e:
        raise DataError(f"{folder}: cannot read the shards as QA records: {e}") from e
    table = pa.concat_tables(tables)
    if limit:
        table = table.slice(0, limit)
    if table.num_rows == 0:
        raise DataError(f"{folder}: the {split} split has no records")
    return table


def check_frames(
    table: pa.Table, scans_root: Path, *, sampling: str, num_frames: int, skip: bool, skip_option: str | None = None
) -> tuple[pa.Table, list[str]]:
    """(records whose frames exist, ids of the skipped ones). With skip=False a record with
    missing frames raises DataError listing the first few, before any training starts; the
    message suggests the caller's `skip_option` (e.g. `sft.skip_bad_records`) when it has one."""
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
        hint = f" (set {skip_option}=true to skip them)" if skip_option else ""
        raise DataError(f"{len(bad)} of {table.num_rows} records have missing frames{hint}:\n{listing}")
    kept = table.take(pa.array(keep, type=pa.int64()))
    if kept.num_rows == 0:
        raise DataError(f"no record has all its frames under {scans_root}")
    return kept, [rid for rid, _ in bad]
