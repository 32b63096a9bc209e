"""VSI-Bench's ScanNet slice, gzipped in fixtures/vsibench/ (its README says where it comes from)."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

FOLDER = Path(__file__).parent / "fixtures" / "vsibench"


def read(name: str):
    """`scannet_meta_info_val` or `scannet_questions`, as the JSON the benchmark ships."""
    with gzip.open(FOLDER / f"{name}.json.gz", "rt", encoding="utf-8") as f:
        return json.load(f)
