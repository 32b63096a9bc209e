"""Telling a storage failure (a full, read-only, vanished or refused disk) apart from a bug, wherever
it surfaced: in this process, in a Ray task, or in a Ray Train worker.

    failure = storage_failure(exc)   # the OSError behind exc, or None
    if failure:
        print(storage_message(failure))  # "cannot write /runs/a/sft/metrics.jsonl: No space left on device ..."

A job stops on one (retrying cannot free a disk) and says which path; every output is written under a
temporary name and renamed, so what was written before the failure is complete and a re-run resumes
from it.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
from pathlib import Path

# What a disk that filled up, went read-only, lost its mount or refuses us raises.
STORAGE_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM, errno.EIO,
                            errno.ESTALE, errno.ENOTCONN})  # fmt: skip


class StorageError(OSError):
    """An output could not be written. Raised where a stage would otherwise swallow the OSError
    (the build's per-scene isolation); keeps the errno and the path."""


def storage_failure(exc: BaseException | None) -> OSError | None:
    """The first storage failure in `exc`'s chain: a StorageError, or an OSError with a storage
    errno. Looks through causes and contexts and the errors Ray wraps: a task's `cause` (Ray's
    wrapper is itself an instance of the cause's class, without its errno and path), Ray Train's
    `worker_failures` (rank 0 first) and `controller_failure`."""
    stack, seen = [exc], set()
    while stack:
        e = stack.pop()
        if e is None or id(e) in seen:
            continue
        seen.add(id(e))
        stack += [e.__context__, e.__cause__, getattr(e, "controller_failure", None)]
        failures = getattr(e, "worker_failures", None)
        if isinstance(failures, dict):
            stack += [failures[rank] for rank in sorted(failures, reverse=True)]
        cause = getattr(e, "cause", None)
        if isinstance(cause, BaseException):  # a Ray wrapper: what counts is what it wraps
            stack.append(cause)
            continue
        if isinstance(e, StorageError) or (isinstance(e, OSError) and e.errno in STORAGE_ERRNOS):
            return e
    return None


def probe_write(folder: Path) -> OSError | None:
    """Write, sync and remove a small file in `folder` (or its nearest existing parent): an OSError
    naming that folder if storage refuses. For failures that name no path (Ray Train writes its run
    state through pyarrow) or are no OSError at all (torch.save on a full disk raises RuntimeError
    "basic_ios::clear: iostream error")."""
    folder = Path(folder)
    while not folder.is_dir() and folder != folder.parent:
        folder = folder.parent
    path = folder / f".write-probe-{os.getpid()}"
    try:
        with open(path, "wb") as f:
            f.write(b"\0" * 65536)
            f.flush()
            os.fsync(f.fileno())
    except OSError as e:
        return OSError(e.errno, e.strerror, str(folder))
    finally:
        with contextlib.suppress(OSError):
            path.unlink()
    return None


def storage_message(failure: OSError, run_dir: Path | None = None) -> str:
    """One line naming the path and the reason, and what to do. Without a path in `failure`, a
    probe of `run_dir` names one; failing that, run_dir itself is named."""
    if failure.filename is None and run_dir is not None:
        failure = probe_write(run_dir) or failure
    if failure.filename is not None:
        where = f"cannot write {failure.filename}"
        if failure.filename2 is not None:
            where += f" -> {failure.filename2}"
    else:
        where = f"a write under {run_dir} failed" if run_dir is not None else "a write failed (path not reported)"
    reason = failure.strerror or str(failure)
    return (f"{where}: {reason} (errno {failure.errno}). Stopped: full, read-only or lost storage does not heal "
            "by retrying. Everything written before is complete; make the storage writable and re-run to resume.")


def job_storage_failure(exc: BaseException, run_dir: Path) -> str | None:
    """What a job prints when `exc` stopped it because storage failed, else None: the failure
    found in exc's chain, or, when exc does not say (a RuntimeError from torch.save), a run_dir
    that cannot be written now."""
    failure = storage_failure(exc)
    if failure is not None:
        return storage_message(failure, run_dir)
    failure = probe_write(run_dir)
    if failure is None:
        return None
    text = re.sub(r"\x1b\[[0-9;]*m", "", str(exc)).strip()  # Ray colours its task names
    first_line = (text.splitlines() or [""])[0][:200]
    return f"{storage_message(failure)} (It surfaced as {type(exc).__name__}: {first_line})"
