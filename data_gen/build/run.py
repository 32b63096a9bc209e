"""The dataset build on Ray Data: scans -> per-scene QA records (parallel, cached) -> splits by
scene -> the question mix -> Parquet shards + card, written under a temporary name and renamed.

Ray does the heavy per-scene work (reading frames, metadata, questions, frame selection); the
driver only sees per-scene summaries and (id, type) columns, and streams shards out one by one.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import traceback
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from data_gen.build.config import MIX_GROUPS, BuildConfig
from data_gen.build.dataset_card import write_card
from data_gen.build.rebalance import select_mix, split_scenes
from data_gen.build.scene_cache import cache_key, cache_path, write_table_atomic
from data_gen.errors import InputError
from data_gen.qa.config import QAConfig
from data_gen.qa.labels import LabelMapping
from data_gen.qa.letters import LetterBalancer
from data_gen.qa.meta_info import read_meta_info, write_meta_info
from data_gen.qa.metadata import SceneMetadata
from data_gen.qa.questions import RULES_VERSION
from data_gen.qa.rule_costs import rule_costs
from data_gen.schema import RECORD_SCHEMA
from data_gen.storage import StorageError

SPLITS = ("train", "val")
SCENE_METADATA_KEY = "spatial_mllm.scene_metadata"


class DatasetBuildError(InputError):
    """The build cannot produce a dataset (no scenes, too many rejected). Names the scenes."""


def list_scenes(scans_dir: Path) -> list[Path]:
    """Every scene folder under scans_dir, sorted. Hidden and temporary folders are not scenes."""
    if not scans_dir.is_dir():
        raise DatasetBuildError(f"{scans_dir}: scans folder does not exist")
    return sorted(p for p in scans_dir.iterdir() if p.is_dir() and not p.name.startswith("."))


def settings_hash(qa: QAConfig, seed: int, labels: LabelMapping) -> str:
    """What a scene's records depend on besides its files (the label files by content, not path)."""
    payload = json.dumps({"qa": qa.model_dump(mode="json"), "seed": seed, "labels": labels.digest(),
                          "rules": RULES_VERSION}, sort_keys=True)  # fmt: skip
    return hashlib.sha256(payload.encode()).hexdigest()[:16]


def process_scene(
    row: dict, *, cache_dir: str, qa: QAConfig, labels: LabelMapping, seed: int, settings: str
) -> dict:
    """One scene -> its cached records. Runs in a Ray task; never raises for bad input."""
    from data_gen.qa.scene_records import scene_qa
    from data_gen.scans.scannet import read_scan

    scene_dir = Path(row["scene_dir"])
    out = {"scene": scene_dir.name, "key": "", "status": "ok", "reason": "", "num_records": 0, "cached": False}
    try:
        key = cache_key(scene_dir, settings)
        out["key"] = key
        path = cache_path(Path(cache_dir), scene_dir.name, key)
        if path.exists():
            out.update(cached=True, num_records=pq.read_metadata(path).num_rows)
            return out
        records, meta = scene_qa(read_scan(scene_dir), qa, seed, labels)
        write_scene_table(records, meta, path)
        out["num_records"] = len(records)
    except InputError as e:  # a ScanError, or a label file that cannot be read
        out.update(status="rejected", reason=str(e))
    except StorageError as e:  # not this scene's fault: build_dataset stops on it (see unwritable_cache)
        out.update(status=UNWRITABLE, reason=json.dumps([e.errno, e.strerror, e.filename]))
    except Exception as e:  # a scene must not take the build down; the card names it
        where = traceback.extract_tb(e.__traceback__)[-1]
        out.update(status="rejected", reason=f"{type(e).__name__}: {e} (at {Path(where.filename).name}:{where.lineno})")
    return out


