"""A JSON Lines file that grows by one flushed line per finished item, so an interrupted job
resumes where it stopped: evaluation's `completions.jsonl`, sample_frames' `space_aware.jsonl`.

    {<header: what the lines depend on, with a format number>}      first line
    {<one finished item>}                                            one line each

On opening, a file under another header (other settings) is replaced by an empty one and its
lines counted as `discarded`; a last line cut short by a crash, or any line `valid` refuses, is
ignored (its item is redone).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from pipelines.run_meta import write_text_atomic


def json_or_none(line: str):
    try:
        return json.loads(line)
    except json.JSONDecodeError:
        return None


class ResumableLog:
    """`path` for `header`: `.rows` are the valid lines kept, in file order."""

    def __init__(self, path: Path, header: dict, valid: Callable[[object], bool]):
        self.path = path
        self.rows: list[dict] = []
        self.discarded = 0  # lines dropped because they were written under another header
        self._file = None
        text = path.read_text() if path.is_file() else ""
        lines = text.splitlines()
        if lines and json_or_none(lines[0]) == header:
            self.rows = [row for row in map(json_or_none, lines[1:]) if valid(row)]
            if not text.endswith("\n"):  # a line cut short by a crash: end it, so the next one starts clean
                with path.open("a") as f:
                    f.write("\n")
        else:
            self.discarded = max(len(lines) - 1, 0)
            path.parent.mkdir(parents=True, exist_ok=True)
            write_text_atomic(path, json.dumps(header) + "\n")

    def append(self, row: dict) -> None:
        """One line, written and flushed at once."""
        if self._file is None:
            self._file = self.path.open("a")
        self._file.write(json.dumps(row) + "\n")
        self._file.flush()
        self.rows.append(row)

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
