"""The config loader every job shares: YAML + dotted overrides, strict keys, exit 2 before work."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from pipelines.config import ConfigError, RunConfig, build_config, help_text, load_config

REPO = Path(__file__).resolve().parents[2]


def test_yaml_then_overrides_typed():
    cfg = build_config("run_dir: /tmp/r\nsft: {max_steps: 4}\n", ["sft.max_steps=7", "data.scans_dir=/data/scans"])
    assert cfg.sft.max_steps == 7  # the override wins over the file
    assert cfg.data.scans_dir == "/data/scans"
    assert cfg.run_dir == "/tmp/r"
    assert cfg.model.preset == "tiny"  # untouched keys keep their defaults


def test_override_into_a_dict_edits_it():
    cfg = build_config(None, ["data.build.mix.counting=10"])
    assert cfg.data.build.mix["counting"] == 10.0
    assert cfg.data.build.mix["rel_direction"] == 31.64  # the rest of the default mix survives


@pytest.mark.parametrize(
    "overrides, key",
    [
        (["sft.max_stepz=3"], "sft.max_stepz"),
        (["sft.max_steps=three"], "sft.max_steps"),
        (["model.preset=huge"], "model.preset"),
        (["data.synthetic.num_scenes=0"], "data.synthetic.num_scenes"),
    ],
)
def test_bad_key_or_value_names_the_key(overrides, key):
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        build_config(None, overrides)


def test_unknown_key_in_yaml_names_it():
    with pytest.raises(ConfigError, match=r"sft\.foo"):
        build_config("sft: {foo: 1}")


def test_missing_config_file():
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(["--config", "/nonexistent.yaml"])


def test_help_lists_every_key_with_default():
    text = help_text()
    for key in ["run_dir", "seed", "data.scans_dir", "data.synthetic.num_scenes", "model.preset",
                "model.path", "sft.max_steps", "grpo.max_steps", "eval.split"]:
        assert f"  {key} = " in text


@pytest.mark.parametrize("path", sorted((REPO / "jobs" / "configs").glob("*.yaml")), ids=lambda p: p.name)
def test_every_shipped_yaml_loads(path):
    assert isinstance(load_config(["--config", str(path)]), RunConfig)


def test_scannet_size_preset_and_its_checks():
    syn = load_config(["--config", str(REPO / "jobs" / "configs" / "scannet_size.yaml")]).data.synthetic
    assert (syn.width, syn.height, syn.depth_width, syn.depth_height, syn.num_frames) == (1296, 968, 640, 480, 1600)
    assert syn.sizes() == {"depth_size": (640, 480), "color_scale": 2, "mesh_step_scale": 0.4}
    assert build_config(None, []).data.synthetic.sizes()["depth_size"] is None  # depth at the colour size
    with pytest.raises(ConfigError, match="depth_width and depth_height together"):
        build_config(None, ["data.synthetic.depth_width=640"])
    with pytest.raises(ConfigError, match="color_scale=3 must divide"):
        build_config(None, ["data.synthetic.color_scale=3"])


def test_section_hash_tracks_only_its_keys():
    a = build_config(None, ["sft.max_steps=1"])
    b = build_config(None, ["sft.max_steps=2"])
    assert a.section_hash("seed", "data.synthetic") == b.section_hash("seed", "data.synthetic")
    assert a.section_hash("sft") != b.section_hash("sft")


def test_job_exits_2_before_any_work(tmp_path):
    run_dir = tmp_path / "run"
    proc = subprocess.run(
        [sys.executable, "-m", "jobs.pipeline", "--config", "jobs/configs/tiny.yaml",
         f"run_dir={run_dir}", "sft.max_stepz=3"],
        cwd=REPO, capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 2
    assert "sft.max_stepz" in proc.stderr
    assert not run_dir.exists()


def test_job_help_lists_keys():
    proc = subprocess.run([sys.executable, "-m", "jobs.pipeline", "--help"], cwd=REPO,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0
    assert "data.synthetic.num_scenes" in proc.stdout


def test_reading_a_config_imports_neither_ray_nor_torch():
    # `--help` and config errors answer at once: the heavy stacks load when a stage runs.
    code = "import sys, pipelines.config; print(sorted({'ray', 'torch', 'deepspeed'} & set(sys.modules)))"
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and proc.stdout.strip() == "[]", proc.stdout + proc.stderr


def test_bad_input_exits_1_naming_it(tmp_path):
    missing = tmp_path / "no_such_scans"
    proc = subprocess.run(
        [sys.executable, "-m", "jobs.build_dataset", "--config", "jobs/configs/tiny.yaml",
         f"run_dir={tmp_path / 'run'}", f"data.scans_dir={missing}"],
        cwd=REPO, capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 1
    assert str(missing) in proc.stderr and "Traceback" not in proc.stderr


def test_paths_are_made_absolute_where_the_config_is_loaded(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    cfg = build_config(
        "run_dir: runs/a\n", ["data.scans_dir=scans", "model.path=~/w", "model.spatial_weights=vggt/model.pt"]
    )
    assert cfg.run_dir == str(tmp_path / "runs" / "a")  # Ray workers run elsewhere
    assert cfg.data.scans_dir == str(tmp_path / "scans")
    assert cfg.model.path == str(Path.home() / "w")
    assert cfg.model.spatial_weights == str(tmp_path / "vggt" / "model.pt")
    # a worker re-validating the dumped config keeps the same absolute paths
    monkeypatch.chdir("/")
    assert RunConfig.model_validate(cfg.model_dump()).run_dir == cfg.run_dir


def test_gpu_run_without_a_dtype_warns_that_it_trains_in_fp32():
    assert "trains in fp32" in build_config(None, ["train.use_gpu=true"]).precision_warning()
    assert build_config(None, ["train.use_gpu=true", "model.dtype=fp32"]).precision_warning() is None
    assert build_config(None, ["train.use_gpu=true", "model.dtype=bf16"]).precision_warning() is None
    assert build_config(None, []).precision_warning() is None  # CPU runs are fp32 on purpose
    recipe = (REPO / "jobs" / "configs" / "spatial_mllm_3b.yaml").read_text()
    assert build_config(recipe).precision_warning() is None


def test_gpu_recipe_holds_the_papers_grpo_settings():
    recipe = (REPO / "jobs" / "configs" / "spatial_mllm_3b.yaml").read_text()
    cfg = build_config(recipe)
    assert (cfg.model.dtype, cfg.train.zero_stage, cfg.train.use_gpu) == ("bf16", 3, True)
    g = cfg.grpo
    assert (g.num_generations, g.temperature, g.beta, g.lr_llm, g.lr_connector, g.num_frames) == (8, 1.0, 0.04, 1e-6, 1e-6, 16)
    assert g.gradient_checkpointing and cfg.sft.gradient_checkpointing
    assert "grpo" in yaml.safe_load(recipe)  # written out, not left to the defaults
