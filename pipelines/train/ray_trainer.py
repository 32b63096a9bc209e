"""The Ray Train side shared by SFT and GRPO: the TorchTrainer for a stage, and (inside the workers)
the record of where each rank ran.

Checkpoints go to run_dir/<stage>/checkpoints (Ray Train's storage; on a multi-node cluster
run_dir must be on storage every node sees). `train.placement_strategy` decides how the workers
are spread over nodes: PACK fills a node first, STRICT_SPREAD puts every worker on its own node.
"""

from __future__ import annotations

import socket
from pathlib import Path

from pipelines.config import RunConfig
from pipelines.train import checkpointing


def torch_trainer(cfg: RunConfig, stage: str, train_loop, loop_config: dict, **data_kwargs):
    """A TorchTrainer running `train_loop(loop_config)` on cfg.train's workers; `data_kwargs`
    (datasets=, dataset_config=) pass through to it."""
    import ray.train
    from ray.train.torch import TorchConfig, TorchTrainer

    train = cfg.train
    resources = {"CPU": train.cpus_per_worker, **({"GPU": 1} if train.use_gpu else {})}
    return TorchTrainer(
        train_loop,
        train_loop_config=loop_config,
        torch_config=TorchConfig(
            backend="nccl" if train.use_gpu else "gloo", timeout_s=train.collective_timeout_s
        ),
        scaling_config=ray.train.ScalingConfig(
            num_workers=train.num_workers,
            use_gpu=train.use_gpu,
            resources_per_worker=resources,
            placement_strategy=train.placement_strategy,
        ),
        run_config=ray.train.RunConfig(
            name=checkpointing.EXPERIMENT,
            storage_path=str(checkpointing.storage_dir(cfg.run_path, stage).parent),
            failure_config=ray.train.FailureConfig(max_failures=train.max_failures),
            checkpoint_config=ray.train.CheckpointConfig(num_to_keep=train.keep_checkpoints),
        ),
        **data_kwargs,
    )


def record_placement(path: Path, device) -> list[dict]:
    """Inside the workers, collectively: every rank's node, host and device, gathered to rank 0,
    which writes them to `path` (JSON, one entry per rank), so a run says where it ran."""
    import ray
    import ray.train
    import torch.distributed as dist

    from pipelines.run_meta import write_json_atomic

    ctx = ray.train.get_context()
    mine = {
        "rank": ctx.get_world_rank(),
        "node_id": ray.get_runtime_context().get_node_id(),
        "host": socket.gethostname(),
        "device": str(device),
    }
    everyone: list = [None] * ctx.get_world_size()
    dist.all_gather_object(everyone, mine)
    if mine["rank"] == 0:
        path.parent.mkdir(parents=True, exist_ok=True)
        write_json_atomic(path, everyone)
    return everyone
