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

from pathlib import Path

from pipelines.resumable_log import ResumableLog

FORMAT = 1


def _valid(row) -> bool:
    return isinstance(row, dict) and isinstance(row.get("id"), str) and isinstance(row.get("prediction"), str)


class Completions:
    """The answers kept under `path` for `key`: `.texts` maps question id -> completion."""

    def __init__(self, path: Path, key: str):
        self.path, self.key = path, key
        self._log = ResumableLog(path, {"key": key, "format": FORMAT}, _valid)
        self.discarded = self._log.discarded  # answers dropped because they were made under another key
        self.texts: dict[str, str] = {row["id"]: row["prediction"] for row in self._log.rows}

    def __contains__(self, question_id: str) -> bool:
        return question_id in self.texts

    def __len__(self) -> int:
        return len(self.texts)

    def add(self, question_id: str, prediction: str) -> None:
        self._log.append({"id": question_id, "prediction": prediction})
        self.texts[question_id] = prediction

    def close(self) -> None:
        self._log.close()
