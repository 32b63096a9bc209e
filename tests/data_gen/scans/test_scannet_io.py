"""ScanNet layout reader/writer: round trips, axis alignment, skipped frames, laziness, errors."""

from __future__ import annotations

import logging
import pickle
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from data_gen.scans.ply import read_ply
from data_gen.scans.scan import Scan, ScanError
from data_gen.scans.scannet import read_scan, read_scan_stream
from data_gen.scans.scannet_write import write_scan
from data_gen.scans.sens import SensFile, SensFrame, SensHeader, write_sens
from tests.data_gen.scans.scan_fixtures import axis_alignment, camera_pose, depth_mm, make_scan, smooth_color

LAYOUTS = ["exported", "sens"]


def _write(scan: Scan, parent: Path, layout: str) -> Path:
    return write_scan(scan, parent / scan.name, sens=layout == "sens")


def _tree_bytes(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("layout", LAYOUTS)
def test_read_round_trips_write(tmp_path: Path, layout: str) -> None:
    scan = make_scan()
    got = read_scan(_write(scan, tmp_path, layout))

    assert got.name == scan.name
    np.testing.assert_allclose(got.axis_alignment, scan.axis_alignment, atol=1e-12)
    np.testing.assert_allclose(got.vertices, scan.vertices, atol=1e-5)
    np.testing.assert_array_equal(got.vertex_colors, scan.vertex_colors)
    np.testing.assert_array_equal(got.faces, scan.faces)
    np.testing.assert_array_equal(got.seg_indices, scan.seg_indices)
    assert [(i.object_id, i.label) for i in got.instances] == [(i.object_id, i.label) for i in scan.instances]
    for a, b in zip(got.instances, scan.instances, strict=True):
        np.testing.assert_array_equal(a.vertex_ids, b.vertex_ids)
    np.testing.assert_allclose(got.intrinsic_color, scan.intrinsic_color, rtol=1e-6)
    np.testing.assert_allclose(got.intrinsic_depth, scan.intrinsic_depth, rtol=1e-6)
    assert got.color_size == scan.color_size and got.depth_size == scan.depth_size
    assert got.num_frames == scan.num_frames
    assert got.scene_type == scan.scene_type and got.dataset == "scannet"
    for key, value in scan.info.items():
        assert got.info[key] == value
    for key in ("axisAlignment", "colorWidth", "colorHeight", "depthWidth", "depthHeight", "fx_color",
                "fy_color", "mx_color", "my_color", "fx_depth", "numColorFrames", "numDepthFrames", "sceneType"):
        assert key in got.info

    assert got.frames.ids == scan.frames.ids
    for i in got.frames.ids:
        np.testing.assert_allclose(got.frames.pose(i), scan.frames.pose(i), atol=1e-5)
        depth = got.frames.depth(i)
        assert depth.dtype == np.float32 and depth.shape == (12, 16)
        np.testing.assert_array_equal(np.rint(depth * 1000).astype(np.uint16), depth_mm(i))  # exact to the mm
        color = got.frames.color(i)
        assert color.dtype == np.uint8 and color.shape == (24, 32, 3)
        diff = np.abs(color.astype(int) - smooth_color(i).astype(int))
        assert diff.mean() < 3 and diff.max() < 30  # JPEG loss only


@pytest.mark.parametrize("layout", LAYOUTS)
def test_stream_alone_reads_no_mesh_or_annotations(tmp_path: Path, layout: str) -> None:
    """What a training or evaluation worker opens: the same frames, poses and intrinsics as
    read_scan, from a folder whose mesh, segments and annotations are gone."""
    scene = _write(make_scan(), tmp_path, layout)
    whole = read_scan(scene)
    for name in (f"{scene.name}_vh_clean_2.ply", f"{scene.name}_vh_clean_2.0.010000.segs.json",
                 f"{scene.name}.aggregation.json"):  # fmt: skip
        (scene / name).unlink()
    with pytest.raises(ScanError, match="vh_clean_2.ply"):
        read_scan(scene)
    stream = read_scan_stream(scene)
    assert stream.frames.ids == whole.frames.ids and stream.num_frames == whole.num_frames
    assert stream.color_size == whole.color_size and stream.depth_size == whole.depth_size
    np.testing.assert_array_equal(stream.intrinsic_color, whole.intrinsic_color)
    np.testing.assert_array_equal(stream.intrinsic_depth, whole.intrinsic_depth)
    for i in whole.frames.ids:
        np.testing.assert_array_equal(stream.frames.pose(i), whole.frames.pose(i))  # aligned alike
        np.testing.assert_array_equal(stream.frames.color(i), whole.frames.color(i))
        np.testing.assert_array_equal(stream.frames.depth(i), whole.frames.depth(i))


def test_non_scannet_dataset_and_fps_survive(tmp_path: Path) -> None:
    scan = make_scan()
    scan.dataset, scan.fps = "synthetic", 10.0
    got = read_scan(_write(scan, tmp_path, "sens"))
    assert (got.dataset, got.fps) == ("synthetic", 10.0)


@pytest.mark.parametrize("layout", LAYOUTS)
def test_axis_alignment_applied_exactly_once(tmp_path: Path, layout: str) -> None:
    scan = make_scan()
    scene = _write(scan, tmp_path, layout)
    align = axis_alignment()
    unalign = np.linalg.inv(align)

    # On disk: the unaligned coordinate, as ScanNet stores it.
    on_disk = read_ply(scene / f"{scan.name}_vh_clean_2.ply").vertices
    v = scan.vertices[9].astype(np.float64)  # (3, 2, 0) aligned
    np.testing.assert_allclose(on_disk[9], unalign[:3, :3] @ v + unalign[:3, 3], atol=1e-5)
    assert not np.allclose(on_disk[9], v, atol=1e-2)
    if layout == "sens":
        disk_pose = SensFile(scene / f"{scan.name}.sens").poses[1]
    else:
        disk_pose = np.loadtxt(scene / "pose" / "1.txt")
    np.testing.assert_allclose(disk_pose, unalign @ camera_pose(1), atol=1e-5)

    # Read back: aligned once (not zero times, not twice).
    got = read_scan(scene)
    np.testing.assert_allclose(got.vertices[9], [3, 2, 0], atol=1e-5)
    np.testing.assert_allclose(got.frames.pose(1), camera_pose(1), atol=1e-5)
    np.testing.assert_allclose(got.frames.pose(1), align @ disk_pose, atol=1e-5)


@pytest.mark.parametrize("layout", LAYOUTS)
def test_inf_poses_are_skipped(tmp_path: Path, layout: str, caplog: pytest.LogCaptureFixture) -> None:
    scan = make_scan(num_frames=6, inf_frames=(0, 3))
    scene = _write(scan, tmp_path, layout)
    if layout == "exported":
        assert (scene / "pose" / "3.txt").read_text().split() == ["-inf"] * 16
    with caplog.at_level(logging.WARNING, logger="data_gen.scans.scannet"):
        got = read_scan(scene)
    assert got.frames.ids == [1, 2, 4, 5]
    assert got.frames.skipped == {0: "non-finite pose", 3: "non-finite pose"}
    assert got.num_frames == 6
    warnings = [r for r in caplog.records if r.name == "data_gen.scans.scannet"]
    assert len(warnings) == 1 and "2 of 6" in warnings[0].getMessage()


def _garbage_sens(path: Path, n: int, inf_every: int) -> None:
    header = SensHeader(intrinsic_color=np.eye(4), extrinsic_color=np.eye(4), intrinsic_depth=np.eye(4),
                        extrinsic_depth=np.eye(4), color_width=32, color_height=24, depth_width=16,
                        depth_height=12)
    pose = camera_pose(0)
    bad = np.full((4, 4), -np.inf)
    # Image bytes are garbage behind valid start and end markers (JPEG) and a valid zlib header: they
    # pass the listing's container checks, and any decode during listing would raise.
    write_sens(path, header, (SensFrame(bad if i % inf_every == 0 else pose, b"\xff\xd8garbage\xff\xd9",
                                        b"\x78\x9cnozlib", i * 41666, i * 41666) for i in range(n)))


def test_listing_5000_frame_sens_decodes_no_image(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    scan = make_scan()
    scene = _write(scan, tmp_path, "sens")
    sens_path = scene / f"{scan.name}.sens"
    _garbage_sens(sens_path, 5000, inf_every=1000)

    def no_decode(*args: object, **kwargs: object) -> None:
        raise AssertionError("an image was decoded while listing")

    with monkeypatch.context() as m:
        m.setattr(Image, "open", no_decode)
        m.setattr(zlib, "decompress", no_decode)
        got = read_scan(scene)
        assert got.num_frames == 5000
        assert len(got.frames.ids) == 4995 and sorted(got.frames.skipped) == [0, 1000, 2000, 3000, 4000]
        np.testing.assert_allclose(got.frames.pose(4999), axis_alignment() @ camera_pose(0), atol=1e-5)
    # The bytes really are undecodable: decoding is where that surfaces, naming file and frame.
    with pytest.raises(ScanError, match=r"\.sens frame 4321.*undecodable"):
        got.frames.color(4321)
    with pytest.raises(ScanError, match=r"\.sens frame 17.*zlib"):
        got.frames.depth(17)


def test_sens_scene_converts_to_exported(tmp_path: Path) -> None:
    """The usual ScanNet step: read a .sens scene, write its export (skipped frames included)."""
    from_sens = read_scan(_write(make_scan(), tmp_path / "sens", "sens"))
    exported = read_scan(_write(from_sens, tmp_path / "exported", "exported"))
    assert sorted((tmp_path / "exported" / from_sens.name / "pose").iterdir())[2].read_text().split() == ["-inf"] * 16
    assert exported.frames.ids == from_sens.frames.ids == [0, 1, 3]
    np.testing.assert_allclose(exported.vertices, from_sens.vertices, atol=1e-5)
    for i in exported.frames.ids:
        np.testing.assert_allclose(exported.frames.pose(i), from_sens.frames.pose(i), atol=1e-5)
        np.testing.assert_array_equal(exported.frames.depth(i), from_sens.frames.depth(i))


def test_frames_pickle_for_ray(tmp_path: Path) -> None:
    for layout in LAYOUTS:
        got = read_scan(_write(make_scan(), tmp_path / layout, layout))
        frames = pickle.loads(pickle.dumps(got.frames))
        np.testing.assert_array_equal(frames.depth(1), got.frames.depth(1))


@pytest.mark.parametrize("layout", LAYOUTS)
def test_writer_is_deterministic(tmp_path: Path, layout: str) -> None:
    a = _tree_bytes(_write(make_scan(), tmp_path / "a", layout))
    b = _tree_bytes(_write(make_scan(), tmp_path / "b", layout))
    assert a.keys() == b.keys() and a == b
    frame_dirs = {k.split("/")[0] for k in a if "/" in k}
    assert frame_dirs == ({"color", "depth", "pose", "intrinsic"} if layout == "exported" else set())


def test_write_is_atomic_and_replaces(tmp_path: Path) -> None:
    scan = make_scan()
    scene = write_scan(scan, tmp_path / scan.name)
    (scene / "stale.txt").write_text("from an earlier write")
    write_scan(scan, scene, sens=True)
    assert not (scene / "stale.txt").exists() and not (scene / "color").exists()
    assert [p.name for p in tmp_path.iterdir()] == [scan.name]  # no temporary siblings left

    class Broken:
        ids, skipped = [0], {}

        def pose(self, i: int) -> np.ndarray:
            return np.eye(4)

        def color(self, i: int) -> np.ndarray:
            raise RuntimeError("renderer crashed")

        def depth(self, i: int) -> np.ndarray:
            return np.zeros((12, 16), np.float32)

    broken = make_scan(name="scene0002_00")
    broken.frames, broken.num_frames = Broken(), 1
    with pytest.raises(RuntimeError, match="renderer crashed"):
        write_scan(broken, tmp_path / broken.name)
    assert [p.name for p in tmp_path.iterdir()] == [scan.name]  # nothing half-written


def test_writer_rejects_partial_segment_instances(tmp_path: Path) -> None:
    scan = make_scan()
    scan.instances[1] = type(scan.instances[1])(1, "table", np.array([8, 9]))
    with pytest.raises(ValueError, match="whole segments"):
        write_scan(scan, tmp_path / scan.name)


# --- corrupt inputs: one ScanError naming the file and the problem (damaged frames and segGroups,
# which are skipped instead, are in test_damage.py) ---


def _truncate(path: Path, keep: float | int) -> None:
    """Keep a fraction (float) or a byte count (int; negative: drop that many from the end)."""
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep) if isinstance(keep, float) else keep])