def write_scene_table(records: list[dict], meta: SceneMetadata, path: Path) -> None:
    """A scene's records, its metadata in the Parquet file's key-value metadata (for meta_info.json
    and the card's category counts, also when the scene is served from the cache). Raises
    StorageError, naming the path, when the cache cannot be written."""
    table = pa.Table.from_pylist(records, schema=RECORD_SCHEMA)
    table = table.replace_schema_metadata({SCENE_METADATA_KEY: json.dumps(meta.to_dict(), sort_keys=True)})
    try:
        write_table_atomic(table, path)
    except OSError as e:
        raise StorageError(e.errno, e.strerror or str(e), e.filename or str(path)) from e


def read_scene_metadata(path: Path) -> SceneMetadata:
    return SceneMetadata.from_dict(json.loads(pq.read_schema(path).metadata[SCENE_METADATA_KEY.encode()]))


UNWRITABLE = "unwritable"  # a scene whose records could not be written to the cache


def unwritable_cache(results: list[dict]) -> None:
    """Raise StorageError, with its errno and path, if a scene could not write the cache. A scene
    task reports it in its row instead of raising: an exception crossing Ray Data's task boundary
    arrives as a UserCodeException that has lost its type, errno and path."""
    for r in results:
        if r["status"] == UNWRITABLE:
            number, reason, path = json.loads(r["reason"])
            raise StorageError(number, reason, path)


def process_meta_entry(name: str, entry: dict, *, cache_dir: str, qa: QAConfig, seed: int, settings: str,
                       dataset: str) -> dict:  # fmt: skip
    """One meta_info scene -> its cached records (no frames); never raises for a bad entry."""
    from data_gen.qa.meta_info import scene_from_entry
    from data_gen.qa.scene_records import metadata_records

    out = {"scene": name, "key": "", "status": "ok", "reason": "", "num_records": 0, "cached": False}
    try:
        payload = json.dumps([entry, dataset, settings], sort_keys=True)
        key = hashlib.sha256(payload.encode()).hexdigest()[:24]
        out["key"] = key
        path = cache_path(Path(cache_dir), name, key)
        if path.exists():
            out.update(cached=True, num_records=pq.read_metadata(path).num_rows)
            return out
        meta = scene_from_entry(name, entry, dataset)
        records = metadata_records(meta, qa, seed, video=name)
        write_scene_table(records, meta, path)
        out["num_records"] = len(records)
    except InputError as e:
        out.update(status="rejected", reason=str(e))
    except StorageError as e:
        out.update(status=UNWRITABLE, reason=json.dumps([e.errno, e.strerror, e.filename]))
    return out


@contextlib.contextmanager
def _scene_map_context() -> Iterator[None]:
    """Ray Data settings for the per-scene map, for the Datasets created inside (each Dataset
    snapshots the DataContext when it is created); the caller's context is restored after.

    Without op resource reservation. Its budgets come from the cluster resources that Ray Data's
    autoscaling coordinator (an actor, started on first use) reports asynchronously, and the
    executor refreshes them at most once a second: until then the budget is 0 CPUs and only the
    liveness rule lets a single task run ("Tasks: 1 [backpressured:tasks(ResourceBudget)]"), for
    the first second of every build and for the seconds the coordinator takes to start on a fresh
    cluster. This map has one input block of one path per scene and a few hundred bytes of output
    per scene, so there is no object-store pressure to budget for: every scene task is submitted
    at once and Ray core runs as many as the CPUs allow.
    """
    from ray.data import DataContext

    ctx = DataContext.get_current()
    saved = ctx.op_resource_reservation_enabled
    ctx.op_resource_reservation_enabled = False
    try:
        yield
    finally:
        ctx.op_resource_reservation_enabled = saved


def _scene_kwargs(cache_dir: Path, qa: QAConfig, labels: LabelMapping, seed: int) -> dict:
    settings = settings_hash(qa, seed, labels)
    return {"cache_dir": str(cache_dir), "qa": qa, "labels": labels, "seed": seed, "settings": settings}


