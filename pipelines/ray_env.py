"""Starting or joining Ray from a job, and how much of Ray's own output a job shows.

`log_level` (the run config's top-level key): `quiet` (default) hides what Ray prints on every run
that says nothing about the run: the token-authentication notice, Ray Data's execution-plan lines
and progress logs for datasets that already show progress their own way (evaluation's answer bar,
training ingest), and C++ core-worker lines below FATAL in the job's process, such as the
"constructor arguments in the object store and max_restarts > 0" error Ray Data's actor pools
raise on every run. Python exceptions and our own lines are never hidden. `verbose` shows all of it.
Ray's C++ logger announces its level once when RAY_BACKEND_LOG_LEVEL is set (`logging.cc: Set ray
log level ... to 3`): that one line remains, the price of silencing the rest.
"""

from __future__ import annotations

import logging
import os

QUIET_LOGGERS = {  # logger: the level it is held at when quiet
    "ray._private.authentication.authentication_token_setup": logging.ERROR,
    "ray.data._internal.execution.streaming_executor": logging.WARNING,
    "ray.data._internal.progress": logging.ERROR,  # "Progress bars disabled" where we turned them off
}


def quiet_ray(log_level: str) -> None:
    """Apply `log_level` to this process (call before `ray.init`: the C++ log level is read then).
    An explicit RAY_BACKEND_LOG_LEVEL in the environment wins."""
    verbose = log_level == "verbose"
    if not verbose:
        os.environ.setdefault("RAY_BACKEND_LOG_LEVEL", "fatal")
    for name, level in QUIET_LOGGERS.items():
        logging.getLogger(name).setLevel(logging.NOTSET if verbose else level)


def ensure_ray(log_level: str = "quiet") -> None:
    """Join the cluster named by RAY_ADDRESS (set by `ray job submit`), else start a local
    instance: never a stale `ray start` head found on the machine by accident."""
    import ray

    quiet_ray(log_level)
    if not ray.is_initialized():
        os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
        ray.init(address=os.environ.get("RAY_ADDRESS") or "local", log_to_driver=False)


class _Passthrough:
    def __call__(self, batch):
        return batch


def start_ray_data_here(log_level: str = "quiet") -> None:
    """Run one tiny actor-pool map from this process (the job's driver, on the head node under
    `ray job submit`), before training workers run Ray Data.

    Ray Data keeps cluster-wide singleton actors (its AutoscalingCoordinator, ActorLocationTracker,
    stats actors), each detached and pinned to the node of whichever process first executes a
    dataset. Started by an SFT worker's ingest, they live on that worker's node; when the node is
    lost, every later Ray Data execution in the cluster fails ("ActorUnschedulableError: the node
    specified via NodeAffinitySchedulingStrategy doesn't exist any more"), so Ray Train's restart
    fails too (seen in tests/pipelines/test_node_loss.py; upstream: ray-project/ray#62260, not in
    2.60). Executing one dataset here starts them all on the driver's node, by public API only."""
    import ray.data

    ds = ray.data.range(1, override_num_blocks=1).map_batches(
        _Passthrough, batch_size=None, compute=ray.data.ActorPoolStrategy(size=1), num_cpus=0
    )
    show_dataset_progress(ds, log_level)
    ds.take_all()


def show_dataset_progress(ds, log_level: str) -> None:
    """Ray Data's own progress output for `ds`, on only when verbose (the caller shows progress)."""
    ds.context.enable_progress_bars = log_level == "verbose"
