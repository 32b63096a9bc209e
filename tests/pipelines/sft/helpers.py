"""Helpers for the SFT tests: run folders, shared overrides, reading an offline W&B run."""

from __future__ import annotations

import json
import struct
from pathlib import Path


def run_dir_with_data(sft_data: Path, run_dir: Path) -> Path:
    """A fresh run_dir whose dataset/ is the shared one (a symlink: nothing is copied)."""
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "dataset").symlink_to(sft_data / "dataset", target_is_directory=True)
    return run_dir


def tiny_overrides(sft_data: Path, run_dir: Path) -> list[str]:
    """The settings every Ray test shares: tiny model, 2 CPU workers, 4 frames, batch 4."""
    return [
        f"run_dir={run_dir}",
        f"data.scans_dir={sft_data / 'scans'}",
        "model.preset=tiny",
        "model.dtype=fp32",
        "train.num_workers=2",
        "train.cpus_per_worker=0.5",
        "train.data_tasks_per_worker=1",
        "train.data_cpus_per_task=0.25",
        "train.wandb=false",
        "sft.global_batch_size=4",
        "sft.micro_batch_size=1",
        "sft.num_frames=4",
        "sft.lr_llm=1e-3",
        "sft.lr_connector=1e-3",
        "sft.warmup_ratio=0.2",
        "sft.save_steps=0",
    ]


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def wandb_history(wandb_dir: Path) -> list[dict]:
    """Every history row of the offline W&B runs under wandb_dir, read from the `.wandb` files.

    The file is a W&B header (7 bytes) then LevelDB-log records (32 KiB blocks; each chunk has a
    7-byte header: crc32, length, type = full/first/middle/last) holding protobuf `Record`s."""
    from wandb.proto import wandb_internal_pb2 as pb

    rows = []
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
                if record.WhichOneof("record_type") == "history":
                    rows.append({i.key or "/".join(i.nested_key): json.loads(i.value_json) for i in record.history.item})
            elif kind in (2, 3):  # first, middle
                pending += chunk
            else:  # zero padding at the end of a block
                pos += block - pos % block if pos % block else 0
    return rows