def _frame_offset(sens: Path, i: int) -> int:
    """Byte offset of frame i's colour bytes."""
    return int(SensFile(sens).index.color_offsets[i])


CORRUPTIONS = {
    # name: (layout, corrupt(scene, name) -> None, file named, problem)
    "missing ply": ("exported", lambda s, n: (s / f"{n}_vh_clean_2.ply").unlink(), "_vh_clean_2.ply",
                    "missing file"),
    "missing txt": ("exported", lambda s, n: (s / f"{n}.txt").unlink(), f"{'scene0001_00'}.txt", "missing file"),
    "missing sens": ("sens", lambda s, n: (s / f"{n}.sens").unlink(), ".sens", "missing file"),
    "missing pose dir": ("exported", lambda s, n: [p.unlink() for p in (s / "pose").iterdir()]
                         and (s / "pose").rmdir(), "pose", "missing folder"),
    "truncated aggregation": ("exported", lambda s, n: _truncate(s / f"{n}.aggregation.json", 0.5),
                              ".aggregation.json", "truncated or invalid JSON"),
    "truncated segs": ("exported", lambda s, n: _truncate(s / f"{n}_vh_clean_2.0.010000.segs.json", 0.5),
                       ".segs.json", "truncated or invalid JSON"),
    "sens header cut": ("sens", lambda s, n: _truncate(s / f"{n}.sens", 100), ".sens", "truncated header"),
    "sens frames cut": ("sens", lambda s, n: _truncate(s / f"{n}.sens", _frame_offset(s / f"{n}.sens", 2) + 10),
                        ".sens", "truncated at frame 2 of 4: image bytes run past the end"),
    "sens frame head cut": ("sens", lambda s, n: _truncate(s / f"{n}.sens", _frame_offset(s / f"{n}.sens", 3) - 5),
                            ".sens", "truncated at frame 3 of 4: file ends inside the frame header"),
    "bad ply": ("exported", lambda s, n: (s / f"{n}_vh_clean_2.ply").write_bytes(b"not a ply at all"),
                "_vh_clean_2.ply", "bad PLY"),
    "ply cut": ("exported", lambda s, n: _truncate(s / f"{n}_vh_clean_2.ply", -4), "_vh_clean_2.ply",
                "truncated face data"),
    "short segIndices": ("exported", lambda s, n: (s / f"{n}_vh_clean_2.0.010000.segs.json").write_text(
        '{"segIndices": [1, 2]}'), ".segs.json", "2 entries, mesh has 15 vertices"),
    "nan frame count": ("exported", lambda s, n: (s / f"{n}.txt").write_text(
        (s / f"{n}.txt").read_text().replace("numColorFrames = 4", "numColorFrames = nan")),
        f"{'scene0001_00'}.txt", "numColorFrames is not a count"),
    "bad axisAlignment": ("exported", lambda s, n: (s / f"{n}.txt").write_text("axisAlignment = 1 0 0\n"),
                          f"{'scene0001_00'}.txt", "axisAlignment must be 16"),
}


@pytest.mark.parametrize("case", sorted(CORRUPTIONS))
def test_corrupt_input_raises_scan_error(tmp_path: Path, case: str) -> None:
    layout, corrupt, file_part, problem = CORRUPTIONS[case]
    scan = make_scan()
    scene = _write(scan, tmp_path, layout)
    corrupt(scene, scan.name)
    with pytest.raises(ScanError) as err:
        read_scan(scene)
    assert file_part in err.value.path, err.value
    assert problem in str(err.value)
