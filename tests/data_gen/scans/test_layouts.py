"""One scene in every layout users have reads back identically: meshes, instances, intrinsics,
poses and pixels of the frames present. The layouts are written by `layouts.py` in each tool's
own format, converted from the scene's `.sens`."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest

from data_gen.scans.scan import FrameError, Scan, ScanError
from data_gen.scans.scannet import color_frame_ids, read_color_frames, read_scan
from data_gen.scans.scannet_write import write_scan
from tests.data_gen.scans.layouts import (
    LAYOUTS,
    info_txt,
    load_sens,
    pgm16,
    pose_txt,
    write_export,
    write_flat,
    write_layout,
)
from tests.data_gen.scans.scan_fixtures import axis_alignment, camera_pose, depth_mm, make_scan


@pytest.fixture(scope="module")
def sens_scene(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """7 frames, frame 2 tracking-lost (-inf), written as .sens."""
    scan = make_scan(num_frames=7, inf_frames=(2,))
    return write_scan(scan, tmp_path_factory.mktemp("source") / scan.name, sens=True)


@pytest.fixture(scope="module")
def reference(sens_scene: Path) -> Scan:
    return read_scan(sens_scene)


def assert_same_scan(got: Scan, ref: Scan, frame_ids: list[int]) -> None:
    """Everything equal, bit for bit; frames compared on `frame_ids`."""
    assert got.name == ref.name
    for field in ("axis_alignment", "vertices", "vertex_colors", "faces", "seg_indices", "intrinsic_color",
                  "intrinsic_depth"):
        np.testing.assert_array_equal(getattr(got, field), getattr(ref, field), err_msg=field)
    assert [(i.object_id, i.label) for i in got.instances] == [(i.object_id, i.label) for i in ref.instances]
    for a, b in zip(got.instances, ref.instances, strict=True):
        np.testing.assert_array_equal(a.vertex_ids, b.vertex_ids)
    assert (got.color_size, got.depth_size, got.num_frames) == (ref.color_size, ref.depth_size, ref.num_frames)
    assert (got.scene_type, got.dataset, got.fps) == (ref.scene_type, ref.dataset, ref.fps)
    for i in frame_ids:
        np.testing.assert_array_equal(got.frames.pose(i), ref.frames.pose(i), err_msg=f"pose {i}")
        np.testing.assert_array_equal(got.frames.color(i), ref.frames.color(i), err_msg=f"colour {i}")
        np.testing.assert_array_equal(got.frames.depth(i), ref.frames.depth(i), err_msg=f"depth {i}")


@pytest.mark.parametrize("layout", LAYOUTS)
def test_every_layout_reads_the_same_scan(tmp_path: Path, sens_scene: Path, reference: Scan, layout: str) -> None:
    got = read_scan(write_layout(sens_scene, tmp_path, layout))
    assert got.frames.ids == reference.frames.ids == [0, 1, 3, 4, 5, 6]
    assert got.frames.skipped == reference.frames.skipped == {2: "non-finite pose"}
    assert got.skipped_frames == [(2, "non-finite pose")] and got.skipped_instances == []
    assert_same_scan(got, reference, got.frames.ids)
    # ... and that is the scan that was written: aligned once, depth exact to the mm.
    np.testing.assert_allclose(got.frames.pose(4), camera_pose(4), atol=1e-5)
    np.testing.assert_array_equal(np.rint(got.frames.depth(4) * 1000).astype(np.uint16), depth_mm(4))
    assert color_frame_ids(tmp_path / layout / reference.name) == list(range(7))
    frames = pickle.loads(pickle.dumps(got.frames))  # Ray tasks carry them
    np.testing.assert_array_equal(frames.depth(1), reference.frames.depth(1))


@pytest.mark.parametrize("layout", LAYOUTS)
def test_colour_frames_alone_read_the_same_pixels(tmp_path: Path, reference: Scan, sens_scene: Path, layout: str) -> None:
    """What training and evaluation workers read: the colour images asked for, nothing else."""
    scene = write_layout(sens_scene, tmp_path, layout)
    got = read_color_frames(scene, [6, 0, 4])
    for frame, i in zip(got, [6, 0, 4], strict=True):
        np.testing.assert_array_equal(frame, reference.frames.color(i), err_msg=f"colour {i}")
    with pytest.raises(FrameError, match="frame 9"):
        read_color_frames(scene, [0, 9])


@pytest.mark.parametrize("layout", ["export", "export_padded", "flat"])
def test_every_kth_frame_export_keeps_the_stream_numbers(tmp_path: Path, sens_scene: Path, reference: Scan,
                                                         layout: str) -> None:
    """`--frame_skip 3`: frames 0, 3, 6 are kept and keep their numbers (not 0, 1, 2)."""
    scene = write_layout(sens_scene, tmp_path, layout, step=3)
    if layout == "export_padded":
        assert sorted(p.name for p in (scene / "pose").iterdir()) == ["000000.txt", "000003.txt", "000006.txt"]
    got = read_scan(scene)
    assert got.frames.ids == [0, 3, 6] and got.frames.skipped == {}
    assert got.num_frames == 7  # the stream's length (numColorFrames / m_frames.size), not the files'
    assert_same_scan(got, reference, [0, 3, 6])
    assert color_frame_ids(scene) == [0, 3, 6]


def test_real_tools_precision_reads_close(tmp_path: Path, sens_scene: Path, reference: Scan) -> None:
    """The tools' own number formats (python '%f', C++ 6 significant digits) lose digits, nothing else."""
    for layout in ("export_padded", "flat"):
        got = read_scan(write_layout(sens_scene, tmp_path, layout, full_precision=False))
        assert got.frames.ids == reference.frames.ids
        np.testing.assert_allclose(got.intrinsic_color, reference.intrinsic_color, rtol=1e-5)
        for i in got.frames.ids:
            np.testing.assert_allclose(got.frames.pose(i), reference.frames.pose(i), atol=1e-5)
            np.testing.assert_array_equal(got.frames.depth(i), reference.frames.depth(i))
            np.testing.assert_array_equal(got.frames.color(i), reference.frames.color(i))


