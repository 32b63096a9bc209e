"""Storage failures are told apart from bugs wherever they surface (here, inside a Ray task, in a
Ray Train worker or its controller) and named with a path (data_gen/storage.py)."""

from __future__ import annotations

import errno
import pickle

import pytest
import ray
from ray.train import ControllerError, WorkerGroupError

from data_gen.storage import StorageError, probe_write, storage_failure, storage_message


def full_disk(path: str = "/runs/a/sft/metrics.jsonl") -> OSError:
    return OSError(errno.ENOSPC, "No space left on device", path)


def raised_from(cause: BaseException) -> RuntimeError:
    try:
        try:
            raise cause
        except BaseException as e:
            raise RuntimeError("while saving the checkpoint") from e
    except RuntimeError as outer:
        return outer


def test_storage_errnos_are_found_through_causes_and_other_errors_are_not():
    assert storage_failure(raised_from(full_disk())).filename == "/runs/a/sft/metrics.jsonl"
    assert storage_failure(OSError(errno.EROFS, "Read-only file system", "/x")).errno == errno.EROFS
    assert storage_failure(StorageError(None, "pyarrow gave no errno", "/x")) is not None
    for not_storage in (FileNotFoundError(errno.ENOENT, "No such file", "/x"), ValueError("bad record"),
                        raised_from(KeyError("step")), None):  # fmt: skip
        assert storage_failure(not_storage) is None


def test_ray_train_failures_are_looked_through_after_a_pickle_round_trip():
    # What fit() raises on the driver: the worker's or controller's error, unpickled.
    workers = pickle.loads(pickle.dumps(WorkerGroupError("rank 1 died", {1: ValueError("x"), 0: full_disk()})))
    assert storage_failure(workers).filename == "/runs/a/sft/metrics.jsonl"
    controller = pickle.loads(pickle.dumps(ControllerError(OSError(errno.ENOSPC, "Error writing bytes to file"))))
    found = storage_failure(controller)
    assert found.errno == errno.ENOSPC and found.filename is None
    assert storage_failure(WorkerGroupError("bug", {0: ZeroDivisionError()})) is None


@ray.remote
def _write_to_full_disk() -> None:
    raise StorageError(errno.ENOSPC, "No space left on device", "/runs/a/cache/scene0000_00.parquet")


def test_a_failure_inside_a_ray_task_keeps_its_path(ray_session):
    with pytest.raises(ray.exceptions.RayTaskError) as info:
        ray.get(_write_to_full_disk.remote())
    found = storage_failure(info.value)
    assert found.filename == "/runs/a/cache/scene0000_00.parquet" and found.errno == errno.ENOSPC


def test_the_message_names_the_path_or_probes_for_one(tmp_path):
    message = storage_message(full_disk())
    assert message.startswith("cannot write /runs/a/sft/metrics.jsonl: No space left on device (errno 28)")
    assert "re-run to resume" in message
    # No path in the error, storage writable now: the run_dir is named.
    assert storage_message(OSError(errno.EIO, "Input/output error"), tmp_path).startswith(
        f"a write under {tmp_path} failed: Input/output error (errno 5)"
    )
    assert probe_write(tmp_path) is None and list(tmp_path.iterdir()) == []  # the probe leaves nothing
