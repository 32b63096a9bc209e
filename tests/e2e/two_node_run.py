"""python -m tests.e2e.two_node_run RUN_DIR: the dataset build and a few SFT steps on a simulated
two-node Ray cluster (`ray.cluster_utils.Cluster`), in a process of its own because a process can
join only one Ray cluster and the test session already has one.

The head holds no CPUs (as on a real cluster, where the head only coordinates); two worker nodes
hold one CPU each, so the build's scene tasks and the two training workers (STRICT_SPREAD) must
use both. Writes RUN_DIR/nodes.json: the worker nodes' ids, for the test to compare with where
the ranks ran (run_dir/sft/workers.json).
"""

from __future__ import annotations

import json
import socket
import sys
from pathlib import Path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main(run_dir: Path) -> None:
    import ray
    from ray.cluster_utils import Cluster

    from pipelines import dataset, scans
    from pipelines.config import build_config
    from pipelines.sft import stage as sft

    # Every port explicit: the test session's own Ray instance holds the default ones.
    ports = lambda: {"dashboard_agent_listen_port": free_port(), "metrics_export_port": free_port()}  # noqa: E731
    cluster = Cluster(
        initialize_head=True,
        head_node_args={"num_cpus": 0, "include_dashboard": False, **ports()},
    )
    try:
        workers = [cluster.add_node(num_cpus=1, **ports()) for _ in range(2)]
        cluster.wait_for_nodes()
        cluster.connect()
        run_dir.mkdir(parents=True, exist_ok=True)
        (run_dir / "nodes.json").write_text(json.dumps({"workers": [n.node_id for n in workers]}))
        cfg = build_config(
            None,
            [
                f"run_dir={run_dir}",
                "data.synthetic.num_scenes=3",
                "data.synthetic.num_frames=24",
                "data.synthetic.width=96",
                "data.synthetic.height=72",
                "model.preset=tiny",
                "model.dtype=fp32",
                "train.num_workers=2",
                "train.cpus_per_worker=0.5",
                "train.placement_strategy=STRICT_SPREAD",
                "train.data_tasks_per_worker=1",
                "train.data_cpus_per_task=0.25",
                "train.zero_stage=2",
                "train.wandb=false",
                "sft.max_steps=3",
                "sft.global_batch_size=2",
                "sft.micro_batch_size=1",
                "sft.num_frames=4",
                "sft.save_steps=0",
            ],
        )
        scans.run(cfg)
        dataset.run(cfg)
        sft.run(cfg)
    finally:
        ray.shutdown()
        cluster.shutdown()


if __name__ == "__main__":
    main(Path(sys.argv[1]).resolve())
