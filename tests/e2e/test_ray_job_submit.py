"""The cluster path on one machine: a real `ray start --head` on loopback with a dashboard, the
tiny pipeline submitted with `ray job submit --runtime-env jobs/runtime_env.yaml`, SUCCEEDED,
outputs checked. The head is stopped at the end by its PID (never by name)."""

from __future__ import annotations

import json
import os
import random
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from tests.wandb_records import artifacts as wandb_artifacts
from tests.wandb_records import runs as wandb_runs

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent

# Small enough for CI; every stage that exists runs.
PIPELINE_OVERRIDES = [
    "data.synthetic.num_scenes=3",
    "data.synthetic.num_frames=24",
    "data.synthetic.width=96",
    "data.synthetic.height=72",
    "sft.max_steps=4",
    "sft.save_steps=2",
    "grpo.max_steps=2",
    "eval.limit=4",
]


def free_port(taken: set[int] = set()) -> int:  # noqa: B006 - one set for the session: never the same port twice
    """A free port below the kernel's ephemeral range (32768+): Ray picks its other components'
    ports by binding port 0, and a port we had taken from that range and released could be handed
    to one of them ("metrics_export is trying to use a port number ... used by other components")."""
    rng = random.Random()
    while True:
        port = rng.randrange(20000, 32000)
        if port in taken:
            continue
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
        taken.add(port)
        return port


