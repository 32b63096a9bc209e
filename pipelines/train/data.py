"""The records a training stage reads (SFT and GRPO): the split from Parquet, the check that their
media exist (`keep_good_records`, with the bad-record budget), and `DataPlan`, the pure arithmetic
of which record every worker sees at every step. The mixture of sources is `sources.py`."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from data_gen.errors import InputError
from data_gen.schema import RECORD_SCHEMA
from pipelines import media, prompting


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


def split_shards(dataset_dir: Path, split: str) -> list[Path]:
    """The Parquet shards of `dataset_dir/<split>`, in name order. Raises DataError."""
    folder = dataset_dir / split
    if not dataset_dir.is_dir():
        raise DataError(f"{dataset_dir}: no dataset folder (run `python -m jobs.build_dataset` first)")
    shards = sorted(folder.glob("*.parquet"))
    if not shards:
        raise DataError(f"{folder}: no *.parquet shards (run `python -m jobs.build_dataset` first)")
    return shards


def read_split(dataset_dir: Path, split: str, limit: int = 0) -> pa.Table:
    """All records of `dataset_dir/<split>/*.parquet` (shards in name order, rows in file order),
    read with the record schema; with limit > 0 only the first `limit` of them (shards past those
    are not read). Raises DataError."""
    folder = dataset_dir / split
    tables: list[pa.Table] = []
    try:
        for shard in split_shards(dataset_dir, split):
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


class MediaCheck:
    """(record id, problem) for every training record whose media cannot be read, checked cheaply
    (`pipelines.media.media_problem`: names, scan listings, video headers; each video or scan once
    over all the parts checked): a missing file, folder or scan frame, an unreadable video."""

    def __init__(self, *, sampling: str, num_frames: int):
        self.sampling, self.num_frames = sampling, num_frames
        self.seen: dict[tuple, str | None] = {}
        self.scans: dict[str, set[int]] = {}

    def problems(self, table: pa.Table) -> list[tuple[str, str]]:
        cols = {c: table[c].to_pylist() for c in ("id", "question_type", "media_kind", "media_paths", "frame_indices",
                                                  "uniform_indices")}  # fmt: skip
        out = []
        for i in range(table.num_rows):
            record = {k: v[i] for k, v in cols.items()}
            kind, paths = record["media_kind"], list(record["media_paths"])
            ids = prompting.frame_ids(record, sampling=self.sampling, num_frames=self.num_frames)
            if kind == "scan":  # one listing per scene, then a set lookup per record
                if paths[0] not in self.scans:
                    self.scans[paths[0]] = set(media.scan_frame_ids(Path(paths[0])))
                have = self.scans[paths[0]]
                lost = sorted(set(ids) - have)
                problem = (f"{paths[0]}: no such scan folder or no colour frames" if not have
                           else f"{paths[0]}: frames {lost[:5]} missing" if lost else None)  # fmt: skip
            else:
                key = (kind, tuple(paths), max(ids) if ids else -1)
                if key not in self.seen:
                    self.seen[key] = media.media_problem(kind, paths, [key[2]] if ids else [])
                problem = self.seen[key]
            if problem:
                out.append((record["id"], problem))
        return out


class GoodRecords:
    """The records whose media can be read, part by part (`keep`), and the bad-record budget over
    all of them (`finish`). Bad records are those met while reading the sources (`bad_read`, each
    naming its file and line) and those whose media are missing or unreadable (`MediaCheck`). With
    skip=False any bad record makes `finish` raise DataError listing the first few (the message
    suggests `skip_option`); with skip=True they are left out, unless more than `max_fraction` of
    the records read (`records_read`, else the records kept and dropped) are bad: then DataError
    names them."""

    def __init__(self, bad_read: list, *, sampling: str, num_frames: int, skip: bool, skip_option: str,
                 max_fraction: float, records_read: int | None = None):  # fmt: skip
        self.check = MediaCheck(sampling=sampling, num_frames=num_frames)
        self.bad = [str(b) for b in bad_read]
        self.skip, self.skip_option, self.max_fraction = skip, skip_option, max_fraction
        self.records_read, self.seen, self.kept = records_read, 0, 0

    def keep(self, table: pa.Table) -> pa.Table:
        problems = self.check.problems(table)
        self.bad += [f"{rid}: {why}" for rid, why in problems]
        self.seen += table.num_rows
        dropped = {rid for rid, _ in problems}
        if dropped:
            table = table.filter(pa.array([rid not in dropped for rid in table["id"].to_pylist()], type=pa.bool_()))
        self.kept += table.num_rows
        return table

    def finish(self) -> list[str]:
        """A line per bad record; raises DataError past the budget or when nothing is left."""
        bad, total = self.bad, self.records_read if self.records_read is not None else self.seen
        if bad and not self.skip:
            raise DataError(f"{len(bad)} of {total} records cannot be used (set {self.skip_option}=true to skip "
                            "them):\n" + _listing(bad, 5))  # fmt: skip
        if len(bad) > self.max_fraction * total:
            raise DataError(
                f"{len(bad)} of {total} records cannot be used, more than train.max_bad_record_fraction="
                f"{self.max_fraction} allows; stopped:\n{_listing(bad, 20)}"
            )
        if self.kept == 0:
            raise DataError("no record's media can be read:\n" + "\n".join(f"  {line}" for line in bad[:5]))
        return bad


def keep_good_records(
    table: pa.Table, bad_read: list, *, sampling: str, num_frames: int, skip: bool, skip_option: str,
    max_fraction: float, records_read: int | None = None,
) -> tuple[pa.Table, list[str]]:  # fmt: skip
    """`GoodRecords` over one table: (the records whose media can be read, a line per bad record)."""
    good = GoodRecords(bad_read, sampling=sampling, num_frames=num_frames, skip=skip, skip_option=skip_option,
                       max_fraction=max_fraction, records_read=records_read)  # fmt: skip
    kept = good.keep(table)
    return kept, good.finish()


def _listing(lines: list[str], most: int) -> str:
    """The first `most` lines, indented, and how many more there are."""
    more = f"\n  ... and {len(lines) - most} more" if len(lines) > most else ""
    return "\n".join(f"  {line}" for line in lines[:most]) + more


T = TypeVar("T")
FALLBACK_TRIES = 8  # records tried in place of one whose frames cannot be decoded


def with_fallback(table: pa.Table, row: int, make: Callable[[dict], T]) -> tuple[T | None, list[str]]:
    """`make(record)` for the record at `row`; when it raises an InputError (frames that cannot be
    decoded, a sample that cannot be built), for the next records of `table` in order instead (at
    most FALLBACK_TRIES in all), so a bad file never stops a step and the data order stays a pure
    function of the plan. Returns (the first result or None, a line per record that failed)."""
    errors: list[str] = []
    for k in range(min(FALLBACK_TRIES, table.num_rows)):
        record = table.slice((row + k) % table.num_rows, 1).to_pylist()[0]
        try:
            result = make(record)
        except InputError as e:
            errors.append(str(e))
            continue
        return result, [f"{line} (replaced by record {record['id']})" for line in errors]
    return None, errors
