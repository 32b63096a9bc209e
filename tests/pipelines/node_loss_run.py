"""python -m tests.pipelines.node_loss_run RUN_DIR SFT_DATA GRPO_DATA: whole nodes lost mid-build,
mid-SFT and mid-GRPO on a simulated cluster (`ray.cluster_utils.Cluster`), in a process of its own
(a process joins one Ray cluster, and the test session already has one).

The head holds no CPUs (it only coordinates, as on a real cluster); two worker nodes hold one CPU
each, and every stage spreads over both (training: STRICT_SPREAD, one rank per node). Each phase
calls its stage once, in a thread, while this (main) thread waits for a moment (a scene finished, a
checkpoint complete), kills one worker node's processes outright (SIGKILL: a host that dies, a spot
node reclaimed without notice) and adds a fresh node in its place, as an autoscaler would. Whatever
recovers, recovers without anyone acting.

- build: 4 synthetic scenes (RUN_DIR/scans -> RUN_DIR/dataset), a node lost once a scene is done;
- sft: SFT_DATA's records with tests/pipelines/sft/helpers.tiny_overrides, ZeRO-2, SFT_STEPS steps,
  a checkpoint at step 2 (RUN_DIR/sft_run), a node lost once that checkpoint is complete; one
  checkpoint kept, and W&B (offline) on, so each attempt's run is there to see;
- grpo: GRPO_DATA with tests/pipelines/grpo/helpers.grpo_overrides, ZeRO-3, a checkpoint at step 2
  (RUN_DIR/grpo_run). Each node holds a training worker and a reward actor (0.5 CPU each), so the
  lost node takes a rank and a reward actor with it.

The test compares each with a run nobody interrupted. Writes RUN_DIR/faults.json: per phase, what
was there at the fault (finished scenes, checkpoints, logged steps), which node was lost and what
it was running, and the times the node was lost, a node was back, and progress resumed.
"""

from __future__ import annotations

import json
import socket
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