def _run_scenes(scenes: list[Path], kwargs: dict, cpus: float) -> list[dict]:
    import ray.data

    with _scene_map_context():
        ds = ray.data.from_items([{"scene_dir": str(p)} for p in scenes], override_num_blocks=len(scenes))
        ds = ds.map(process_scene, fn_kwargs=kwargs, num_cpus=cpus)
    return sorted(ds.take_all(), key=lambda r: r["scene"])


def _run_scenes_here(scenes: list[Path], kwargs: dict) -> list[dict]:
    """The same per-scene function, one scene after another in this process (no Ray)."""
    return sorted((process_scene({"scene_dir": str(p)}, **kwargs) for p in scenes), key=lambda r: r["scene"])


def _run_scan_folders(scans_dir: Path, cache_dir: Path, qa: QAConfig, build: BuildConfig, seed: int, log,
                      sequential: bool) -> list[dict]:  # fmt: skip
    scenes = list_scenes(scans_dir)
    if not scenes:
        raise DatasetBuildError(f"{scans_dir}: no scene folders")
    log(f"[build_dataset] {len(scenes)} scenes from {scans_dir}")
    labels = LabelMapping.load(qa, scans_dir)
    log(f"[build_dataset] labels: {qa.vocabulary} vocabulary, map {labels.sources[0]}, table {labels.sources[1]}")
    kwargs = _scene_kwargs(cache_dir, qa, labels, seed)
    return _run_scenes_here(scenes, kwargs) if sequential else _run_scenes(scenes, kwargs, build.num_cpus_per_scene)


def _run_meta_info(path: Path, cache_dir: Path, qa: QAConfig, seed: int, dataset: str, log) -> list[dict]:
    """Scenes of a meta_info file, in this process: no frames to read, boxes only (milliseconds each)."""
    doc = read_meta_info(path)
    log(f"[build_dataset] {len(doc)} scenes from {path} (meta_info: no frames, no appearance order)")
    settings = hashlib.sha256(json.dumps({"qa": qa.model_dump(mode="json"), "seed": seed, "rules": RULES_VERSION},
                                         sort_keys=True).encode())  # fmt: skip
    kwargs = {"cache_dir": str(cache_dir), "qa": qa, "seed": seed, "settings": settings.hexdigest()[:16],
              "dataset": dataset}  # fmt: skip
    return [process_meta_entry(name, entry, **kwargs) for name, entry in sorted(doc.items())]


def _candidates(paths: list[Path], types: set[str]) -> list[tuple[str, str]]:
    """(id, question_type) of the cached records of these scenes whose type is in `types`."""
    rows = []
    for p in paths:
        t = pq.read_table(p, columns=["id", "question_type"])
        rows += [(i, q) for i, q in zip(t["id"].to_pylist(), t["question_type"].to_pylist(), strict=True) if q in types]
    return rows


def _write_split(paths: list[Path], keep: set[str], folder: Path, shard_rows: int) -> int:
    """Stream the kept records of these scenes into part-00000.parquet, ... in scene order, answer
    letters balanced over the split (`qa/letters.py`)."""
    balance = LetterBalancer()
    folder.mkdir(parents=True)
    keep_arr = pa.array(sorted(keep), pa.string())
    pending: list[pa.Table] = []
    rows = shard = total = 0

    def flush() -> None:
        nonlocal pending, rows, shard
        table = pa.concat_tables(pending).combine_chunks()
        pq.write_table(table, folder / f"part-{shard:05d}.parquet", compression="zstd")
        pending, rows, shard = [], 0, shard + 1

    for path in paths:
        table = pq.read_table(path, schema=RECORD_SCHEMA)
        table = table.filter(pc.is_in(table["id"], value_set=keep_arr))
        table = pa.Table.from_pylist([balance(r) for r in table.to_pylist()], schema=RECORD_SCHEMA)
        while table.num_rows:
            take = table.slice(0, shard_rows - rows)
            pending.append(take)
            rows += take.num_rows
            total += take.num_rows
            table = table.slice(take.num_rows)
            if rows == shard_rows:
                flush()
    if rows or shard == 0:  # an empty split still gets one (empty) shard with the schema
        if not pending:
            pending.append(RECORD_SCHEMA.empty_table())
        flush()
    return total


