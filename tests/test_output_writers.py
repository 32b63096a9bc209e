"""Every place our code writes a file, and why a reader never takes a half-written one for complete.

The scan finds every write in data_gen/, pipelines/, modeling/ and jobs/ (write_text, write_bytes,
open for writing or appending, Parquet / Arrow / PIL / torch / numpy / matplotlib / safetensors
savers, save_pretrained) and names the function it is in. Each such function is listed in WRITERS
with how its output stays whole:

- ATOMIC: it writes a temporary name and renames it into place itself (checked: it renames);
- ("inside", F): it writes into a temporary folder that function F renames into place (checked: F
  renames);
- ("manifest", F): it writes into a checkpoint folder, which counts only once F has written the
  folder's file list last (pipelines/train/checkpoint_check.py; Ray Train also registers a
  checkpoint only after every rank reported);
- ("log", F): an append-only log of steps or answers; F drops what a resume redoes (checked: F
  exists);
- MEMORY: it writes to an in-memory buffer, no file;
- PROBE: it writes and removes a probe file (data_gen/storage.py).

A new writer fails this test until it is listed, which is the point: say how it stays whole.
"""

from __future__ import annotations

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
ROOTS = ("data_gen", "pipelines", "modeling", "jobs")
SAVERS = {"OSFile", "write_text", "write_bytes", "write_table", "writelines", "save", "savez", "save_file", "save_pretrained",
          "savefig", "dump", "to_parquet", "new_file", "new_stream", "ParquetWriter", "copyfile", "copy2",
          "copytree"}  # fmt: skip
RENAMES = {"replace", "rename", "move"}
ATOMIC, MEMORY, PROBE = "atomic", "memory", "probe"
SCANNET_MOVE = ("inside", "data_gen/scans/scannet_write.py:_move_into_place")
BUILD = ("inside", "data_gen/build/run.py:build_dataset")
CHECKPOINT = ("manifest", "pipelines/train/checkpoint_check.py:write_manifest")

WRITERS: dict[str, object] = {
    # the dataset build: per-scene cache files, then the dataset folder renamed as a whole
    "data_gen/build/scene_cache.py:write_table_atomic": ATOMIC,
    "data_gen/build/run.py:_write_split.flush": BUILD,
    "data_gen/build/dataset_card.py:write_card": BUILD,
    "data_gen/build/dataset_card.py:_plot": BUILD,
    "data_gen/qa/meta_info.py:write_meta_info": BUILD,
    # scans written by the synthetic generator, in the three published layouts: a temporary scene folder
    "data_gen/scans/scannet_write.py:_write_files": SCANNET_MOVE,
    "data_gen/scans/scannet_write.py:_write_json": SCANNET_MOVE,
    "data_gen/scans/scannet_write.py:_write_exported": SCANNET_MOVE,
    "data_gen/scans/sens.py:write_sens": SCANNET_MOVE,
    "data_gen/scans/ply.py:write_ply": SCANNET_MOVE,
    "data_gen/scans/arkitscenes_write.py:write_arkit_scene": SCANNET_MOVE,
    "data_gen/scans/arkitscenes_write.py:_write_frames": SCANNET_MOVE,
    "data_gen/scans/scannetpp_write.py:write_scannetpp_scene": SCANNET_MOVE,
    "data_gen/scans/label_table.py:write_label_table": ATOMIC,
    "data_gen/scans/codecs.py:encode_color": MEMORY,
    "data_gen/scans/codecs.py:encode_png16": MEMORY,
    "data_gen/storage.py:probe_write": PROBE,
    # training: records file, checkpoints, logs, the exported model
    "pipelines/train/records_file.py:RecordsWriter.__enter__": ("inside", "pipelines/train/records_file.py:RecordsWriter.__exit__"),
    "pipelines/train/records_file.py:RecordsWriter.write": ("inside", "pipelines/train/records_file.py:RecordsWriter.__exit__"),
    "pipelines/train/checkpointing.py:save": CHECKPOINT,
    "pipelines/train/loop.py:end_of_step": CHECKPOINT,
    "pipelines/train/checkpoint_check.py:write_manifest": ATOMIC,
    "pipelines/train/checkpoint_check.py:set_aside_broken": ATOMIC,
    "pipelines/train/checkpointing.py:export_pretrained": ATOMIC,
    "modeling/processor.py:SpatialMLLMProcessor.save_pretrained": ("inside", "pipelines/train/checkpointing.py:export_pretrained"),
    "pipelines/train/metrics_log.py:MetricsLogger.log": ("log", "pipelines/train/metrics_log.py:MetricsLogger.__init__"),
    "pipelines/train/metrics_log.py:_truncate": ATOMIC,
    "pipelines/train/loop.py:count_bad_samples": ("log", "pipelines/train/metrics_log.py:MetricsLogger.__init__"),
    "pipelines/grpo/train.py:log_samples": ("log", "pipelines/grpo/train.py:setup"),
    "pipelines/sft/samples.py:pack": MEMORY,
    # evaluation, frame sampling, export, run metadata
    "pipelines/resumable_log.py:ResumableLog.__init__": ("log", "pipelines/resumable_log.py:ResumableLog.__init__"),
    "pipelines/resumable_log.py:ResumableLog.append": ("log", "pipelines/resumable_log.py:ResumableLog.__init__"),
    "pipelines/evaluate/report.py:plot_per_task": ATOMIC,
    "pipelines/sample_frames/frame_folders.py:write_frame_folder": ATOMIC,
    "pipelines/export.py:run": ATOMIC,
    "pipelines/export.py:write_video": ("inside", "pipelines/export.py:run"),
    "pipelines/run_meta.py:write_text_atomic": ATOMIC,
}  # fmt: skip


