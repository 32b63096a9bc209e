"""ray_cluster.yaml passes Ray's own cluster-config validation and keeps its security settings."""

from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]


def test_cluster_config_validates():
    from ray.autoscaler._private.util import prepare_config, validate_config

    raw = yaml.safe_load((REPO / "ray_cluster.yaml").read_text())
    config = prepare_config(raw)
    validate_config(config)
    assert config["head_node_type"] in config["available_node_types"]
    start = " ".join(config["head_start_ray_commands"])
    assert "RAY_AUTH_MODE=token" in start
    assert "--dashboard-host=127.0.0.1" in start
    text = (REPO / "ray_cluster.yaml").read_text()
    assert "requirements.txt" in text
