"""ScanNet's label table, `scannetv2-labels.combined.tsv`: one row per raw annotation label.

It ships with ScanNet (next to `scans/`). Tab-separated with a header row; the columns this project
reads are `raw_category` (the free-text label of `segGroups[].label`), `category` (ScanNet's
cleaned name: `kitchen cabinets` -> `kitchen cabinet`) and `nyu40class` (`wall`, `floor`,
`ceiling`, `door`, `sofa`, ...). Every other column is kept as text. The writer produces the same
format (the synthetic scenes ship a small table so the mapping runs end to end).
"""

from __future__ import annotations

import csv
import io
import os
from dataclasses import dataclass
from pathlib import Path

from data_gen.scans.scan import ScanError

FILE_NAME = "scannetv2-labels.combined.tsv"
COLUMNS = (
    "id", "raw_category", "category", "count", "nyu40id", "eigen13id", "nyuClass", "nyu40class",
    "eigen13class", "ModelNet40", "ModelNet10", "ShapeNetCore55", "synsetoffset", "wnsynsetid",
    "wnsynsetkey", "mpcat40", "mpcat40index",
)  # fmt: skip
_NEEDED = ("raw_category", "category", "nyu40class")


@dataclass(frozen=True)
class LabelRow:
    """What the table says of one raw label (names as written in the table)."""

    raw_category: str
    category: str
    nyu40class: str


def normalise_label(label: str) -> str:
    """Lower case, single spaces, `_` as a space: how raw labels are compared ('Office_Chair ' ->
    'office chair'); ScanNet's free text has all three kinds of variation."""
    return " ".join(label.replace("_", " ").split()).lower()


def read_label_table(path: str | Path) -> dict[str, LabelRow]:
    """normalised raw label -> its row. Raises ScanError naming the file (missing, no header with
    the needed columns, a short row, or one raw label listed twice with different classes)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ScanError(path, "missing label table (ScanNet's scannetv2-labels.combined.tsv)") from None
    except (OSError, UnicodeDecodeError) as e:
        raise ScanError(path, f"cannot read the label table: {e}") from e
    reader = csv.DictReader(io.StringIO(text), delimiter="\t")
    missing = [c for c in _NEEDED if c not in (reader.fieldnames or [])]
    if missing:
        raise ScanError(path, f"label table header lacks column(s) {missing} (a tab-separated file with a header row)")
    table: dict[str, LabelRow] = {}
    for line, row in enumerate(reader, start=2):
        values = [row.get(c) for c in _NEEDED]
        if any(v is None for v in values):
            raise ScanError(path, f"line {line}: fewer columns than the header")
        raw = normalise_label(values[0])
        if not raw:
            continue
        entry = LabelRow(raw, normalise_label(values[1]), normalise_label(values[2]))
        if raw in table and table[raw] != entry:
            raise ScanError(path, f"line {line}: raw label {raw!r} listed twice with different classes")
        table[raw] = entry
    return table


def write_label_table(path: str | Path, rows: list[dict[str, str | int]]) -> None:
    """Write rows (dicts keyed by COLUMNS; absent columns empty) in ScanNet's format, atomically."""
    path = Path(path)
    buf = io.StringIO()
    writer = csv.writer(buf, delimiter="\t", lineterminator="\n")
    writer.writerow(COLUMNS)
    for row in rows:
        writer.writerow([row.get(c, "") for c in COLUMNS])
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    tmp.write_text(buf.getvalue(), encoding="utf-8")
    os.replace(tmp, path)


def find_label_table(scans_dir: str | Path) -> Path | None:
    """ScanNet's table where a download puts it: in the scans folder or the folder above it."""
    for folder in (Path(scans_dir), Path(scans_dir).parent):
        if (folder / FILE_NAME).is_file():
            return folder / FILE_NAME
    return None
