"""Videos written by the tests: two synthetic rooms (their rendered colour frames as mp4) and one
file that is not a video."""

from __future__ import annotations

from pathlib import Path

import pytest

from data_gen.synthetic.scenes import generate_scene
from tests.pipelines.evaluate.video_fixtures import write_mp4

SCENES = ("scene0000_00", "scene0001_00")
FRAMES, WIDTH, HEIGHT = 48, 160, 120


@pytest.fixture(scope="package")
def videos_dir(tmp_path_factory) -> Path:
    """videos/synthetic/scene000{0,1}_00.mp4 (48 frames, 160x120, 24 fps) and videos/synthetic/broken.mp4."""
    root = tmp_path_factory.mktemp("videos")
    for seed, name in enumerate(SCENES):
        scan, _ = generate_scene(name, seed, num_frames=FRAMES, width=WIDTH, height=HEIGHT)
        write_mp4(root / "synthetic" / f"{name}.mp4", [scan.frames.color(i) for i in scan.frames.ids])
    (root / "synthetic" / "broken.mp4").write_bytes(b"this is not a video")
    return root
