"""Question files: VSI-Bench's HF release and the Spatial-MLLM authors' v1.0 eval file, the formats
evaluation (`eval.vsibench_file`) and the `sample_frames` stage (`sample_frames.vsibench_file`) read.
`read_rows` reads a file's rows, `detect_format` names its `FileFormat`, whose `question` turns a row
into question fields (`question_fields`) and the video's path relative to the videos folder. A new
format is one more `FileFormat` entry in `FILE_FORMATS`: the columns a row must have and a row ->
question function."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import pyarrow as pa
import pyarrow.parquet as pq

from data_gen.errors import InputError
from data_gen.schema import NUMERICAL_TYPES

VSI_BENCH_COLUMNS = ("id", "dataset", "scene_name", "question_type", "question", "options", "ground_truth")


class EvalInputError(InputError):
    """Evaluation inputs that cannot be used; the message names the file and the problem."""


def question_fields(rec: dict, problem_type: str) -> dict:
    return {
        "id": str(rec["id"]),
        "dataset": str(rec["dataset"]),
        "scene_name": str(rec["scene_name"]),
        "question_type": str(rec["question_type"]),
        "problem_type": problem_type,
        "question": str(rec["question"]),
        "options": [str(o) for o in (rec.get("options") or [])],
        "ground_truth": str(rec["ground_truth"]).strip(),
    }


@dataclass(frozen=True)
class FileFormat:
    """A question-file format: the columns a row must have, and row -> (question fields, video path
    relative to the videos folder)."""

    name: str
    description: str
    columns: tuple[str, ...]
    question: Callable[[dict, int], tuple[dict, str]]


def _vsi_bench_question(row: dict, i: int) -> tuple[dict, str]:
    numerical = row["question_type"] in NUMERICAL_TYPES or not row["options"]
    return question_fields(
        row, "numerical" if numerical else "multiple_choice"
    ), f"{row['dataset']}/{row['scene_name']}.mp4"


# The v1.0 file's problem_type -> ours ("regression" is its name for numbers).
V1_PROBLEM_TYPES = {"multiple choice": "multiple_choice", "regression": "numerical", "numerical": "numerical"}
_ANSWER_TAG = re.compile(r"<answer>(.*?)</answer>", re.DOTALL)


def _spatial_mllm_v1_question(row: dict, i: int) -> tuple[dict, str]:
    kind = str(row["problem_type"]).strip().lower()
    if kind not in V1_PROBLEM_TYPES:
        raise EvalInputError(
            f"row {i}: problem_type {row['problem_type']!r} is none of {sorted(V1_PROBLEM_TYPES)}"
        )
    solution = str(row["solution"])
    tag = _ANSWER_TAG.search(solution)
    rel = PurePosixPath(str(row["path"]))
    rel = PurePosixPath(*rel.parts[1:]) if rel.parts and rel.parts[0] == "." else rel  # "./arkitscenes/x.mp4"
    fields = {
        "id": row.get("problem_id", i),
        "dataset": rel.parent.name,
        "scene_name": rel.stem,
        "question_type": row["original_question_type"],
        "question": row["problem"],
        "options": row.get("options"),
        "ground_truth": tag.group(1) if tag else solution,
    }
    return question_fields(fields, V1_PROBLEM_TYPES[kind]), str(rel)


FILE_FORMATS: dict[str, FileFormat] = {
    "vsi_bench": FileFormat("vsi_bench", "VSI-Bench's HF release", VSI_BENCH_COLUMNS, _vsi_bench_question),
    "spatial_mllm_v1": FileFormat(
        "spatial_mllm_v1",
        "the Spatial-MLLM v1.0 eval file",
        ("problem", "problem_type", "solution", "path", "original_question_type"),
        _spatial_mllm_v1_question,
    ),
}


def question_file(name: str) -> Path:
    """eval.vsibench_file as an absolute path; a folder or a missing file is a clear error."""
    file = Path(name).expanduser().resolve()
    if file.is_dir():
        found = sorted(p.name for p in file.iterdir() if p.suffix in (".parquet", ".json", ".jsonl"))
        hint = f" (it holds {', '.join(found[:5])})" if found else ""
        raise EvalInputError(
            f"eval.vsibench_file={name} is a folder: give the question file inside it{hint}; the videos "
            f"folder is eval.videos_dir"
        )
    if not file.is_file():
        raise EvalInputError(f"{file}: no such question file (eval.vsibench_file)")
    return file


def read_rows(file: Path) -> list[dict]:
    """Rows of a question file: Parquet, a JSON list of objects, or JSON Lines."""
    if file.suffix == ".parquet":
        try:
            return pq.read_table(file).to_pylist()
        except (OSError, ValueError, pa.ArrowException) as e:
            raise EvalInputError(f"{file}: cannot read as Parquet ({e})") from None
    text = file.read_text()
    try:
        doc = json.loads(text)
        rows = doc if isinstance(doc, list) else None
    except json.JSONDecodeError:
        try:
            rows = [json.loads(line) for line in text.splitlines() if line.strip()]
        except json.JSONDecodeError as e:
            raise EvalInputError(f"{file}: neither JSON nor JSON Lines ({e})") from None
    if rows is None or not all(isinstance(r, dict) for r in rows):
        raise EvalInputError(f"{file}: expected a list of question objects")
    return rows


def detect_format(file: Path, rows: list[dict], file_format: str = "auto") -> FileFormat:
    """The format `file_format` names, or the one whose columns the first row has (`auto`)."""
    if file_format != "auto":
        return FILE_FORMATS[file_format]
    first = rows[0] if rows else {}
    for fmt in FILE_FORMATS.values():
        if all(c in first for c in fmt.columns):
            return fmt
    wants = "; ".join(
        f"{fmt.description} ({fmt.name}) needs {list(fmt.columns)}, lacks {[c for c in fmt.columns if c not in first]}"
        for fmt in FILE_FORMATS.values()
    )
    raise EvalInputError(f"{file}: row 0 is in no known format: {wants}")
