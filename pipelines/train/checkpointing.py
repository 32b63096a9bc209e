"""Exact-resume checkpoints through Ray Train, and the final export.

A checkpoint (`run_dir/<stage>/checkpoints/step_<N>/`) holds the DeepSpeed state under the tag
`deepspeed` (weights, optimizer and scheduler, sharded as ZeRO shards them), every rank's RNG
states (`rng_rank<r>.pt`) and `trainer_state.json` (step, data position, the settings that must
not change across a resume). Every rank writes its shards straight into that folder, which is
Ray Train's checkpoint storage (run_dir is on storage all nodes see), and reports it with
`ray.train.report(..., checkpoint_upload_mode=NO_UPLOAD)`: nothing is staged in a local temp dir
and copied again (a 3B ZeRO-3 checkpoint is ~40 GB with optimizer state). Ray registers the
folder once every rank has reported, keeps the newest N (`CheckpointConfig(num_to_keep)`), and
`ray.train.get_checkpoint()` hands the latest back to restarted workers, and to a re-run of the
job with the same run_dir. A folder left half-written by a crash is never registered, and is
replaced when that step is saved again; rank 0 ends each one with `complete.json` (every file
and its size), which `checkpoint_check.py` checks before a re-run resumes from it.

The export gathers full weights on rank 0 (ZeRO-3 shards consolidated) and writes
`save_pretrained` output that `modeling.load(dir)` reads.
"""

from __future__ import annotations

import json
import random
import shutil
from pathlib import Path

import numpy as np

from pipelines.train.checkpoint_check import write_manifest

STATE_FILE = "trainer_state.json"
DS_TAG = "deepspeed"
EXPERIMENT = "checkpoints"  # Ray Train's experiment name: checkpoints live in run_dir/<stage>/checkpoints


def storage_dir(run_path: Path, stage: str) -> Path:
    """Where a stage's checkpoints live (Ray Train's storage_path / experiment name)."""
    return run_path / stage / EXPERIMENT


def checkpoint_name(step: int) -> str:
    return f"step_{step:08d}"


