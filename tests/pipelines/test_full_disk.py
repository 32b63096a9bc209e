"""Storage that fills up under a run: the job stops with exit 1 and a message naming a path on that
storage, what was written before stays complete, and once there is space a re-run resumes.

The run_dir is a small tmpfs mounted for the test (root may write anywhere, so a permission
change cannot make storage unwritable here; a full disk can). Skipped where mount(8) is not
permitted.
"""

from __future__ import annotations

import json
import subprocess
import threading
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from pipelines import dataset
from pipelines.config import build_config, run_job
from pipelines.sft.stage import run as sft_run
from tests.pipelines.node_loss_run import checkpoint_steps
from tests.pipelines.sft.helpers import SFT_STEPS, read_jsonl, tiny_overrides

pytestmark = pytest.mark.slow


@pytest.fixture
def small_disk(tmp_path):
    """A 128 MiB tmpfs at tmp_path/disk; `fill()` writes a file into it until it is full."""
    disk = tmp_path / "disk"
    disk.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=128m", "tmpfs", str(disk)], capture_output=True, text=True)
    if mounted.returncode:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.strip()}")
    try:
        yield disk
    finally:
        subprocess.run(["umount", "-l", str(disk)], check=True)


def fill(disk: Path) -> Path:
    filler = disk / "filler"
    with open(filler, "wb") as f:
        try:
            while True:
                f.write(b"\0" * (1 << 20))
                f.flush()
        except OSError:
            pass
    return filler


def test_sft_stops_naming_the_path_and_resumes_once_there_is_space(small_disk, sft_data, sft_zero2_one_go, capsys):
    run_dir = small_disk / "run"
    run_dir.mkdir()
    (run_dir / "dataset").symlink_to(sft_data / "dataset", target_is_directory=True)
    cfg = build_config(None, [*tiny_overrides(sft_data, run_dir), f"sft.max_steps={SFT_STEPS}", "train.zero_stage=2",
                              "sft.save_steps=2", "train.max_failures=0"])  # fmt: skip

    def fill_after_the_first_checkpoint() -> None:
        deadline = time.monotonic() + 300
        while 2 not in checkpoint_steps(run_dir / "sft") and time.monotonic() < deadline:
            time.sleep(0.05)
        fill(small_disk)

    filler = threading.Thread(target=fill_after_the_first_checkpoint, daemon=True)
    filler.start()
    with pytest.raises(SystemExit) as stopped:
        run_job("sft", sft_run, cfg)
    filler.join()
    assert stopped.value.code == 1
    err = capsys.readouterr().err
    line = next(line for line in err.splitlines() if line.startswith("jobs.sft: "))
    assert line.startswith(f"jobs.sft: cannot write {small_disk}/"), line
    assert "No space left on device (errno 28)" in line and "re-run to resume" in line
    # The checkpoint written before the disk filled is whole: every file its manifest lists, at its size.
    folder = run_dir / "sft" / "checkpoints" / "step_00000002"
    manifest = json.loads((folder / "complete.json").read_text())["files"]
    assert manifest and all((folder / name).stat().st_size == size for name, size in manifest.items())
    assert not (run_dir / "sft" / "final").exists()

    (small_disk / "filler").unlink()
    run_job("sft", sft_run, cfg)
    assert "resuming at step 2" in capsys.readouterr().out
    assert [r["step"] for r in read_jsonl(run_dir / "sft" / "metrics.jsonl")] == list(range(1, SFT_STEPS + 1))
    got = load_file(run_dir / "sft" / "final" / "model.safetensors")
    want = load_file(sft_zero2_one_go / "sft" / "final" / "model.safetensors")
    assert got.keys() == want.keys() and all(torch.equal(got[k], want[k]) for k in got)


def test_build_stops_naming_the_cache_file_instead_of_rejecting_every_scene(small_disk, sft_data, capsys):
    run_dir = small_disk / "run"
    cfg = build_config(None, [f"run_dir={run_dir}", f"data.scans_dir={sft_data / 'scans'}"])
    run_dir.mkdir()
    fill(small_disk)
    with pytest.raises(SystemExit) as stopped:
        run_job("build_dataset", dataset.run, cfg)
    assert stopped.value.code == 1
    line = next(line for line in capsys.readouterr().err.splitlines() if line.startswith("jobs.build_dataset: "))
    assert line.startswith(f"jobs.build_dataset: cannot write {run_dir}/cache/dataset/scene"), line
    assert "No space left on device" in line
    assert not (run_dir / "dataset").exists()
