"""The questions do not depend on the layout a scan came in: a synthetic scene, converted from its
`.sens` into every layout users have (tests/data_gen/scans/layouts.py), gives identical records."""

from __future__ import annotations

from pathlib import Path

import pytest

from data_gen.qa.config import QAConfig
from data_gen.qa.scene_records import scene_records
from data_gen.scans.scannet import read_scan
from data_gen.synthetic.scenes import synthesize_scans
from tests.data_gen.scans.layouts import LAYOUTS, write_layout

CFG = QAConfig()
SEED = 0
STEP = 3  # the every-k-th-frame exports keep frames 0, 3, 6, ...


@pytest.fixture(scope="module")
def sens_scene(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A furnished synthetic room (seed 1: 37 questions of 8 types), 24 frames of 64x48, as .sens."""
    (scene,) = synthesize_scans(tmp_path_factory.mktemp("scans"), 1, seed=1, num_frames=24, width=64, height=48,
                                sens=True)
    return scene


@pytest.fixture(scope="module")
def reference(sens_scene: Path) -> list[dict]:
    records = scene_records(read_scan(sens_scene), CFG, SEED)
    assert len(records) >= 10 and len({r["question_type"] for r in records}) >= 3  # a test with teeth
    return records


@pytest.mark.parametrize("layout", [layout for layout in LAYOUTS if layout != "sens"])
def test_every_layout_gives_the_same_records(tmp_path: Path, sens_scene: Path, reference: list[dict],
                                             layout: str) -> None:
    assert scene_records(read_scan(write_layout(sens_scene, tmp_path, layout)), CFG, SEED) == reference


def test_every_kth_frame_exports_agree_and_index_the_stream(tmp_path: Path, sens_scene: Path) -> None:
    """Plain, zero-padded and C++ exports of every 3rd frame: the same records, whose frame indices
    are stream frame numbers (multiples of 3), so they still find the frames in the files."""
    records = {layout: scene_records(read_scan(write_layout(sens_scene, tmp_path, layout, step=STEP)), CFG, SEED)
               for layout in ("export", "export_padded", "flat")}
    assert records["export_padded"] == records["export"] == records["flat"]
    indices = {i for r in records["export"] for key in ("frame_indices", "uniform_indices") for i in r[key]}
    assert indices and all(i % STEP == 0 for i in indices) and max(indices) <= 21