def rng_state() -> dict:
    """Python, numpy and torch generator states, as tensors and plain lists; on a GPU worker also
    the state of this worker's own device (not every visible device's, so a resume onto a node
    with another number of visible GPUs restores the same stream)."""
    import torch

    np_name, np_keys, np_pos, np_gauss, np_cached = np.random.get_state()
    py_version, py_internal, py_gauss = random.getstate()
    state = {
        "python": [py_version, list(py_internal), py_gauss],
        "numpy": [np_name, np_keys.tolist(), int(np_pos), int(np_gauss), float(np_cached)],
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state()
    return state


def device_rng_state(saved, device_index: int):
    """The saved CUDA generator state for this worker's device: the one state a checkpoint holds,
    or, from a list (one per visible device, as older checkpoints kept them), entry
    `device_index`, else the first when the list is shorter than this node's device count."""
    if isinstance(saved, (list, tuple)):
        return saved[device_index] if device_index < len(saved) else saved[0]
    return saved


def set_rng_state(state: dict) -> None:
    import torch

    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    name, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((name, np.asarray(keys, dtype=np.uint32), pos, has_gauss, cached))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state(device_rng_state(state["cuda"], torch.cuda.current_device()))


def checkpoint_due(step: int, *, save_steps: int, stop_step: int, total_steps: int) -> bool:
    """After optimizer step `step`: every `save_steps` (0 = never), and at an early stop
    (stop_at_step) so that running the job again resumes there."""
    return (save_steps > 0 and step % save_steps == 0) or step == stop_step < total_steps


def save(engine, folder: Path, *, step: int, trainer_state: dict, metrics: dict) -> None:
    """Collective (every rank calls it at the same step): write this rank's part of checkpoint
    `step_<step>` into `folder` (the stage's checkpoint storage, e.g. run_dir/sft/checkpoints)
    and report it, with `metrics`, through `ray.train.report`."""
    import ray.train
    import torch
    import torch.distributed as dist
    from ray.train import CheckpointUploadMode

    rank = dist.get_rank() if dist.is_initialized() else 0
    target = folder / checkpoint_name(step)
    if rank == 0 and target.exists():  # left by an attempt that died before Ray registered it
        shutil.rmtree(target)
    if dist.is_initialized():
        dist.barrier()
    target.mkdir(parents=True, exist_ok=True)
    engine.save_checkpoint(str(target), tag=DS_TAG)
    torch.save(rng_state(), target / f"rng_rank{rank}.pt")
    if rank == 0:
        (target / STATE_FILE).write_text(json.dumps({**trainer_state, "step": step}, indent=2) + "\n")
    if dist.is_initialized():
        dist.barrier()  # every rank's files are written: the manifest can list them
    if rank == 0:
        write_manifest(target)
    ray.train.report(
        metrics,
        checkpoint=ray.train.Checkpoint.from_directory(str(target)),
        checkpoint_dir_name=checkpoint_name(step),
        checkpoint_upload_mode=CheckpointUploadMode.NO_UPLOAD,
    )


def restore(engine) -> dict | None:
    """Collective: load the checkpoint Ray Train hands this run (if any) into `engine` and this
    rank's RNG; returns its trainer state, or None for a fresh start."""
    import ray.train
    import torch
    import torch.distributed as dist

    checkpoint = ray.train.get_checkpoint()
    if checkpoint is None:
        return None
    rank = dist.get_rank() if dist.is_initialized() else 0
    with checkpoint.as_directory() as folder:
        folder = Path(folder)
        load_path, _ = engine.load_checkpoint(str(folder), tag=DS_TAG)
        if load_path is None:
            raise RuntimeError(f"{folder}: no DeepSpeed state under tag {DS_TAG!r}")
        set_rng_state(torch.load(folder / f"rng_rank{rank}.pt", weights_only=True))
        return json.loads((folder / STATE_FILE).read_text())


def latest_state(experiment_dir: Path) -> dict | None:
    """Driver side: the trainer state of the checkpoint a re-run will resume from (Ray Train's
    latest for this experiment folder), or None when there is none."""
    if not experiment_dir.is_dir():
        return None
    from ray.train import Result

    try:
        checkpoint = Result.from_path(str(experiment_dir)).checkpoint
    except RuntimeError:  # the folder exists but no checkpoint was ever committed
        return None
    if checkpoint is None:
        return None
    with checkpoint.as_directory() as folder:
        return json.loads((Path(folder) / STATE_FILE).read_text())


def consolidated_state_dict(engine) -> dict | None:
    """Collective: the full weights on rank 0 (CPU copies), None on other ranks. Under ZeRO-3 the
    shards are gathered with DeepSpeed's public `GatheredParameters` (all at once, as generation
    does every step, so it needs no more GPU memory than training already uses)."""
    import contextlib

    import torch.distributed as dist

    gathered = contextlib.nullcontext()
    if engine.zero_optimization_partition_weights():
        import deepspeed

        gathered = deepspeed.zero.GatheredParameters(list(engine.module.parameters()))
    with gathered:
        if dist.get_rank() != 0:
            return None
        return {k: v.detach().cpu().clone() for k, v in engine.module.state_dict().items()}


def export_pretrained(engine, processor, out_dir: Path) -> None:
    """Collective: write `save_pretrained` output of the trained model (and its processor) to
    out_dir from rank 0, via a temporary sibling renamed into place."""
    import shutil

    import torch.distributed as dist

    state = consolidated_state_dict(engine)
    if dist.get_rank() == 0:
        tmp = out_dir.with_name(f".{out_dir.name}.tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        engine.module.save_pretrained(tmp, state_dict=state)
        processor.save_pretrained(tmp)
        shutil.rmtree(out_dir, ignore_errors=True)
        tmp.rename(out_dir)
    dist.barrier()
