"""ray_cluster.yaml passes Ray's own cluster-config validation and keeps its security settings;
jobs/runtime_env.yaml is a valid runtime env that leaves run data and environments behind."""

import re
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]


def cluster_config() -> tuple[dict, str]:
    from ray.autoscaler._private.util import prepare_config, validate_config

    text = (REPO / "ray_cluster.yaml").read_text()
    config = prepare_config(yaml.safe_load(text))
    validate_config(config)
    return config, text


def test_cluster_config_validates():
    config, text = cluster_config()
    assert config["head_node_type"] in config["available_node_types"]
    assert "requirements.txt" in " ".join(config["setup_commands"])
    assert config["docker"]["image"].startswith(
        "rayproject/ray:2.60.0-py311"
    )  # = requirements.txt's ray, python
    assert "boto3" in " ".join(config["head_setup_commands"])  # the head's autoscaler needs it


def test_token_auth_on_every_node_and_token_never_in_the_file():
    config, text = cluster_config()
    for key in ("head_start_ray_commands", "worker_start_ray_commands"):
        start = " ".join(config[key])
        assert "RAY_AUTH_MODE=token" in start, key
    # The token reaches the nodes as Ray's default token file, synced from the user's machine.
    assert config["file_mounts"]["~/.ray/auth_token"] == "~/.ray/auth_token"
    assert "RAY_AUTH_TOKEN=" not in text
    assert not re.search(r"[A-Za-z0-9_\-]{32,}", text)  # nothing that looks like a secret
    local_token = Path.home() / ".ray" / "auth_token"
    if local_token.is_file() and local_token.read_text().strip():
        assert local_token.read_text().strip() not in text


def test_dashboard_only_on_the_heads_localhost():
    config, _ = cluster_config()
    start = " ".join(config["head_start_ray_commands"])
    assert "--dashboard-host=127.0.0.1" in start and "0.0.0.0" not in start


def test_a_gpu_worker_type():
    config, _ = cluster_config()
    head = config["head_node_type"]
    workers = {n: t for n, t in config["available_node_types"].items() if n != head}
    gpu = [t for t in workers.values() if t["resources"].get("GPU", 0) >= 1]
    assert gpu and all(t["max_workers"] >= t.get("min_workers", 0) for t in gpu)
    assert gpu[0]["node_config"]["InstanceType"].startswith(("p4d", "p4de", "p5"))


def test_runtime_env_loads_and_excludes_run_data():
    from ray._private.runtime_env.packaging import _get_excludes
    from ray.runtime_env import RuntimeEnv

    raw = yaml.safe_load((REPO / "jobs" / "runtime_env.yaml").read_text())
    env = RuntimeEnv(**raw)  # Ray's own validation of the fields
    assert env["working_dir"] == "."
    assert all(isinstance(v, str) for v in env["env_vars"].values())
    assert not {"WANDB_API_KEY", "RAY_AUTH_TOKEN", "HF_TOKEN"} & set(
        env["env_vars"]
    )  # secrets: environment only
    excluded = _get_excludes(REPO, raw["excludes"])
    for path in (".venv/bin/python", "runs/tiny/dataset/val/part-00000.parquet", "wandb/offline-run-1/x",
                 "runs/x/sft/checkpoints/step_10/model.safetensors", "pipelines/sft/checkpoints/a.pt"):  # fmt: skip
        assert excluded(REPO / path), path
    for path in (
        "jobs/evaluate.py",
        "pipelines/evaluate/run.py",
        "requirements.txt",
        "jobs/configs/tiny.yaml",
    ):
        assert not excluded(REPO / path), path
