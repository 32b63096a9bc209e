"""`completions.jsonl`: every answer as it arrives, so an interrupted evaluation resumes where it
stopped, and a re-scoring (another eval.scoring) needs no generation.

    {"key": "<what the answers depend on>", "format": 1}      first line
    {"id": "<question id>", "prediction": "<completion>"}      one line per answered question

Each line is flushed as soon as its answer arrives. On opening, a file made under another key
(another model, prompt, frames or question set) is replaced by an empty one, and a last line cut
short by a crash is ignored. Questions whose video could not be read are not written: a re-run
tries them again.
"""

from __future__ import annotations

import json
from pathlib import Path

from pipelines.run_meta import write_text_atomic

FORMAT = 1


class Completions:
    """The answers kept under `path` for `key`: `.texts` maps question id -> completion."""

    def __init__(self, path: Path, key: str):
        self.path, self.key = path, key
        self.texts: dict[str, str] = {}
        self.discarded = 0  # answers dropped because they were made under another key
        self._file = None
        text = path.read_text() if path.is_file() else ""
        lines = text.splitlines()
        if lines and _json(lines[0]) == {"key": key, "format": FORMAT}:
            for line in lines[1:]:
                row = _json(line)
                if isinstance(row, dict) and isinstance(row.get("id"), str) and isinstance(row.get("prediction"), str):
                    self.texts[row["id"]] = row["prediction"]
            if not text.endswith("\n"):  # a line cut short by a crash: end it, so the next one starts clean
                with path.open("a") as f:
                    f.write("\n")
        else:
            self.discarded = max(len(lines) - 1, 0)
            path.parent.mkdir(parents=True, exist_ok=True)
            write_text_atomic(path, json.dumps({"key": key, "format": FORMAT}) + "\n")

    def __contains__(self, question_id: str) -> bool:
        return question_id in self.texts

    def __len__(self) -> int:
        return len(self.texts)

    def add(self, question_id: str, prediction: str) -> None:
        if self._file is None:
            self._file = self.path.open("a")
        self._file.write(json.dumps({"id": question_id, "prediction": prediction}) + "\n")
        self._file.flush()
        self.texts[question_id] = prediction

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


def _json(line: str):
    try:
        return json.loads(line)
    except json.JSONDecodeError:
        return None
