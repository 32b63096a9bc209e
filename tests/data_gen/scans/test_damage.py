"""Damaged real-world scans: bad frames are skipped and counted, up to a threshold; bad or duplicate
segGroups are skipped with a reason. Nothing crashes, nothing counts twice."""

from __future__ import annotations

import io
import json
import logging
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from data_gen.scans.scan import FrameError, ScanError, SkippedInstance
from data_gen.scans.scannet import read_scan
from data_gen.scans.scannet_write import write_scan
from data_gen.scans.sens import SensFile, SensFrame, write_sens
from tests.data_gen.scans.layouts import pgm16, write_flat, write_layout
from tests.data_gen.scans.scan_fixtures import depth_mm, make_scan

N = 10  # frames; frame 2 is tracking-lost (-inf) in every scene here


@pytest.fixture(scope="module")
def sens_scene(tmp_path_factory: pytest.TempPathFactory) -> Path:
    scan = make_scan(num_frames=N, inf_frames=(2,))
    return write_scan(scan, tmp_path_factory.mktemp("source") / scan.name, sens=True)


def _cut(path: Path, keep: float = 0.5) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])


def _png(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(array).save(buf, format="PNG")
    return buf.getvalue()


# One damaged frame (frame 5) per case: (layout, damage(scene), reason in frames.skipped).
FRAME_DAMAGE = {
    "missing colour": ("export", lambda s: (s / "color/5.jpg").unlink(), "color/5.jpg: missing file"),
    "missing depth": ("export_padded", lambda s: (s / "depth/000005.png").unlink(),
                      "depth/000005.png: missing file"),
    "missing pose": ("export_padded", lambda s: (s / "pose/000005.txt").unlink(), "pose/000005.txt: missing file"),
    "pose garbage": ("export", lambda s: (s / "pose/5.txt").write_text("1 0 0 0\n" * 3 + "a b c d\n"),
                     "pose/5.txt: non-numeric value in 4x4 matrix"),
    "pose 3x4": ("export", lambda s: (s / "pose/5.txt").write_text("1 0 0 0\n0 1 0 0\n0 0 1 0\n"),
                 "pose/5.txt: expected a 4x4 matrix, got 3x4"),
    "pose empty": ("export", lambda s: (s / "pose/5.txt").write_text(""), "pose/5.txt: empty file, expected a 4x4 matrix"),
    "pose not rigid": ("export", lambda s: (s / "pose/5.txt").write_text("0 0 0 0\n" * 4),
                       "pose/5.txt: not a rigid camera-to-world transform"),
    "colour cut": ("export", lambda s: _cut(s / "color/5.jpg"), "color/5.jpg: truncated JPEG (no end marker)"),
    "colour empty": ("export", lambda s: (s / "color/5.jpg").write_bytes(b""), "color/5.jpg: empty file"),
    "colour garbage": ("export", lambda s: (s / "color/5.jpg").write_bytes(b"<html>404</html>"),
                       "color/5.jpg: not a JPEG (no start marker)"),
    "depth cut": ("export", lambda s: _cut(s / "depth/5.png"), "depth/5.png: truncated PNG (no end chunk)"),
    "depth 8-bit": ("export", lambda s: (s / "depth/5.png").write_bytes(_png(np.zeros((12, 16), np.uint8))),
                    "depth/5.png: not a 16-bit greyscale PNG (bit depth 8, colour type 0)"),
    "depth wrong size": ("export", lambda s: (s / "depth/5.png").write_bytes(_png(depth_mm(5)[:6, :8])),
                         "depth/5.png: image is 8x6, expected 16x12"),
    "flat pgm cut": ("flat", lambda s: _cut(s / "sens_export/frame-000005.depth.pgm", 0.9),
                     "sens_export/frame-000005.depth.pgm: truncated PGM: 339 raster bytes, expected 384"),
    "flat pgm 8-bit": ("flat", lambda s: (s / "sens_export/frame-000005.depth.pgm").write_bytes(
        b"P5\n16 12\n255\n" + bytes(192)), "sens_export/frame-000005.depth.pgm: PGM maxval 255: not 16-bit depth"),
    "flat pgm garbage": ("flat_in_scene", lambda s: (s / "frame-000005.depth.pgm").write_bytes(b"P6\n"),
                         "frame-000005.depth.pgm: not a binary PGM (no P5 magic)"),
    "flat pgm wrong size": ("flat", lambda s: (s / "sens_export/frame-000005.depth.pgm").write_bytes(
        pgm16(depth_mm(5)[:6], 1000.0)), "sens_export/frame-000005.depth.pgm: depth is 16x6, expected 16x12"),
    "flat missing pose": ("flat", lambda s: (s / "sens_export/frame-000005.pose.txt").unlink(),
                          "sens_export/frame-000005.pose.txt: missing file"),
    "flat colour cut": ("flat_png", lambda s: _cut(s / "sens_export/frame-000005.color.png"),
                        "sens_export/frame-000005.color.png: truncated PNG (no end chunk)"),
}


@pytest.mark.parametrize("case", sorted(FRAME_DAMAGE))
def test_a_damaged_frame_is_skipped_with_its_reason(tmp_path: Path, sens_scene: Path, case: str,
                                                    caplog: pytest.LogCaptureFixture) -> None:
    layout, damage, reason = FRAME_DAMAGE[case]
    scene = write_layout(sens_scene, tmp_path, layout)
    damage(scene)
    with caplog.at_level(logging.WARNING, logger="data_gen.scans.scannet"):
        got = read_scan(scene)  # 1 of 10 damaged: within the default 10%
    assert got.frames.ids == [0, 1, 3, 4, 6, 7, 8, 9]
    assert got.frames.skipped == {2: "non-finite pose", 5: reason}
    assert got.skipped_frames == [(2, "non-finite pose"), (5, reason)]
    assert got.num_frames == N
    assert any("1 of 10 frames are damaged and skipped" in r.getMessage() for r in caplog.records)
    with pytest.raises(FrameError, match="damaged") as err:
        got.frames.pose(5)
    assert err.value.frame == 5
    for i in got.frames.ids:  # everything listed as usable reads
        got.frames.color(i), got.frames.depth(i), got.frames.pose(i)


def test_damaged_sens_frames_are_skipped(tmp_path: Path, sens_scene: Path) -> None:
    src = SensFile(sens_scene / f"{sens_scene.name}.sens")
    frames = [SensFrame(src.poses[i], src.color_bytes(i), src.depth_bytes(i)) for i in range(N)]
    frames[4] = SensFrame(frames[4].camera_to_world, frames[4].color_bytes[:-40], frames[4].depth_bytes)
    frames[7] = SensFrame(frames[7].camera_to_world, frames[7].color_bytes, b"")
    frames[8] = SensFrame(np.zeros((4, 4)), frames[8].color_bytes, frames[8].depth_bytes)
    scene = write_layout(sens_scene, tmp_path, "sens")
    write_sens(scene / f"{scene.name}.sens", src.header, frames)
    got = read_scan(scene, max_bad_frame_fraction=0.3)
    assert got.frames.skipped == {2: "non-finite pose", 4: "colour: truncated JPEG (no end marker)",
                                  7: "no depth bytes", 8: "not a rigid camera-to-world transform"}
    assert got.frames.ids == [0, 1, 3, 5, 6, 9]


def test_more_damage_than_the_threshold_rejects_the_scene(tmp_path: Path, sens_scene: Path) -> None:
    scene = write_layout(sens_scene, tmp_path, "export")
    (scene / "color/1.jpg").unlink()
    _cut(scene / "depth/7.png")
    with pytest.raises(ScanError) as err:
        read_scan(scene)
    assert err.value.path == str(scene)
    assert str(err.value) == (f"{scene}: 2 of 10 frames are damaged, more than max_bad_frame_fraction=0.1 allows "
                              "(frame 1: color/1.jpg: missing file; frame 7: depth/7.png: truncated PNG (no end chunk))")
    assert read_scan(scene, max_bad_frame_fraction=0.2).frames.ids == [0, 3, 4, 5, 6, 8, 9]
    scene = write_layout(sens_scene, tmp_path / "strict", "export")
    (scene / "pose/3.txt").unlink()
    with pytest.raises(ScanError, match=r"1 of 10 frames are damaged, more than max_bad_frame_fraction=0 allows"):
        read_scan(scene, max_bad_frame_fraction=0.0)


def test_tracking_lost_frames_are_not_damage(tmp_path: Path) -> None:
    scan = make_scan(num_frames=6, inf_frames=(0, 1, 2, 4))
    got = read_scan(write_scan(scan, tmp_path / scan.name), max_bad_frame_fraction=0.0)
    assert got.frames.ids == [3, 5] and len(got.skipped_frames) == 4


def test_damage_behind_valid_headers_surfaces_when_read(tmp_path: Path, sens_scene: Path) -> None:
    """A JPEG cut in the middle but ending in an end marker passes listing; decoding it raises
    FrameError (a ScanError with the frame), which a reader of many frames can catch and count."""
    scene = write_layout(sens_scene, tmp_path, "export_padded")
    jpg = scene / "color/000006.jpg"
    data = jpg.read_bytes()
    jpg.write_bytes(data[: len(data) // 2] + b"\xff\xd9")
    got = read_scan(scene)
    assert 6 in got.frames.ids
    with pytest.raises(FrameError) as err:
        got.frames.color(6)
    assert err.value.frame == 6 and isinstance(err.value, ScanError)
    assert err.value.path.endswith("color/000006.jpg") and "undecodable" in err.value.problem
    # frame_check="decode" finds it while listing instead.
    checked = read_scan(scene, frame_check="decode")
    assert 6 not in checked.frames.ids
    assert checked.frames.skipped[6].startswith("color/000006.jpg: truncated or undecodable image")


def test_lazy_damage_in_a_sens_frame(tmp_path: Path, sens_scene: Path) -> None:
    src = SensFile(sens_scene / f"{sens_scene.name}.sens")
    frames = [SensFrame(src.poses[i], src.color_bytes(i), src.depth_bytes(i)) for i in range(N)]
    frames[3] = SensFrame(frames[3].camera_to_world, frames[3].color_bytes, b"\x78\x9c" + b"garbage")
    scene = write_layout(sens_scene, tmp_path, "sens")
    write_sens(scene / f"{scene.name}.sens", src.header, frames)
    got = read_scan(scene)
    assert 3 in got.frames.ids
    with pytest.raises(FrameError, match=r"\.sens frame 3: undecodable zlib depth") as err:
        got.frames.depth(3)
    assert err.value.frame == 3
    assert read_scan(scene, frame_check="decode").frames.skipped[3].startswith("depth: undecodable zlib depth")


def test_damaged_frames_are_not_written_back(tmp_path: Path, sens_scene: Path) -> None:
    scene = write_layout(sens_scene, tmp_path, "flat")
    (scene / "sens_export/frame-000005.color.jpg").unlink()
    got = read_scan(scene)
    again = read_scan(write_scan(got, tmp_path / "again" / got.name))
    assert again.frames.ids == got.frames.ids and again.frames.skipped == {2: "non-finite pose"}
    with pytest.raises(ValueError, match="a .sens stream needs frames 0..9; the scan has 9"):
        write_scan(got, tmp_path / "sens" / got.name, sens=True)


def test_bad_parameters_are_refused(sens_scene: Path) -> None:
    with pytest.raises(ValueError, match="max_bad_frame_fraction"):
        read_scan(sens_scene, max_bad_frame_fraction=1.5)
    with pytest.raises(ValueError, match="frame_check"):
        read_scan(sens_scene, frame_check="all")


def test_flat_export_with_only_some_frames_written(tmp_path: Path, sens_scene: Path) -> None:
    """An interrupted C++ export: the last frames have colour but no depth or pose yet."""
    scene = write_flat(sens_scene, tmp_path / sens_scene.name, subfolder="out")
    (scene / "out/frame-000009.depth.pgm").unlink()
    (scene / "out/frame-000009.pose.txt").unlink()
    got = read_scan(scene)
    assert got.frames.skipped[9] == "out/frame-000009.depth.pgm: missing file" and got.num_frames == N


# --- annotations ---


def _groups(scene: Path) -> list[dict]:
    return json.loads((scene / f"{scene.name}.aggregation.json").read_text())["segGroups"]


def _set_groups(scene: Path, groups: list[dict]) -> None:
    path = scene / f"{scene.name}.aggregation.json"
    doc = json.loads(path.read_text())
    doc["segGroups"] = groups
    path.write_text(json.dumps(doc))


@pytest.fixture
def export_scene(tmp_path: Path, sens_scene: Path) -> Path:
    return write_layout(sens_scene, tmp_path, "export")


def test_every_seggroup_listed_twice(export_scene: Path) -> None:
    """scene0217_00: the aggregation lists its segGroups twice; each object is read once."""
    groups = _groups(export_scene)
    _set_groups(export_scene, groups + groups)
    got = read_scan(export_scene)
    assert [(i.object_id, i.label) for i in got.instances] == [(0, "chair"), (1, "table")]
    np.testing.assert_array_equal(got.instances[0].vertex_ids, np.arange(8))
    assert got.skipped_instances == [
        SkippedInstance(0, "chair", "segGroups[2] repeats objectId 0 (an exact duplicate)"),
        SkippedInstance(1, "table", "segGroups[3] repeats objectId 1 (an exact duplicate)"),
    ]


def test_a_conflicting_duplicate_keeps_the_first(export_scene: Path) -> None:
    groups = _groups(export_scene)
    _set_groups(export_scene, [*groups, {"id": 7, "objectId": 1, "label": "desk", "segments": [40]}])
    got = read_scan(export_scene)
    assert [(i.object_id, i.label) for i in got.instances] == [(0, "chair"), (1, "table")]
    assert got.skipped_instances == [SkippedInstance(1, "desk", "segGroups[2] repeats objectId 1 (first read as 'table')")]


def test_unknown_segments_skip_that_instance(export_scene: Path, caplog: pytest.LogCaptureFixture) -> None:
    groups = _groups(export_scene)
    groups[0]["segments"] = [10, 20, 99]
    _set_groups(export_scene, groups)
    with caplog.at_level(logging.WARNING, logger="data_gen.scans.scannet"):
        got = read_scan(export_scene)
    assert [(i.object_id, i.label) for i in got.instances] == [(1, "table")]
    assert got.skipped_instances == [
        SkippedInstance(0, "chair", "segGroups[0]: 1 of 3 segments are not in the segs file [99]")]
    assert any("1 segGroups skipped" in r.getMessage() for r in caplog.records)


def test_a_bad_first_copy_lets_the_good_second_in(export_scene: Path) -> None:
    groups = _groups(export_scene)
    bad = {**groups[1], "segments": [99]}
    _set_groups(export_scene, [groups[0], bad, groups[1]])
    got = read_scan(export_scene)
    assert [(i.object_id, i.label) for i in got.instances] == [(0, "chair"), (1, "table")]
    assert [s.reason for s in got.skipped_instances] == ["segGroups[1]: 1 of 1 segments are not in the segs file [99]"]


def test_malformed_seggroups_are_skipped(export_scene: Path) -> None:
    groups = _groups(export_scene)
    _set_groups(export_scene, [{"objectId": 5, "label": "lamp"}, "not a group", {"objectId": "x", "label": "sofa",
                                                                                 "segments": [30]}, *groups])
    got = read_scan(export_scene)
    assert [(i.object_id, i.label) for i in got.instances] == [(0, "chair"), (1, "table")]
    assert [(s.object_id, s.label) for s in got.skipped_instances] == [(5, "lamp"), (None, ""), (None, "sofa")]
    assert all("needs objectId (or id), label and a segments list" in s.reason for s in got.skipped_instances)


def test_damage_found_when_read_is_skipped_and_counted(tmp_path: Path, sens_scene: Path) -> None:
    """The caller's side of lazy damage: catch FrameError, go on without the frame; the threshold
    the scan was read with still holds."""
    scene = write_layout(sens_scene, tmp_path, "export")
    jpg = scene / "color/4.jpg"
    data = jpg.read_bytes()
    jpg.write_bytes(data[: len(data) // 2] + b"\xff\xd9")
    scan = read_scan(scene, max_bad_frame_fraction=0.15)
    with pytest.raises(FrameError) as err:
        [scan.frames.color(i) for i in scan.frames.ids]
    scan = scan.without_frames({err.value.frame: str(err.value)})
    assert scan.frames.ids == [0, 1, 3, 5, 6, 7, 8, 9]
    assert scan.skipped_frames[1][0] == 4 and "color/4.jpg: truncated or undecodable" in scan.skipped_frames[1][1]
    with pytest.raises(FrameError, match="damaged"):
        scan.frames.color(4)
    with pytest.raises(ScanError, match="frame 4 is already skipped"):
        scan.without_frames({4: "again"})
    with pytest.raises(ScanError, match=r"2 of 10 frames are damaged, more than max_bad_frame_fraction=0.15 allows"):
        scan.without_frames({6: "found damaged by the next reader"})
    again = read_scan(write_scan(scan, tmp_path / "again" / scan.name))  # dropped frames are not written
    assert 4 not in again.frames.ids + list(again.frames.skipped)