NODE_CPUS = 1
TIMEOUT_S = 300
SAVE_STEP = 2
SPREAD = ["train.placement_strategy=STRICT_SPREAD", "train.max_failures=1"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def node_ports() -> dict:
    """Every port explicit: the test session's own Ray instance holds the default ones."""
    return {"dashboard_agent_listen_port": free_port(), "metrics_export_port": free_port()}


def busy_workers(node) -> list[str]:
    """What a node's worker processes are running: Ray titles a worker `ray::<task or actor>`
    while it runs one and `ray::IDLE` otherwise."""
    import psutil

    raylet = psutil.Process(node.all_processes["raylet"][0].process.pid)
    titles = []
    for proc in raylet.children(recursive=True):
        try:
            title = " ".join(proc.cmdline()).strip()
        except psutil.Error:
            continue
        if title.startswith("ray::") and not title.startswith("ray::IDLE"):
            titles.append(title)
    return titles


def lose_a_node(cluster, stage: Callable[[], object], moment: Callable[[], dict | None],
                resumed: Callable[[dict], bool], running: str) -> dict:  # fmt: skip
    """Run `stage()` in a thread; once `moment()` returns what to remember of it and a worker node
    is running `running` (a task or actor name), kill that node and add a fresh one; wait for
    `resumed(report so far)` and for the stage to end."""
    outcome: dict = {}

    def target() -> None:
        try:
            outcome["result"] = stage()
        except BaseException as e:  # re-raised below, in the main thread
            outcome["error"] = e

    thread = threading.Thread(target=target, daemon=True)
    started = time.time()
    thread.start()
    deadline = time.monotonic() + TIMEOUT_S
    while True:
        if (seen := moment()) is not None:
            busy = {n.node_id: (n, busy_workers(n)) for n in cluster.worker_nodes}
            hits = sorted(i for i, (_, titles) in busy.items() if any(running in t for t in titles))
            if hits:
                victim, titles = busy[hits[0]]
                break
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError(f"the stage ended before the moment to lose a node came: {outcome}")
        time.sleep(0.05)
    report = {"at_fault": seen, "lost_node": victim.node_id, "busy_on_lost_node": titles}
    killed_at = time.time()
    cluster.remove_node(victim, allow_graceful=False)
    new = cluster.add_node(num_cpus=NODE_CPUS, **node_ports())
    report.update(started=started, killed_at=killed_at, node_back_at=time.time(), new_node=new.node_id)
    while True:
        ended = not thread.is_alive()  # before looking: an ended stage has logged all it will
        if resumed(report):
            break
        if "error" in outcome:
            raise outcome["error"]
        if ended or time.monotonic() > deadline:
            raise RuntimeError(f"no progress seen after the node was lost: {outcome}")
        time.sleep(0.05)
    report["resumed_at"] = time.time()
    thread.join(TIMEOUT_S)
    if "error" in outcome:
        raise outcome["error"]
    if thread.is_alive():
        raise RuntimeError(f"the stage did not end within {TIMEOUT_S} s of the loss")
    report["ended_at"] = time.time()
    return report


def steps_logged(path: Path) -> list[dict]:
    if not path.exists():
        return []
    rows = []
    for line in path.read_text().splitlines():
        try:
            rows.append(json.loads(line))
        except ValueError:  # a line being written
            continue
    return rows


def checkpoint_steps(stage_dir: Path) -> list[int]:
    """Steps of the checkpoints Ray Train has registered (its run snapshot lists them; only those
    are resumed from) and whose write finished (complete.json is their last file)."""
    from pipelines.train.checkpoint_check import MANIFEST, SNAPSHOT

    experiment = stage_dir / "checkpoints"
    try:
        snapshot = json.loads((experiment / SNAPSHOT).read_text())
    except (OSError, ValueError):  # not there yet, or being replaced
        return []
    names = [r["checkpoint_dir_name"] for r in snapshot.get("checkpoint_results", [])]
    return sorted(int(n.split("_")[1]) for n in names if (experiment / n / MANIFEST).is_file())


def training_phase(cluster, stage_run, cfg, name: str) -> dict:
    """Lose a node once the checkpoint at SAVE_STEP is complete; progress has resumed when a step
    past it is logged after the loss."""
    stage_dir = cfg.run_path / name
    metrics = stage_dir / "metrics.jsonl"

    def moment() -> dict | None:
        if SAVE_STEP not in checkpoint_steps(stage_dir):
            return None
        return {"checkpoints": checkpoint_steps(stage_dir), "steps": [r["step"] for r in steps_logged(metrics)]}

    def resumed(fault: dict) -> bool:
        """A step past the checkpoint logged by the restarted ranks: after they recorded where they
        run (workers.json, naming the node that joined), not a last step of the dying attempt."""
        placement = stage_dir / "workers.json"
        try:
            nodes = [p["node_id"] for p in json.loads(placement.read_text())]
            since = placement.stat().st_mtime
        except (OSError, ValueError):
            return False
        return fault["new_node"] in nodes and any(r["step"] > SAVE_STEP and r["time"] > since for r in steps_logged(metrics))

    return lose_a_node(cluster, lambda: stage_run(cfg, log=print), moment, resumed, "RayTrainWorker")


def main(run_dir: Path, sft_data: Path, grpo_data: Path) -> None:
    import ray
    from ray.cluster_utils import Cluster

    from pipelines import dataset, scans
    from pipelines.config import build_config
    from pipelines.grpo import stage as grpo
    from pipelines.sft import stage as sft
    from tests.pipelines.grpo.helpers import grpo_overrides
    from tests.pipelines.sft.helpers import SFT_STEPS, tiny_overrides

    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 0, "include_dashboard": False, **node_ports()})
    report: dict = {}
    try:
        for _ in range(2):
            cluster.add_node(num_cpus=NODE_CPUS, **node_ports())
        cluster.wait_for_nodes()
        cluster.connect()
        run_dir.mkdir(parents=True, exist_ok=True)
        report["nodes"] = sorted(n.node_id for n in cluster.worker_nodes)

        cfg = build_config(None, [f"run_dir={run_dir}", "data.synthetic.num_scenes=4", "data.synthetic.num_frames=24",
                                  "data.synthetic.width=96", "data.synthetic.height=72"])  # fmt: skip
        scans.run(cfg)
        cache = run_dir / "cache" / "dataset"

        def scene_finished() -> dict | None:
            done = sorted(cache.glob("*.parquet")) if cache.exists() else []
            return {"finished": {p.name: p.stat().st_ino for p in done}} if done else None

        def next_scene(fault: dict) -> bool:
            return any(p.stat().st_mtime > fault["killed_at"] for p in cache.glob("*.parquet"))

        report["build"] = lose_a_node(cluster, lambda: dataset.run(cfg), scene_finished, next_scene, "process_scene")

        stages = {
            "sft": (sft.run, sft_data, [*tiny_overrides(sft_data, run_dir / "sft_run"), f"sft.max_steps={SFT_STEPS}",
                                        "train.zero_stage=2", f"sft.save_steps={SAVE_STEP}", "train.keep_checkpoints=1",
                                        "train.wandb=true"]),
            "grpo": (grpo.run, grpo_data, [*grpo_overrides(grpo_data, run_dir / "grpo_run"),
                                           f"grpo.save_steps={SAVE_STEP}", "grpo.reward_pool.num_cpus=0.5"]),
        }  # fmt: skip
        for name, (stage_run, data, overrides) in stages.items():
            stage_dir = run_dir / f"{name}_run"
            stage_dir.mkdir()
            (stage_dir / "dataset").symlink_to(data / "dataset", target_is_directory=True)
            report[name] = training_phase(cluster, stage_run, build_config(None, [*overrides, *SPREAD]), name)
            report[name]["nodes_after"] = sorted(n.node_id for n in cluster.worker_nodes)
    finally:
        (run_dir / "faults.json").write_text(json.dumps(report, indent=1, default=str))
        ray.shutdown()
        cluster.shutdown()


if __name__ == "__main__":
    main(*(Path(arg).resolve() for arg in sys.argv[1:4]))
