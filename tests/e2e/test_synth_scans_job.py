"""`python -m jobs.synth_scans` as a user runs it: the config form every job uses, readable output."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from data_gen.scans.scannet import read_scan

REPO = Path(__file__).resolve().parents[2]


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "jobs.synth_scans", *args], cwd=REPO, capture_output=True,
                          text=True, timeout=300)


def test_keys_without_a_config_file_write_sens_scenes(tmp_path):
    # What `--out DIR --num-scenes 2 --seed 3 --frames 6 --width 64 --height 48 --sens` did.
    proc = run(f"run_dir={tmp_path}", "data.synthetic.num_scenes=2", "seed=3", "data.synthetic.num_frames=6",
               "data.synthetic.width=64", "data.synthetic.height=48", "data.synthetic.sens=true")
    assert proc.returncode == 0, proc.stderr
    scenes = sorted(p.name for p in (tmp_path / "scans").iterdir() if p.is_dir())
    assert scenes == ["scene0000_00", "scene0001_00"]
    scan = read_scan(tmp_path / "scans" / "scene0001_00")
    assert (tmp_path / "scans" / "scene0001_00" / "scene0001_00.sens").is_file()
    assert not (tmp_path / "scans" / "scene0001_00" / "color").exists()
    assert scan.frames.ids == list(range(6))
    assert scan.frames.color(5).shape == (48, 64, 3)
    assert scan.dataset == "synthetic"


def test_config_form_writes_run_dir_scans_and_skips_when_done(tmp_path):
    args = ["--config", "jobs/configs/tiny.yaml", f"run_dir={tmp_path}", "data.synthetic.num_scenes=1",
            "data.synthetic.num_frames=4", "data.synthetic.width=32", "data.synthetic.height=24"]
    first = run(*args)
    assert first.returncode == 0, first.stderr
    scene = tmp_path / "scans" / "scene0000_00"
    assert read_scan(scene).color_size == (32, 24)
    assert (scene / "color").is_dir() and not (scene / "scene0000_00.sens").exists()  # exported folders
    second = run(*args)
    assert second.returncode == 0 and "already complete" in second.stdout


def test_bad_values_are_usage_errors_naming_the_key(tmp_path):
    for key, bad in (("data.synthetic.num_scenes", "0"), ("data.synthetic.num_frames", "1"),
                     ("data.synthetic.width", "15"), ("data.synthetic.height", "8")):  # fmt: skip
        proc = run(f"run_dir={tmp_path}", f"{key}={bad}")
        assert proc.returncode == 2 and f"'{key}'" in proc.stderr and "greater than or equal" in proc.stderr
    assert not (tmp_path / "scans").exists()
    old = run("--out", str(tmp_path), "--num-scenes", "2")  # the removed second command line
    assert old.returncode == 2 and "unknown option '--out'" in old.stderr and "--config FILE" in old.stderr
