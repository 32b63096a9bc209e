"""The stage records file (`pipelines/train/records_file.py`): written part by part, complete or
absent, and read memory-mapped (opening allocates nothing; a row reads only its pages)."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.ipc
import pytest

from pipelines.train.records_file import RecordsWriter, open_records

SCHEMA = pa.schema([pa.field("id", pa.string()), pa.field("meta", pa.string())])


def part(first: int, n: int, pad: int = 10) -> pa.Table:
    rng = np.random.default_rng(first)
    return pa.table({"id": [f"r{i}" for i in range(first, first + n)],
                     "meta": [rng.bytes(pad // 2).hex() for _ in range(n)]}, schema=SCHEMA)  # fmt: skip


def test_parts_in_order_read_back_by_arrow_itself(tmp_path):
    path = tmp_path / "grpo" / "records.arrow"
    parts = [part(0, 3), part(3, 0), part(3, 5)]
    with RecordsWriter(path, SCHEMA) as out:
        for p in parts:
            out.write(p)
    assert out.ids == [f"r{i}" for i in range(8)] and out.num_rows == 8
    # An Arrow IPC file, as any Arrow reader opens it.
    with pa.OSFile(str(path)) as f:
        assert pa.ipc.open_file(f).read_all().equals(pa.concat_tables(parts))
    assert open_records(path).equals(pa.concat_tables(parts))
    assert [p.name for p in path.parent.iterdir()] == ["records.arrow"]  # no temporary left


def test_opening_allocates_nothing_and_a_row_reads_only_itself(tmp_path):
    path = tmp_path / "records.arrow"
    with RecordsWriter(path, SCHEMA) as out:
        for first in range(0, 2000, 500):
            out.write(part(first, 500, pad=20_000))  # 40 MB in all
    before = pa.total_allocated_bytes()
    table = open_records(path)
    row = table.slice(1234, 1).to_pylist()[0]
    assert pa.total_allocated_bytes() - before < 1_000_000  # zero-copy: the buffers are the mapped file
    assert row["id"] == "r1234" and len(row["meta"]) == 20_000


def test_an_error_mid_write_leaves_the_previous_file_and_no_partial_one(tmp_path):
    path = tmp_path / "records.arrow"
    with RecordsWriter(path, SCHEMA) as out:
        out.write(part(0, 4))
    with pytest.raises(RuntimeError, match="source broke"):
        with RecordsWriter(path, SCHEMA) as out:
            out.write(part(100, 4))
            raise RuntimeError("source broke")
    assert open_records(path)["id"].to_pylist() == ["r0", "r1", "r2", "r3"]
    assert [p.name for p in tmp_path.iterdir()] == ["records.arrow"]
