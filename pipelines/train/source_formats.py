"""Training sources read into training records, one reader per format (`READERS`); the mixture
that sizes and mixes them is `sources.py`.

A training record is a QA record (`data_gen.schema.RECORD_SCHEMA`) plus where its frames come from
and, for a file record, its conversation verbatim:

- `source`: the mixture source's name;
- `media_kind` / `media_paths`: `scan` (a ScanNet scene folder), `video` (an mp4), `folder` (a folder
  of frames) or `images` (image files), absolute paths (`pipelines.media`);
- `turns`: "" for a record rendered from its question fields (our build, ScanQA, SQA3D), else JSON
  `[{"user": ..., "assistant": ...}, ...]` with one `<video>` where the video goes;
- `frame_indices` / `uniform_indices`: the frames the record names (ours: space-aware / uniform;
  a file record's own `frame_indices` in both; space-aware ones from the source's
  `frame_indices_file` in `frame_indices` only); empty = `pipelines.media.FrameRule` picks.

Formats (`SourceConfig.format`):
- `built`: run_dir/dataset/<split>/*.parquet, frames from data.scans_dir (ids kept as they are);
- `qwen_vl`: Qwen-VL finetune records, a JSON list or JSON Lines, `video` (a file, or a folder of
  frames) or `image` (one path or a list: one video's frames, its `<image>` tags become one
  `<video>`), `conversations` (human / gpt turns, `from` + `value`, or `role` + `content`). A record
  may add `frame_indices`, `id`, and `question_type` / `problem_type` / `ground_truth` / `options`
  (as `jobs.export_dataset` writes them); else a single-turn answer that is an option letter of
  the question's "A. ..." lines is multiple choice, a bare number numerical, anything else (and
  every multi-turn record) open-ended;
- `scanqa`: ScanQA_v1.0_{train,val}.json, `[{question_id, scene_id, question, answers, object_ids,
  object_names}]`;
- `sqa3d`: v1_balanced_questions_<split>_scannetv2.json `{"questions": [{question_id, scene_id,
  situation, question, ...}]}` joined on question_id with v1_balanced_sqa_annotations_<split>_
  scannetv2.json `{"annotations": [{question_id, answers: [{answer, answer_id}], ...}]}`; the
  question asked is the situation, a space, then the question.

A record that cannot be used (a malformed line, no answer, no video) is a `BadRecord` naming its
file and line; `pipelines.train.data.keep_good_records` decides whether the job skips it.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from data_gen.errors import InputError
from data_gen.schema import RECORD_SCHEMA, canonical_json
from pipelines.config import RunConfig
from pipelines.config.mixture import SourceConfig
from pipelines.formats.frame_indices import read_frame_indices
from pipelines.prompting import VIDEO_TAG
from pipelines.train.data import DataError, split_shards

TRAIN_SCHEMA = pa.schema(
    [
        *RECORD_SCHEMA,
        pa.field("source", pa.string()),
        pa.field("media_kind", pa.string()),
        pa.field("media_paths", pa.list_(pa.string())),
        pa.field("turns", pa.string()),
    ]
)
IMAGE_TAG = "<image>"
_OPTION_LINE = re.compile(r"^([A-Z])\.\s+\S", re.M)
_NUMBER = re.compile(r"^[-+]?(\d+(\.\d*)?|\.\d+)([eE][-+]?\d+)?$")
_ROLES = {"human": "user", "user": "user", "gpt": "assistant", "assistant": "assistant"}


class SourceError(InputError):
    """A source that cannot be read at all (missing file, broken JSON); names the file and line."""


@dataclass(frozen=True)
class BadRecord:
    """A record left out: where it is (file:line, or a record id) and why."""

    where: str
    problem: str

    def __str__(self) -> str:
        return f"{self.where}: {self.problem}"


@dataclass
class SourceRecords:
    """One source read: its usable records (TRAIN_SCHEMA dicts) and the bad ones. A JSON document
    is parsed whole, so its records are `rows`; our built split is `shards`, read one Parquet shard
    at a time by `parts()` (only its ids are held: `ids`)."""

    source: SourceConfig
    label: str  # what it was read from, for the log
    rows: list[dict] = field(default_factory=list)
    bad: list[BadRecord] = field(default_factory=list)
    shards: list[Path] = field(default_factory=list)
    scans: Path | None = None  # built: the scans its records' frames come from
    ids: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.shards:
            self.ids = [i for shard in self.shards for i in _read_shard(shard, ["id"])["id"].to_pylist()]

    def __len__(self) -> int:
        return len(self.ids) if self.shards else len(self.rows)

    def record_ids(self) -> list[str]:
        return self.ids if self.shards else [r["id"] for r in self.rows]

    def parts(self) -> Iterator[list[dict]]:
        """The records in file order, a part at a time (a shard, or PART_ROWS of the rows)."""
        if not self.shards:
            for i in range(0, len(self.rows), PART_ROWS):
                yield self.rows[i : i + PART_ROWS]
            return
        for shard in self.shards:
            rows = _read_shard(shard).to_pylist()
            for row in rows:
                row.update(source=self.source.name, media_kind="scan", media_paths=[str(self.scans / row["video"])],
                           turns="")  # fmt: skip
            yield rows


PART_ROWS = 4096  # records per part when a source's records are streamed on


def _read_shard(shard: Path, columns: list[str] | None = None) -> pa.Table:
    try:
        return pq.read_table(shard, schema=RECORD_SCHEMA, columns=columns)
    except (pa.ArrowInvalid, OSError) as e:
        raise DataError(f"{shard}: cannot read the shard as QA records: {e}") from e


# --- reading files with line numbers ---


def json_records(file: Path) -> Iterator[tuple[int, Any]]:
    """(line number, parsed value) of every record of a JSON list or a JSON Lines file. A JSON Lines
    line that does not parse yields (line, JSONDecodeError); a JSON list that does not parse raises
    SourceError naming the file and line (nothing after the error can be read)."""
    try:
        text = file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise SourceError(f"{file}: cannot be read ({e})") from None
    start = len(text) - len(text.lstrip())
    if text[start : start + 1] == "[":
        decoder = json.JSONDecoder()
        at = start + 1
        while True:
            while at < len(text) and text[at] in " \t\r\n,":
                at += 1
            if at < len(text) and text[at] == "]":
                return
            line = text.count("\n", 0, at) + 1
            try:
                value, at = decoder.raw_decode(text, at)
            except json.JSONDecodeError as e:
                raise SourceError(f"{file}:{text.count(chr(10), 0, e.pos) + 1}: not valid JSON ({e.msg})") from None
            yield line, value
    for number, line_text in enumerate(text.splitlines(), start=1):
        if not line_text.strip():
            continue
        try:
            yield number, json.loads(line_text)
        except json.JSONDecodeError as e:
            yield number, e


def _json_document(file: Path, key: str) -> list:
    """The list under `key` of a JSON object file (SQA3D's {"questions": [...]})."""
    try:
        doc = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as e:
        raise SourceError(f"{file}: cannot be read ({e})") from None
    except json.JSONDecodeError as e:
        raise SourceError(f"{file}:{e.lineno}: not valid JSON ({e.msg})") from None
    if not isinstance(doc, dict) or not isinstance(doc.get(key), list):
        raise SourceError(f"{file}: expected a JSON object with a {key!r} list")
    return doc[key]


def _existing(path: str | None, what: str) -> Path:
    file = Path(str(path)).expanduser().resolve()
    if not file.is_file():
        raise SourceError(f"{file}: no such {what} file")
    return file


# --- one record ---


def _row(source: str, rid: str, **fields: Any) -> dict:
    """A training record with defaults for what the format does not give."""
    row = {
        "id": rid, "dataset": "", "scene_name": "", "question_type": "other", "problem_type": "open_ended",
        "question": "", "options": [], "ground_truth": "", "rationale": "", "video": "", "frame_indices": [],
        "uniform_indices": [], "meta": "{}", "source": source, "media_kind": "scan", "media_paths": [], "turns": "",
    }  # fmt: skip
    row.update(fields)
    return row


def _key(rel: str) -> str:
    """A media path relative to its root without its suffix: the frame-indices file's key."""
    path = PurePosixPath(rel)
    return str(path.with_suffix("")) if path.suffix else str(path)


def _space_aware(indices: dict[str, list[int]] | None, key: str) -> list[int]:
    return list(indices.get(key, [])) if indices else []


def _answer_kind(question: str, answer: str) -> tuple[str, str, list[str]]:
    """(problem_type, ground_truth, options) read from a question and its answer (see the module
    docstring): an option letter of the question's "A. ..." lines, a bare number, or open-ended."""
    letters = _OPTION_LINE.findall(question)
    options = [line.strip() for line in question.splitlines() if _OPTION_LINE.match(line.strip())]
    letter = answer.strip().rstrip(".")
    if len(letters) >= 2 and letter in letters:
        return "multiple_choice", letter, options
    if _NUMBER.match(answer.strip()) and math.isfinite(float(answer.strip())):
        return "numerical", answer.strip(), []
    return "open_ended", answer.strip(), []


def qwen_vl_row(record: Any, src: SourceConfig, root: Path, indices: dict | None, image_lists: str = "video") -> dict:
    """One Qwen-VL finetune record -> a training record; ValueError says what is wrong with it.
    `image_lists` (data.mixture.image_lists): an image list as one video, or one block per image."""
    if not isinstance(record, dict):
        raise ValueError(f"a record must be a JSON object, got {type(record).__name__}")
    conversation = record.get("conversations")
    if not isinstance(conversation, list) or len(conversation) < 2:
        raise ValueError("`conversations` must be a list of at least a human and a gpt turn")
    turns: list[dict] = []
    for i, turn in enumerate(conversation):
        if not isinstance(turn, dict):
            raise ValueError(f"conversations[{i}] is not an object")
        role = _ROLES.get(turn.get("from", turn.get("role")))
        text = turn.get("value", turn.get("content"))
        if role is None or not isinstance(text, str):
            raise ValueError(f"conversations[{i}] needs `from` (human or gpt) and a string `value`")
        if role == "user":
            turns.append({"user": text, "assistant": None})
        elif not turns or turns[-1]["assistant"] is not None:
            raise ValueError(f"conversations[{i}]: a gpt turn must follow a human turn")
        else:
            turns[-1]["assistant"] = text
    if turns[-1]["assistant"] is None:
        raise ValueError("the last human turn has no gpt answer")
    video, image = record.get("video"), record.get("image")
    if video is not None and image is not None:
        raise ValueError("a record has `video` or `image`, not both")
    if video is not None:
        if isinstance(video, list):
            if len(video) != 1:
                raise ValueError(f"`video` lists {len(video)} videos; one video per record is supported")
            video = video[0]
        if not isinstance(video, str) or not video:
            raise ValueError("`video` must be a path")
        path = root / video
        kind, paths, rel = ("folder" if path.is_dir() else "video"), [str(path)], video
    elif image is not None:
        images = [image] if isinstance(image, str) else image
        if not isinstance(images, list) or not images or not all(isinstance(p, str) and p for p in images):
            raise ValueError("`image` must be a path or a list of paths")
        kind, paths, rel = "images", [str(root / p) for p in images], images[0]
        if image_lists == "images":  # each image its own block: every <image> tag stays where it is
            for t in turns:
                t["user"] = t["user"].replace(IMAGE_TAG, VIDEO_TAG)
        else:
            for t in turns:  # the images are one video: the first <image> shows it, the others go
                first, tag, rest = t["user"].partition(IMAGE_TAG)
                if tag:
                    rest = re.sub(re.escape(IMAGE_TAG) + r"\n?", "", rest)
                    t["user"] = first + VIDEO_TAG + rest
                    break
    else:
        raise ValueError("no `video` or `image`: text-only records are not supported")
    shown = sum(t["user"].count(VIDEO_TAG) for t in turns)
    blocks = len(paths) if kind == "images" and image_lists == "images" else 1
    if shown == 0:  # LLaVA-style data that leaves the tags out
        turns[0]["user"] = VIDEO_TAG * blocks + "\n" + turns[0]["user"]
    elif shown != blocks:
        what = f"its {blocks} images need one tag each" if blocks > 1 else "one video per record is supported"
        raise ValueError(f"the conversation shows {shown} <video> tags; {what}")
    own = record.get("frame_indices") or []
    if not isinstance(own, list) or not all(isinstance(i, int) and i >= 0 for i in own):
        raise ValueError("`frame_indices` must be a list of frame indices >= 0")
    question = turns[0]["user"].replace(VIDEO_TAG, "").strip()
    answer = turns[-1]["assistant"]
    problem, truth, options = _answer_kind(question, answer) if len(turns) == 1 else ("open_ended", answer, [])
    problem = record.get("problem_type", problem)
    if problem not in ("numerical", "multiple_choice", "open_ended"):
        raise ValueError(f"problem_type {problem!r} is none of numerical, multiple_choice, open_ended")
    key = _key(rel) if kind != "images" else _key(str(PurePosixPath(rel).parent))
    space_aware = own or (_space_aware(indices, key) if kind in ("video", "folder") else [])
    rid = str(record.get("id", "")) or None
    return {
        "rid": rid,
        **_row(
            src.name, "", dataset=str(record.get("dataset", src.name)), scene_name=key,
            question_type=str(record.get("question_type", "other")), problem_type=problem, question=question,
            options=[str(o) for o in record.get("options", options)], ground_truth=str(record.get("ground_truth", truth)),
            video=str(rel), frame_indices=space_aware, uniform_indices=list(own), media_kind=kind, media_paths=paths,
            turns=json.dumps(turns, ensure_ascii=False),
        ),
    }  # fmt: skip


# --- formats ---


def read_qwen_vl(src: SourceConfig, cfg: RunConfig) -> SourceRecords:
    file = _existing(src.annotation, "annotation")
    root = Path(src.media_root).expanduser().resolve() if src.media_root else file.parent
    indices = _indices(src)
    out = SourceRecords(src, str(file))
    for line, value in json_records(file):
        where = f"{file}:{line}"
        if isinstance(value, json.JSONDecodeError):
            out.bad.append(BadRecord(where, f"not valid JSON ({value.msg})"))
            continue
        try:
            row = qwen_vl_row(value, src, root, indices, cfg.data.mixture.image_lists)
        except ValueError as e:
            out.bad.append(BadRecord(where, str(e)))
            continue
        row["id"] = f"{src.name}/{row.pop('rid') or line}"
        row["meta"] = canonical_json({"file": str(file), "line": line})
        out.rows.append(row)
    return out


def read_scanqa(src: SourceConfig, cfg: RunConfig) -> SourceRecords:
    file = _existing(src.annotation, "ScanQA annotation")
    scans = _scans_root(src, cfg)
    indices = _indices(src)
    out = SourceRecords(src, str(file))
    for line, value in json_records(file):
        where = f"{file}:{line}"
        if isinstance(value, json.JSONDecodeError) or not isinstance(value, dict):
            out.bad.append(BadRecord(where, "not a JSON object"))
            continue
        missing = [k for k in ("question_id", "scene_id", "question") if not value.get(k)]
        if missing:
            out.bad.append(BadRecord(where, f"lacks {missing} (a ScanQA record has question_id, scene_id, question, answers)"))
            continue
        answers = value.get("answers")
        if not isinstance(answers, list) or not answers or not all(isinstance(a, str) and a.strip() for a in answers):
            out.bad.append(BadRecord(where, "has no answers (ScanQA's test files have none; train on train or val)"))
            continue
        scene = str(value["scene_id"])
        meta = {"answers": answers, "object_ids": value.get("object_ids", []), "object_names": value.get("object_names", [])}
        out.rows.append(_row(
            src.name, f"{src.name}/{value['question_id']}", dataset="scannet", scene_name=scene, question_type="scanqa",
            question=str(value["question"]).strip(), ground_truth=answers[0].strip(), video=scene,
            frame_indices=_space_aware(indices, scene), meta=canonical_json(meta), media_paths=[str(scans / scene)],
        ))  # fmt: skip
    return out


def sqa3d_answers_file(questions: Path) -> Path:
    """SQA3D's answers file beside its questions file (the released names differ in one word)."""
    return questions.with_name(questions.name.replace("questions", "sqa_annotations"))


def read_sqa3d(src: SourceConfig, cfg: RunConfig) -> SourceRecords:
    questions_file = _existing(src.annotation, "SQA3D questions")
    answers_file = _existing(src.answers or sqa3d_answers_file(questions_file), "SQA3D annotations (`answers`)")
    questions = _json_document(questions_file, "questions")
    by_id: dict[str, tuple[list[str], str]] = {}  # question_id -> (answers, scene_id)
    for annotation in _json_document(answers_file, "annotations"):
        if isinstance(annotation, dict) and isinstance(annotation.get("answers"), list):
            texts = [a.get("answer") for a in annotation["answers"] if isinstance(a, dict)]
            answers = [t.strip() for t in texts if isinstance(t, str) and t.strip()]
            by_id[str(annotation.get("question_id"))] = (answers, str(annotation.get("scene_id") or ""))
    scans = _scans_root(src, cfg)
    indices = _indices(src)
    out = SourceRecords(src, f"{questions_file} + {answers_file.name}")
    for i, value in enumerate(questions):
        where = f"{questions_file}: questions[{i}]"
        if not isinstance(value, dict) or not all(value.get(k) for k in ("question_id", "question")):
            out.bad.append(BadRecord(where, "lacks question_id or question"))
            continue
        answers, scene = by_id.get(str(value["question_id"]), ([], ""))
        scene = str(value.get("scene_id") or scene)
        if not answers or not scene:
            out.bad.append(BadRecord(where, f"question {value['question_id']} has no answer or scene in {answers_file.name}"))
            continue
        situation = str(value.get("situation") or "").strip()
        question = f"{situation} {str(value['question']).strip()}".strip()
        meta = {"answers": answers, "situation": situation}
        out.rows.append(_row(
            src.name, f"{src.name}/{value['question_id']}", dataset="scannet", scene_name=scene, question_type="sqa3d",
            question=question, ground_truth=answers[0], video=scene, frame_indices=_space_aware(indices, scene),
            meta=canonical_json(meta), media_paths=[str(scans / scene)],
        ))  # fmt: skip
    return out


def read_built(src: SourceConfig, cfg: RunConfig) -> SourceRecords:
    """Our dataset's split, frames from the scans (records keep their ids), read a shard at a time."""
    shards = split_shards(cfg.run_path / "dataset", src.split)
    out = SourceRecords(src, str(cfg.run_path / "dataset" / src.split), shards=shards, scans=cfg.scans_path())
    if not out.ids:
        raise DataError(f"{cfg.run_path / 'dataset' / src.split}: the {src.split} split has no records")
    return out


READERS = {"built": read_built, "qwen_vl": read_qwen_vl, "scanqa": read_scanqa, "sqa3d": read_sqa3d}


def _scans_root(src: SourceConfig, cfg: RunConfig) -> Path:
    return Path(src.media_root).expanduser().resolve() if src.media_root else cfg.scans_path()


def _indices(src: SourceConfig) -> dict[str, list[int]] | None:
    if not src.frame_indices_file:
        return None
    return read_frame_indices(src.frame_indices_file, f"frame_indices_file of source {src.name}")
