"""A training stage's records on disk: `run_dir/<stage>/records.arrow`, an uncompressed Arrow IPC
file that the driver writes part by part and every training worker and data actor memory-maps.

Why a file and not Ray's object store: the records of a large mixture need not fit in the object
store or in any process. A memory-mapped IPC file is read zero-copy: opening it allocates nothing,
and a worker touches only the pages of the rows it reads (the OS page cache holds them, shared by
every process on the node). `run_dir` is on storage every node sees, as checkpoints already need.
"""

from __future__ import annotations

import os
from pathlib import Path
from types import TracebackType

import pyarrow as pa


class RecordsWriter:
    """`with RecordsWriter(path, schema) as w: w.write(part) ...`: parts appended to a temporary
    file, renamed to `path` when the block ends without an error (an error removes it, so a file at
    `path` is always complete). Keeps the ids written (`w.ids`: what a resume key hashes) and
    nothing else of the records."""

    def __init__(self, path: Path, schema: pa.Schema):
        self.path, self.schema = Path(path), schema
        self.tmp = self.path.with_name(f".{self.path.name}.tmp{os.getpid()}")
        self.ids: list[str] = []
        self._sink = self._writer = None

    def __enter__(self) -> RecordsWriter:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._sink = pa.OSFile(str(self.tmp), "wb")
        self._writer = pa.ipc.new_file(self._sink, self.schema)
        return self

    def write(self, part: pa.Table) -> None:
        if part.num_rows:
            self._writer.write_table(part if part.schema.equals(self.schema) else part.cast(self.schema))
            self.ids += part["id"].to_pylist()

    @property
    def num_rows(self) -> int:
        return len(self.ids)

    def __exit__(self, kind: type | None, error: BaseException | None, tb: TracebackType | None) -> None:
        try:
            self._writer.close()
            self._sink.close()
        finally:
            if kind is None:
                os.replace(self.tmp, self.path)
            else:
                self.tmp.unlink(missing_ok=True)


def open_records(path: Path | str) -> pa.Table:
    """The records of `path`, memory-mapped (zero-copy: no rows are read until used)."""
    return pa.ipc.open_file(pa.memory_map(str(path), "r")).read_all()
