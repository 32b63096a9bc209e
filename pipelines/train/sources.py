"""The training mixture: every source of `data.mixture` read into training records, sized by its
rate or share, and mixed into one stream of Arrow tables (`TRAIN_SCHEMA`) that SFT and GRPO
write to their records file (`records_file.py`) and plan over.
The records come from `source_formats.READERS`, one reader per `SourceConfig.format`."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa

from data_gen.build.rebalance import stable_unit
from pipelines.config import RunConfig
from pipelines.config.mixture import SourceConfig
from pipelines.train.data import DataError
from pipelines.train.source_formats import READERS, TRAIN_SCHEMA, BadRecord, SourceRecords

# --- the mixture ---


def sources_of(cfg: RunConfig, built_split: str) -> list[SourceConfig]:
    """data.mixture.sources, or our built dataset's `built_split` alone when none are listed."""
    return list(cfg.data.mixture.sources) or [SourceConfig(name="built", format="built", split=built_split)]


def drawn(ids: list[str], count: int, seed: int, name: str) -> tuple[int, set[int]]:
    """Which of a source's records (by their `ids`, in file order) make up `count`: (whole passes,
    the positions taken once more after them). Every record once per whole pass (count above
    len(ids) repeats records), then the rest chosen in a seeded hash order of their ids and taken
    in file order. All of them (a rate of 100%) are the records as they are."""
    passes, rest = divmod(count, len(ids)) if ids else (0, 0)
    ranked = sorted(range(len(ids)), key=lambda i: (stable_unit("mixture", seed, name, ids[i]), i))
    return passes, set(ranked[:rest])


def counts(read: list[SourceRecords], mixture) -> dict[str, int]:
    """Records each source gives: by `rate`, or for the shared ones the largest total in the
    shares' proportions that none has to repeat records for (capped by mixture.total)."""
    shares = mixture.source_shares()
    sized = {r.source.name: len(r) for r in read}
    out: dict[str, int] = {}
    for r in read:
        if r.source.name in shares:
            continue
        pct = r.source.percent()
        out[r.source.name] = round(len(r) * pct / 100) if pct is not None else int(r.source.rate)
    if shares:
        norm = sum(shares.values())
        most = min(sized[name] / (share / norm) for name, share in shares.items())
        total = min(mixture.total, most) if mixture.total else most
        for name, share in shares.items():
            out[name] = min(sized[name], round(total * share / norm))
    return out


@dataclass
class Mixture:
    """The mixed records, streamed (`parts()`: TRAIN_SCHEMA tables, a source part at a time, so no
    process need hold the whole mixture), the bad ones met while reading, and a line per source."""

    sources: list[SourceRecords]
    draws: list[tuple[int, set[int]]]  # per source: (whole passes, positions taken once more)
    bad: list[BadRecord]
    read: int  # records read over all sources (the base of the bad-record share)
    lines: list[str]

    def parts(self) -> Iterator[pa.Table]:
        """The mixture in order: each source's records in file order, once per whole pass, then
        the positions drawn once more. Sources stream a part at a time (re-read per pass)."""
        for src, (passes, once_more) in zip(self.sources, self.draws, strict=True):
            for _ in range(passes):
                for rows in src.parts():
                    yield pa.Table.from_pylist(rows, schema=TRAIN_SCHEMA)
            if not once_more:
                continue
            at = 0
            for rows in src.parts():
                picked = [row for i, row in enumerate(rows, at) if i in once_more]
                at += len(rows)
                if picked:
                    yield pa.Table.from_pylist(picked, schema=TRAIN_SCHEMA)

    @property
    def table(self) -> pa.Table:
        """The whole mixture as one table (for small mixtures: tests, tools)."""
        return pa.concat_tables([TRAIN_SCHEMA.empty_table(), *self.parts()])


def read_mixture(cfg: RunConfig, built_split: str) -> Mixture:
    """Every source of data.mixture (or our built `built_split` alone) read, sized and mixed, in
    source order; raises DataError / SourceError when a source cannot be read at all or the
    mixture is empty. Our built split is read by its ids here and streamed by `Mixture.parts`."""
    read = [READERS[src.format](src, cfg) for src in sources_of(cfg, built_split)]
    want = counts(read, cfg.data.mixture)
    draws, lines = [], []
    for r in read:
        if not len(r) and want[r.source.name]:
            raise DataError(f"source {r.source.name} ({r.label}): no usable records"
                            + (f"; first problem: {r.bad[0]}" if r.bad else ""))  # fmt: skip
        draws.append(drawn(r.record_ids(), want[r.source.name], cfg.seed, r.source.name))
        bad = f", {len(r.bad)} bad" if r.bad else ""
        lines.append(f"source {r.source.name} ({r.source.format}, {r.label}): {len(r)} records{bad}, "
                     f"{want[r.source.name]} used")  # fmt: skip
    if not sum(want.values()):
        raise DataError("the training mixture holds no records")
    return Mixture(read, draws, [b for r in read for b in r.bad], sum(len(r) + len(r.bad) for r in read), lines)


def mixture_fingerprint(cfg: RunConfig) -> list:
    """What the mixture's records depend on besides our dataset: the mixture settings and the
    files' sizes and times (empty for the default, our dataset alone, so its hashes stay as they
    were)."""
    from pipelines.run_meta import files_fingerprint

    mixture = cfg.data.mixture
    if not mixture.sources:
        return []
    files = [Path(f).expanduser().resolve() for s in mixture.sources
             for f in (s.annotation, s.answers, s.frame_indices_file) if f]  # fmt: skip
    return [mixture.model_dump(mode="json"), [files_fingerprint(f) for f in files if f.exists()]]
