"""`python -m jobs.synth_scans` as a user runs it: both command-line forms, readable output."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from data_gen.scans.scannet import read_scan

REPO = Path(__file__).resolve().parents[2]


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "jobs.synth_scans", *args], cwd=REPO, capture_output=True,
                          text=True, timeout=300)


def test_flags_form_writes_readable_scenes(tmp_path):
    proc = run("--out", str(tmp_path), "--num-scenes", "2", "--seed", "3", "--frames", "6",
               "--width", "64", "--height", "48", "--sens")
    assert proc.returncode == 0, proc.stderr
    scenes = sorted(p.name for p in (tmp_path / "scans").iterdir())
    assert scenes == ["scene0000_00", "scene0001_00"]
    scan = read_scan(tmp_path / "scans" / "scene0001_00")
    assert (tmp_path / "scans" / "scene0001_00" / "scene0001_00.sens").is_file()
    assert scan.frames.ids == list(range(6))
    assert scan.frames.color(5).shape == (48, 64, 3)
    assert scan.dataset == "synthetic"


def test_config_form_writes_run_dir_scans_and_skips_when_done(tmp_path):
    args = ["--config", "jobs/configs/tiny.yaml", f"run_dir={tmp_path}", "data.synthetic.num_scenes=1",
            "data.synthetic.num_frames=4", "data.synthetic.width=32", "data.synthetic.height=24"]
    first = run(*args)
    assert first.returncode == 0, first.stderr
    assert read_scan(tmp_path / "scans" / "scene0000_00").color_size == (32, 24)
    second = run(*args)
    assert second.returncode == 0 and "already complete" in second.stdout


def test_bad_flag_value_is_a_usage_error(tmp_path):
    proc = run("--out", str(tmp_path), "--num-scenes", "0")
    assert proc.returncode == 2 and "--num-scenes" in proc.stderr