def _functions(tree: ast.AST) -> dict[str, ast.AST]:
    """Every function in a module by its dotted name (Class.method, outer.inner)."""
    out: dict[str, ast.AST] = {}

    def visit(node: ast.AST, prefix: str) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                name = f"{prefix}{child.name}"
                if not isinstance(child, ast.ClassDef):
                    out[name] = child
                visit(child, f"{name}.")

    visit(tree, "")
    return out


def _called(node: ast.AST) -> str | None:
    f = node.func
    return f.attr if isinstance(f, ast.Attribute) else f.id if isinstance(f, ast.Name) else None


MODULES_WITH_OPEN = ("av", "gzip", "io")  # module.open(path, mode), not path.open(mode)


def _writes(call: ast.Call) -> bool:
    name = _called(call)
    if name in SAVERS:
        return True
    if name != "open":  # open(path, "w") or path.open("a"): a mode that writes
        return False
    module_call = isinstance(call.func, ast.Attribute) and isinstance(call.func.value, ast.Name) and call.func.value.id in MODULES_WITH_OPEN
    positional = call.args[1:2] if isinstance(call.func, ast.Name) or module_call else call.args[:1]
    modes = [a.value for a in positional if isinstance(a, ast.Constant)]
    modes += [k.value.value for k in call.keywords if k.arg == "mode" and isinstance(k.value, ast.Constant)]
    return any(isinstance(m, str) and set(m) & set("wax+") for m in modes)


def _own_calls(fn: ast.AST) -> list[ast.Call]:
    """Calls in fn's body, not in functions nested in it."""
    calls, stack = [], list(ast.iter_child_nodes(fn))
    while stack:
        node = stack.pop()
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            continue
        if isinstance(node, ast.Call):
            calls.append(node)
        stack.extend(ast.iter_child_nodes(node))
    return calls


def scan() -> tuple[dict[str, list[int]], dict[str, ast.AST]]:
    """(writer function -> the lines it writes on, every function by 'path:name')."""
    writers: dict[str, list[int]] = {}
    functions: dict[str, ast.AST] = {}
    for root in ROOTS:
        for path in sorted((REPO / root).rglob("*.py")):
            rel = path.relative_to(REPO).as_posix()
            tree = ast.parse(path.read_text(), filename=rel)
            for name, fn in _functions(tree).items():
                functions[f"{rel}:{name}"] = fn
                lines = [c.lineno for c in _own_calls(fn) if _writes(c)]
                if lines:
                    writers[f"{rel}:{name}"] = lines
            top = [c.lineno for c in _own_calls(tree) if _writes(c)]
            assert not top, f"{rel}: writes at import time (lines {top})"
    return writers, functions


def renames(fn: ast.AST) -> bool:
    return any(_called(c) in RENAMES for c in _own_calls(fn))


def test_every_writer_is_listed_with_how_its_output_stays_whole():
    writers, functions = scan()
    unlisted = {w: lines for w, lines in writers.items() if w not in WRITERS}
    assert not unlisted, f"writers not in WRITERS (say how each output stays whole): {unlisted}"
    stale = sorted(set(WRITERS) - set(writers))
    assert not stale, f"listed but writing nothing any more: {stale}"
    for writer, how in WRITERS.items():
        if how == ATOMIC:
            assert renames(functions[writer]), f"{writer} is listed atomic but renames nothing"
        elif isinstance(how, tuple):
            kind, owner = how
            assert owner in functions, f"{writer}: {owner} does not exist"
            if kind == "inside":
                assert renames(functions[owner]), f"{writer}: {owner} renames nothing"
        else:
            assert how in (MEMORY, PROBE), (writer, how)


def test_the_scan_sees_each_kind_of_write():
    """The scan itself: a write of each kind is found, a read is not."""
    source = (
        "def f(p, t, img):\n    p.write_text('x')\n    open(p, 'wb')\n    p.open('a')\n    pq.write_table(t, p)\n"
        "    img.save(p)\n    av.open(p, 'w')\n\ndef g(p):\n    open(p)\n    p.open()\n    open(p, 'rb')\n    p.read_text()\n    av.open(p)\n"
    )  # fmt: skip
    tree = ast.parse(source)
    fns = _functions(tree)
    assert len([c for c in _own_calls(fns["f"]) if _writes(c)]) == 6
    assert not [c for c in _own_calls(fns["g"]) if _writes(c)]