def build_dataset(
    scans_dir: Path | None,
    out_dir: Path,
    cache_dir: Path,
    qa: QAConfig,
    build: BuildConfig,
    seed: int,
    log=print,
    *,
    sequential: bool = False,
    meta_info: Path | None = None,
    meta_info_dataset: str = "scannet",
) -> dict:
    """Build the dataset into out_dir (replaced atomically), from the scenes of scans_dir or, when
    given, of a VSI-Bench `meta_info` file. Returns the dataset card.

    sequential=True runs the per-scene function in this process, one scene after another, instead
    of as Ray tasks (same outputs; for debugging, and the benchmark's baseline).
    """
    if meta_info is not None:
        results = _run_meta_info(Path(meta_info), cache_dir, qa, seed, meta_info_dataset, log)
        source = Path(meta_info)
    else:
        results = _run_scan_folders(scans_dir, cache_dir, qa, build, seed, log, sequential)
        source = scans_dir
    unwritable_cache(results)
    rejects = [r for r in results if r["status"] != "ok"]
    if len(rejects) > build.max_reject_fraction * len(results):
        names = "\n".join(f"  {r['scene']}: {r['reason']}" for r in rejects)
        raise DatasetBuildError(
            f"{len(rejects)} of {len(results)} scenes rejected (more than data.build.max_reject_fraction="
            f"{build.max_reject_fraction}):\n{names}"
        )
    ok = [r for r in results if r["status"] == "ok"]
    split_of = split_scenes([r["scene"] for r in ok], build.val_fraction, seed)
    paths = {r["scene"]: cache_path(cache_dir, r["scene"], r["key"]) for r in ok}
    scene_paths = {split: [paths[s] for s in sorted(paths) if split_of[s] == split] for split in SPLITS}
    # (id, type) of every candidate whose group the mix asks for (a group at share 0, such as
    # camera motion by default, neither counts towards target_total nor is written).
    mixed = {t for group, share in build.mix.items() if share > 0 for t in MIX_GROUPS[group]}
    candidates = {split: _candidates(scene_paths[split], mixed) for split in SPLITS}
    total_candidates = sum(len(rows) for rows in candidates.values()) or 1

    tmp = out_dir.with_name(f".{out_dir.name}.tmp{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    counts, mix_report = {}, {}
    for split in SPLITS:
        rows = candidates[split]
        target = round(build.target_total * len(rows) / total_candidates) if build.target_total else 0
        keep, mix_report[split] = select_mix(rows, build.mix, target, seed)
        counts[split] = _write_split(scene_paths[split], keep, tmp / split, build.shard_rows)
        log(f"[build_dataset] {split}: {counts[split]} records from {len(scene_paths[split])} scenes")
    scene_meta = [read_scene_metadata(paths[s]) for s in sorted(paths)]
    write_meta_info(tmp / "meta_info.json", scene_meta)
    card = write_card(
        tmp,
        results=results,
        split_of=split_of,
        mix_report=mix_report,
        config={"qa": qa.model_dump(mode="json"), "build": build.model_dump(mode="json"), "seed": seed},
        scans_dir=source,
        scenes=scene_meta,
        rule_costs=rule_costs(scene_meta, qa, seed),
    )
    old = out_dir.with_name(f".{out_dir.name}.old{os.getpid()}")
    if out_dir.exists():
        os.replace(out_dir, old)
    os.replace(tmp, out_dir)
    shutil.rmtree(old, ignore_errors=True)
    log(f"[build_dataset] wrote {out_dir} ({len(rejects)} scenes rejected)")
    return card
