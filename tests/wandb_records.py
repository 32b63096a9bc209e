"""Read offline W&B runs back from their `.wandb` files, as a user's `wandb sync` would send them.

The file is a W&B header (7 bytes) then LevelDB-log records (32 KiB blocks; each chunk has a
7-byte header: crc32, length, type = full/first/middle/last) holding protobuf `Record`s."""

from __future__ import annotations

import json
import struct
from collections.abc import Iterator
from pathlib import Path


def records(wandb_dir: Path) -> Iterator:
    """Every protobuf Record of every offline run under wandb_dir, file by file."""
    from wandb.proto import wandb_internal_pb2 as pb

    for file in sorted(wandb_dir.rglob("*.wandb")):
        data, pos, pending, block = file.read_bytes(), 7, b"", 32768
        while pos + 7 <= len(data):
            if block - pos % block < 7:  # too little room left in the block for a chunk header
                pos += block - pos % block
                continue
            _, length, kind = struct.unpack("<IHB", data[pos : pos + 7])
            chunk, pos = data[pos + 7 : pos + 7 + length], pos + 7 + length
            if kind in (1, 4):  # full, last
                record = pb.Record()
                record.ParseFromString(pending + chunk)
                pending = b""
                yield record
            elif kind in (2, 3):  # first, middle
                pending += chunk
            else:  # zero padding at the end of a block
                pos += block - pos % block if pos % block else 0


def history(wandb_dir: Path) -> list[dict]:
    """Every logged history row."""
    return [
        {i.key or "/".join(i.nested_key): json.loads(i.value_json) for i in r.history.item}
        for r in records(wandb_dir)
        if r.WhichOneof("record_type") == "history"
    ]


def runs(wandb_dir: Path) -> list[dict]:
    """Each run's group, job_type and name."""
    return [
        {"group": r.run.run_group, "job_type": r.run.job_type, "name": r.run.display_name}
        for r in records(wandb_dir)
        if r.WhichOneof("record_type") == "run"
    ]


def artifacts(wandb_dir: Path) -> list[dict]:
    """Each logged artifact: name, type, metadata, and its entries {path: (ref, size)}."""
    return [
        {
            "name": r.artifact.name,
            "type": r.artifact.type,
            "metadata": json.loads(r.artifact.metadata or "{}"),
            "entries": {e.path: (e.ref, e.size) for e in r.artifact.manifest.contents},
        }
        for r in records(wandb_dir)
        if r.WhichOneof("record_type") == "artifact"
    ]