@pytest.fixture
def ray_head(tmp_path):
    """A real head node on loopback (GCS + dashboard + job API), stopped by its PID."""
    # Explicit ports for every head service: the test session's own Ray instance already holds
    # the default dashboard-agent ports, and an agent that cannot bind never accepts jobs.
    gcs, dash, agent_http, agent_grpc, metrics, client = (free_port() for _ in range(6))
    # Token authentication on, as on a real cluster: head and client share the token through
    # the environment only.
    env = {
        **os.environ,
        "PATH": f"{BIN}:{os.environ['PATH']}",
        "RAY_USAGE_STATS_ENABLED": "0",
        "PYTHONPATH": str(REPO),
        "RAY_AUTH_MODE": "token",
        "RAY_AUTH_TOKEN": secrets.token_hex(32),
        # On SIGTERM Ray 2.60 drains the node for up to 30 s first, and this one never drains
        # (the jobs' detached actors stay): 28 s of every suite run. Stopping is not under test.
        "RAY_GRACEFUL_SHUTDOWN_DRAIN_TIMEOUT_S": "0",
    }
    env.pop("RAY_ADDRESS", None)
    # Ray's socket paths must stay under 107 bytes: pytest's tmp_path is too deep.
    ray_tmp = tempfile.mkdtemp(prefix="rayhead", dir="/tmp")
    log = open(tmp_path / "head.log", "w")
    head = subprocess.Popen(
        [
            str(BIN / "ray"),
            "start",
            "--head",
            "--block",
            "--node-ip-address=127.0.0.1",
            f"--port={gcs}",
            "--dashboard-host=127.0.0.1",
            f"--dashboard-port={dash}",
            "--num-cpus=2",
            f"--dashboard-agent-listen-port={agent_http}",
            f"--dashboard-agent-grpc-port={agent_grpc}",
            f"--metrics-export-port={metrics}",
            f"--ray-client-server-port={client}",
            "--disable-usage-stats",
            f"--temp-dir={ray_tmp}",
        ],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    address = f"http://127.0.0.1:{dash}"
    deadline = time.time() + 120
    while time.time() < deadline:
        probe = subprocess.run(
            [str(BIN / "ray"), "job", "list", "--address", address],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        if probe.returncode == 0:
            break
        if head.poll() is not None:
            raise RuntimeError(f"ray head exited early:\n{(tmp_path / 'head.log').read_text()}")
        time.sleep(2)
    else:
        head.send_signal(signal.SIGTERM)
        raise RuntimeError(f"job API never came up:\n{(tmp_path / 'head.log').read_text()}")
    try:
        yield address, env
    finally:
        head.send_signal(signal.SIGTERM)  # `ray start --block` stops the node cleanly on SIGTERM
        try:
            head.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(head.pid, signal.SIGKILL)
            head.wait()
        log.close()
        shutil.rmtree(ray_tmp, ignore_errors=True)


@pytest.mark.slow
def job_ids(address: str, env: dict) -> list[str]:
    """The submission ids of the jobs the head knows (`ray job list`)."""
    listing = subprocess.run([str(BIN / "ray"), "job", "list", "--address", address], env=env, capture_output=True,
                             text=True, timeout=60)  # fmt: skip
    return sorted(set(re.findall(r"raysubmit_\w+", listing.stdout)))


def test_submit_tiny_pipeline(ray_head, tmp_path):
    address, env = ray_head
    run_dir = tmp_path / "run"
    cmd = [
        str(BIN / "ray"),
        "job",
        "submit",
        "--address",
        address,
        "--runtime-env",
        "jobs/runtime_env.yaml",
        "--",
        "python",
        "-m",
        "jobs.pipeline",
        "--config",
        "jobs/configs/tiny.yaml",
        f"run_dir={run_dir}",
        *PIPELINE_OVERRIDES,
    ]
    deadline = time.time() + 600  # the job agent comes up after the job API answers (slowly on a busy box)
    while True:
        submit = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=1500)
        # A busy box's dashboard may also drop the submission itself ("Remote end closed connection
        # without response"): submit again only when no job was created.
        dropped = "RemoteDisconnected" in submit.stderr and not job_ids(address, env)
        if ("No available agent to submit job" not in submit.stderr and not dropped) or time.time() > deadline:
            break
        time.sleep(3)
    assert submit.returncode == 0, submit.stdout[-4000:] + submit.stderr[-4000:]
    assert "succeeded" in submit.stdout.lower()
    listing = subprocess.run(
        [str(BIN / "ray"), "job", "list", "--address", address],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert "SUCCEEDED" in listing.stdout
    assert len([p for p in (run_dir / "scans").iterdir() if p.is_dir()]) == 3
    card = json.loads((run_dir / "dataset" / "dataset_card.json").read_text())
    assert card["counts"]["train"]["total"] > 0 and card["rejects"] == []
    for stage in ("sft", "grpo", "eval/val"):  # evaluation: one folder per benchmark, our val split here
        assert (run_dir / stage / "meta.json").is_file(), stage  # every stage finished

    # The closing summary: where each stage's outputs are, then the evaluation table.
    out = submit.stdout
    assert "[pipeline] done in" in out and f"outputs under {run_dir}" in out
    for stage, folder in (("synth_scans", "scans"), ("build_dataset", "dataset"), ("sft", "sft"), ("grpo", "grpo"),
                          ("evaluate", "eval/val")):  # fmt: skip
        assert f"  {stage:<14} {run_dir / folder}/" in out, stage
    # What a user watches: GRPO's lines say how training goes; Ray's per-run noise stays out (log_level=quiet).
    assert any(line.startswith("[grpo] step 2/2 reward ") and " s/step" in line for line in out.splitlines())
    assert any(line.startswith("[sft] step ") and "grad norm" in line for line in out.splitlines())
    for noise in ("max_restarts > 0", "Token authentication", "Execution plan of Dataset"):
        assert noise not in out + submit.stderr, noise
    report = json.loads((run_dir / "eval" / "val" / "report.json").read_text())
    table = out[out.index("[pipeline] evaluation of grpo/final") :].splitlines()[1:]
    assert table[0].split() == ["task", "questions", "ours", "Spatial-MLLM-4B", "Qwen2.5-VL-3B", "GPT-4o"]
    micro = next(line for line in table if line.startswith("micro")).split()
    assert micro[1:4] == ["4", f"{report['micro']:.1f}", "48.4"]

    # W&B: one run per job in the run_dir's group, the dataset card and the report as references.
    wandb_dir = run_dir / "wandb"
    assert sorted(r["job_type"] for r in wandb_runs(wandb_dir)) == sorted(
        ["synth_scans", "build_dataset", "sft", "grpo", "evaluate"]
    )
    assert {r["group"] for r in wandb_runs(wandb_dir)} == {run_dir.name}
    by_type = {a["type"]: a for a in wandb_artifacts(wandb_dir)}
    dataset = by_type["dataset"]["entries"]
    assert dataset["dataset_card.json"][0] == (run_dir / "dataset" / "dataset_card.json").as_uri()
    shard = run_dir / "dataset" / "train" / "part-00000.parquet"
    assert dataset["train/part-00000.parquet"] == (shard.as_uri(), shard.stat().st_size)
    assert by_type["dataset"]["metadata"]["rows"] == {s: c["total"] for s, c in card["counts"].items()}
    assert by_type["evaluation"]["entries"]["report.md"][0] == (run_dir / "eval" / "val" / "report.md").as_uri()
