"""The training mixture: every source of `data.mixture` read into training records, sized by its
rate or share, and mixed into one Arrow table (`TRAIN_SCHEMA`) that SFT and GRPO plan over.
The records come from `source_formats.READERS`, one reader per `SourceConfig.format`."""

from __future__ import annotations

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


def drawn(rows: list[dict], count: int, seed: int, name: str) -> list[dict]:
    """`count` of `rows`, in their file order: every row once per whole pass (count above len(rows)
    repeats records), then the rest chosen in a seeded hash order of their ids. All of them (a
    rate of 100%) are the rows as they are."""
    passes, rest = divmod(count, len(rows)) if rows else (0, 0)
    ranked = sorted(range(len(rows)), key=lambda i: (stable_unit("mixture", seed, name, rows[i]["id"]), i))
    chosen = set(ranked[:rest])
    return rows * passes + [row for i, row in enumerate(rows) if i in chosen]


def counts(read: list[SourceRecords], mixture) -> dict[str, int]:
    """Records each source gives: by `rate`, or for the shared ones the largest total in the
    shares' proportions that none has to repeat records for (capped by mixture.total)."""
    shares = mixture.source_shares()
    sized = {r.source.name: len(r.rows) for r in read}
    out: dict[str, int] = {}
    for r in read:
        if r.source.name in shares:
            continue
        pct = r.source.percent()
        out[r.source.name] = round(len(r.rows) * pct / 100) if pct is not None else int(r.source.rate)
    if shares:
        norm = sum(shares.values())
        most = min(sized[name] / (share / norm) for name, share in shares.items())
        total = min(mixture.total, most) if mixture.total else most
        for name, share in shares.items():
            out[name] = min(sized[name], round(total * share / norm))
    return out


@dataclass
class Mixture:
    """The mixed records (TRAIN_SCHEMA), the bad ones met while reading, and a line per source."""

    table: pa.Table
    bad: list[BadRecord]
    read: int  # records read over all sources (the base of the bad-record share)
    lines: list[str]


def read_mixture(cfg: RunConfig, built_split: str) -> Mixture:
    """Every source of data.mixture (or our built `built_split` alone) read, sized and mixed, in
    source order; raises DataError / SourceError when a source cannot be read at all or the
    mixture is empty."""
    read = [READERS[src.format](src, cfg) for src in sources_of(cfg, built_split)]
    want = counts(read, cfg.data.mixture)
    rows: list[dict] = []
    lines = []
    for r in read:
        if not r.rows and want[r.source.name]:
            raise DataError(f"source {r.source.name} ({r.label}): no usable records"
                            + (f"; first problem: {r.bad[0]}" if r.bad else ""))  # fmt: skip
        picked = drawn(r.rows, want[r.source.name], cfg.seed, r.source.name)
        rows += picked
        bad = f", {len(r.bad)} bad" if r.bad else ""
        lines.append(f"source {r.source.name} ({r.source.format}, {r.label}): {len(r.rows)} records{bad}, "
                     f"{len(picked)} used")  # fmt: skip
    if not rows:
        raise DataError("the training mixture holds no records")
    table = pa.Table.from_pylist(rows, schema=TRAIN_SCHEMA)
    return Mixture(table, [b for r in read for b in r.bad], sum(len(r.rows) + len(r.bad) for r in read), lines)


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
