"""From ScanNet's free-text labels to the categories questions name (VSI-Bench's vocabulary).

    labels = LabelMapping.load(qa_config, scans_dir)        # once per build
    labels.category("Couch", dataset="scannet")              # -> "sofa"
    labels.category("shower walls", dataset="scannet")       # -> None (structural)
    labels.why_not("guitar case", dataset="scannet")         # -> "not in the vsibench vocabulary"

The rules, in order (the project's mapping file `label_map.yaml` documents them for editors):
1. the label is normalised (lower case, single spaces) and looked up in ScanNet's label table
   when there is one, giving its `category` and `nyu40class`;
2. structural classes are never objects: nyu40class wall, floor or ceiling (without a table: a
   label whose last word is wall(s), floor(s) or ceiling(s));
3. the mapping file maps the raw label, else the table category, to a question category;
4. vocabulary `vsibench` keeps only VSI-Bench's categories of the scan's dataset; `open` keeps
   every category but the catch-alls in `excluded_labels`.
"""

from __future__ import annotations

import functools
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from data_gen.qa.config import QAConfig
from data_gen.scans.label_table import LabelRow, find_label_table, normalise_label, read_label_table
from data_gen.scans.scan import ScanError

DEFAULT_LABEL_MAP = Path(__file__).with_name("label_map.yaml")
STRUCTURAL_NYU40 = frozenset({"wall", "floor", "ceiling"})
_STRUCTURAL_WORDS = frozenset({"wall", "walls", "floor", "floors", "ceiling", "ceilings"})

# VSI-Bench's closed vocabularies, as its questions write them (reference §4).
VSIBENCH_VOCABULARY: dict[str, frozenset[str]] = {
    "scannet": frozenset({
        "backpack", "bed", "bookshelf", "chair", "clock", "closet", "computer mouse", "counter", "door", "fan",
        "guitar", "keyboard", "lamp", "mattress", "microwave", "mirror", "monitor", "nightstand", "oven",
        "piano", "pillow", "plant", "printer", "radiator", "refrigerator", "sofa", "table", "telephone", "towel",
        "trash bin", "tv", "washing machine", "window",
    }),
    "arkitscenes": frozenset({
        "bathtub", "bed", "chair", "dishwasher", "fireplace", "refrigerator", "sofa", "stool", "stove", "table",
        "toilet", "tv", "washer",
    }),
    "scannetpp": frozenset({
        "basket", "bed", "blanket", "bookshelf", "bowl", "bucket", "ceiling light", "chair", "clock",
        "coat hanger", "computer mouse", "computer tower", "crate", "cup", "cushion", "cutting board", "door",
        "exhaust fan", "headphones", "heater", "kettle", "keyboard", "laptop", "microwave", "monitor", "pan",
        "paper bag", "pillow", "plant", "power strip", "printer", "refrigerator", "shoe rack", "shoes", "sofa",
        "suitcase", "table", "table lamp", "telephone", "toilet", "trash can", "tv", "whiteboard",
    }),
}  # fmt: skip
VSIBENCH_VOCABULARY["synthetic"] = VSIBENCH_VOCABULARY["scannet"]  # our scenes imitate ScanNet


class LabelMapError(ScanError):
    """The mapping file is unreadable or malformed; names the file."""


def read_label_map(path: str | Path) -> dict[str, str]:
    """normalised ScanNet name -> question category, from a YAML mapping of strings to strings."""
    path = Path(path)
    try:
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise LabelMapError(path, "missing label map") from None
    except (OSError, yaml.YAMLError) as e:
        raise LabelMapError(path, f"cannot read the label map: {e}") from e
    if doc is None:
        return {}
    if not isinstance(doc, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in doc.items()):
        raise LabelMapError(path, "the label map must be a YAML mapping of label strings to category strings")
    return {normalise_label(k): normalise_label(v) for k, v in doc.items()}


@dataclass(frozen=True)
class LabelMapping:
    """Everything that decides an instance's category; pure data, cheap to ship to Ray tasks."""

    vocabulary: str = "vsibench"  # "vsibench" | "open"
    aliases: dict[str, str] = field(default_factory=dict)  # the mapping file
    table: dict[str, LabelRow] | None = None  # ScanNet's label table, when there is one
    excluded: frozenset[str] = frozenset()  # catch-alls never kept (open vocabulary)
    sources: tuple[str, ...] = ()  # where the aliases and table came from, for messages

    @classmethod
    def load(cls, config: QAConfig, scans_dir: str | Path | None = None) -> LabelMapping:
        """The mapping `config` asks for: its label map file (default: this package's), and
        ScanNet's label table from `qa.label_table`, else found in or above `scans_dir`."""
        map_path = Path(config.label_map).expanduser() if config.label_map else DEFAULT_LABEL_MAP
        table_path = Path(config.label_table).expanduser() if config.label_table else None
        if table_path is None and scans_dir is not None:
            table_path = find_label_table(scans_dir)
        return cls(
            vocabulary=config.vocabulary,
            aliases=_cached(read_label_map, map_path),
            table=_cached(read_label_table, table_path) if table_path else None,
            excluded=frozenset(config.excluded_labels),
            sources=(str(map_path), str(table_path) if table_path else "no label table"),
        )

    def digest(self) -> str:
        """Hash of everything that decides categories (the build's cache key includes it)."""
        table = sorted((k, r.category, r.nyu40class) for k, r in (self.table or {}).items())
        payload = [self.vocabulary, sorted(self.aliases.items()), table, sorted(self.excluded)]
        return hashlib.sha256(json.dumps(payload).encode()).hexdigest()[:16]

    def category(self, label: str, dataset: str) -> str | None:
        """The question category of a raw label in a scan of `dataset`, or None (not an object)."""
        return self._resolve(label, dataset)[0]

    def why_not(self, label: str, dataset: str) -> str | None:
        """Why a label gives no object (None when it does)."""
        return self._resolve(label, dataset)[1]

    def _resolve(self, label: str, dataset: str) -> tuple[str | None, str | None]:
        raw = normalise_label(label)
        if not raw:
            return None, "empty label"
        row = self.table.get(raw) if self.table is not None else None
        if _structural(raw, row):
            return None, "structural"
        name = self.aliases.get(raw) or (self.aliases.get(row.category) if row else None)
        if name is None:
            name = row.category if row and row.category else raw
        if self.vocabulary == "open":
            return (None, "a catch-all label") if name in self.excluded or raw in self.excluded else (name, None)
        vocabulary = VSIBENCH_VOCABULARY.get(dataset, VSIBENCH_VOCABULARY["scannet"])
        if raw in vocabulary:  # a source's own name for one of its categories (ARKitScenes' washer, ScanNet++'s trash can)
            return raw, None
        return (name, None) if name in vocabulary else (None, f"{name!r} is not in the vsibench vocabulary")


def _structural(raw: str, row: LabelRow | None) -> bool:
    if row is not None:
        return row.nyu40class in STRUCTURAL_NYU40
    return raw.split()[-1] in _STRUCTURAL_WORDS


def _cached(reader, path: Path):
    """reader(path), read once per process while the file is unchanged (a build loads the mapping
    once per scene task; an edited file is read again)."""
    try:
        stat = path.stat()
    except OSError:
        return reader(path)  # missing: the reader raises the error that names it
    return _read_once(reader, str(path.resolve()), stat.st_mtime_ns, stat.st_size)


@functools.lru_cache(maxsize=16)
def _read_once(reader, path: str, mtime_ns: int, size: int):
    return reader(path)