def test_flat_files_are_the_cpp_exporters_bytes(tmp_path: Path, sens_scene: Path) -> None:
    """The fixture writes what SensorData::saveToImages writes (checked here on its own bytes)."""
    scene = write_flat(sens_scene, tmp_path / sens_scene.name, subfolder="out")
    out = scene / "out"
    pgm = (out / "frame-000001.depth.pgm").read_bytes()
    header = b"P5\n# data values are 16-bit each; depth shift is 1000\n16 12\n65535\n"
    assert pgm.startswith(header) and len(pgm) == len(header) + 16 * 12 * 2
    assert pgm[len(header) + 2 * 17:len(header) + 2 * 18] == int(depth_mm(1)[1, 1]).to_bytes(2, "big")  # row 1, col 1
    info = (out / "_info.txt").read_text()
    assert info.splitlines()[0] == "m_versionNumber = 4" and "m_depthShift = 1000\n" in info
    assert "m_calibrationDepthIntrinsic = 15 0 7.5 0 0 15.5 5.5 0 0 0 1 0 0 0 0 1 \n" in info
    assert info.endswith("m_frames.size = 7\n")
    pose = (out / "frame-000002.pose.txt").read_text()
    assert pose == "\n".join(["-inf -inf -inf -inf"] * 4)  # tracking lost, as -inf; no final newline
    assert sorted(p.name for p in out.iterdir())[:4] == [
        "_info.txt", "frame-000000.color.jpg", "frame-000000.depth.pgm", "frame-000000.pose.txt"]


def test_flat_layout_reads_info_txt_over_scene_txt(tmp_path: Path, sens_scene: Path) -> None:
    """Sizes, intrinsics and the depth shift of the stream come from _info.txt."""
    scene = write_flat(sens_scene, tmp_path / sens_scene.name, subfolder=None, precision=17)
    raw = load_sens(sens_scene / f"{sens_scene.name}.sens")
    raw.depth_shift = 500.0  # depth units of 2 mm
    raw.intrinsic_depth = raw.intrinsic_depth * np.float32(2)
    (scene / "_info.txt").write_text(info_txt(raw, 17))
    (scene / "frame-000001.depth.pgm").write_bytes(pgm16(raw.depth_units(1), 500.0))
    got = read_scan(scene)
    np.testing.assert_array_equal(got.intrinsic_depth[:2, :3], raw.intrinsic_depth[:2, :3].astype(np.float64))
    np.testing.assert_allclose(got.frames.depth(1), depth_mm(1) / np.float32(500.0))


def test_the_export_wins_over_a_sens_beside_it(tmp_path: Path, sens_scene: Path) -> None:
    scene = write_export(sens_scene, tmp_path / sens_scene.name, padded=True, step=2)
    (scene / f"{scene.name}.sens").write_bytes((sens_scene / f"{scene.name}.sens").read_bytes())
    assert read_scan(scene).frames.ids == [0, 4, 6]  # the export's frames (2 is -inf), not the stream's


def test_two_cpp_exports_are_ambiguous(tmp_path: Path, sens_scene: Path) -> None:
    scene = write_flat(sens_scene, tmp_path / sens_scene.name, subfolder="a")
    (scene / "b").mkdir()
    (scene / "b" / "_info.txt").write_text((scene / "a" / "_info.txt").read_text())
    with pytest.raises(ScanError, match="2 subfolders hold a C\\+\\+ export \\(a, b\\)"):
        read_scan(scene)


def test_flat_frames_without_info_txt_name_it(tmp_path: Path, sens_scene: Path) -> None:
    scene = write_flat(sens_scene, tmp_path / sens_scene.name, subfolder=None)
    (scene / "_info.txt").unlink()
    with pytest.raises(ScanError) as err:
        read_scan(scene)
    assert err.value.path.endswith("_info.txt") and "missing file" in str(err.value)


def test_plain_and_padded_names_for_one_frame_are_refused(tmp_path: Path, sens_scene: Path) -> None:
    scene = write_export(sens_scene, tmp_path / sens_scene.name)
    (scene / "color" / "000003.jpg").write_bytes((scene / "color" / "3.jpg").read_bytes())
    with pytest.raises(ScanError, match=r"color: two files for frame 3: color/000003\.jpg and color/3\.jpg"):
        read_scan(scene)


def test_no_stream_at_all_says_what_was_looked_for(tmp_path: Path, sens_scene: Path) -> None:
    scene = write_export(sens_scene, tmp_path / sens_scene.name)
    for sub in ("color", "depth", "pose"):
        for p in (scene / sub).iterdir():
            p.unlink()
        (scene / sub).rmdir()
    with pytest.raises(ScanError, match=r"\.sens: missing file \(and no export: no color/, depth/, pose/"):
        read_scan(scene)


def test_axis_alignment_applies_once_in_the_flat_layout(tmp_path: Path, sens_scene: Path) -> None:
    scene = write_flat(sens_scene, tmp_path / sens_scene.name, precision=17)
    disk = np.array((scene / "sens_export" / "frame-000001.pose.txt").read_text().split(), dtype=float)
    got = read_scan(scene)
    np.testing.assert_allclose(got.frames.pose(1), axis_alignment() @ disk.reshape(4, 4), rtol=0, atol=1e-12)
    assert pose_txt(np.eye(4)) == "1 0 0 0\n0 1 0 0\n0 0 1 0\n0 0 0 1"
