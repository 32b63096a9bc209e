"""Starting or joining Ray from a job."""

from __future__ import annotations

import os


def ensure_ray() -> None:
    """Join the cluster named by RAY_ADDRESS (set by `ray job submit`), else start a local
    instance: never a stale `ray start` head found on the machine by accident."""
    import ray

    if ray.is_initialized():
        return
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    ray.init(address=os.environ.get("RAY_ADDRESS") or "local", log_to_driver=False)
