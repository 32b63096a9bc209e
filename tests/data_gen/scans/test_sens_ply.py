"""The `.sens` binary format and the PLY mesh format on their own."""

from __future__ import annotations

import shutil
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from data_gen.scans.codecs import (
    COLOR_JPEG,
    COLOR_PNG,
    COLOR_RAW,
    DEPTH_OCCI_USHORT,
    DEPTH_RAW_USHORT,
    DEPTH_ZLIB_USHORT,
    encode_color,
    encode_depth,
)
from data_gen.scans.ply import read_ply, write_ply
from data_gen.scans.scan import ScanError
from data_gen.scans.scannet import read_scan
from data_gen.scans.scannet_write import write_scan
from data_gen.scans.sens import SensFile, SensFrame, SensHeader, write_sens
from tests.data_gen.scans.scan_fixtures import make_scan

RNG = np.random.default_rng(0)


def _header(**kw: object) -> SensHeader:
    k = np.array([[30.0, 0, 15.5, 0], [0, 31.0, 11.5, 0], [0, 0, 1, 0], [0, 0, 0, 1]])
    ext = np.eye(4)
    ext[:3, 3] = [0.1, 0.2, 0.3]
    args = dict(intrinsic_color=k, extrinsic_color=ext, intrinsic_depth=k / 2, extrinsic_depth=np.eye(4),
                color_width=8, color_height=6, depth_width=4, depth_height=3, sensor_name="Test sensor")
    args.update(kw)
    return SensHeader(**args)  # type: ignore[arg-type]


def _frames(h: SensHeader, n: int) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    out = []
    for i in range(n):
        pose = np.eye(4)
        pose[:3, 3] = [i, 2 * i, 0.5]
        rgb = RNG.integers(0, 256, (h.color_height, h.color_width, 3), dtype=np.uint8)
        depth = RNG.integers(0, 5000, (h.depth_height, h.depth_width), dtype=np.uint16)
        out.append((pose, rgb, depth))
    return out


@pytest.mark.parametrize("color_c,depth_c", [(COLOR_RAW, DEPTH_RAW_USHORT), (COLOR_PNG, DEPTH_ZLIB_USHORT)])
def test_sens_round_trip_lossless(tmp_path: Path, color_c: int, depth_c: int) -> None:
    h = _header(color_compression=color_c, depth_compression=depth_c, depth_shift=500.0)
    frames = _frames(h, 3)
    path = tmp_path / "x.sens"
    n = write_sens(path, h, (SensFrame(p, encode_color(c, color_c), encode_depth(d, depth_c), 7 * i, 9 * i)
                             for i, (p, c, d) in enumerate(frames)))
    with open(path, "ab") as f:
        f.write(b"IMU data that some releases append" * 10)  # ignored

    sens = SensFile(path)
    assert n == len(sens) == sens.header.num_frames == 3
    got = sens.header
    assert (got.version, got.sensor_name, got.color_compression, got.depth_compression) == (4, "Test sensor",
                                                                                            color_c, depth_c)
    assert (got.color_width, got.color_height, got.depth_width, got.depth_height, got.depth_shift) == (8, 6, 4, 3,
                                                                                                       500.0)
    for name in ("intrinsic_color", "extrinsic_color", "intrinsic_depth", "extrinsic_depth"):
        np.testing.assert_allclose(getattr(got, name), getattr(h, name), rtol=1e-6)
    np.testing.assert_array_equal(sens.index.color_timestamps, [0, 7, 14])
    np.testing.assert_array_equal(sens.index.depth_timestamps, [0, 9, 18])
    for i, (pose, rgb, depth) in enumerate(frames):
        np.testing.assert_allclose(sens.poses[i], pose, atol=1e-6)
        np.testing.assert_array_equal(sens.color(i), rgb)
        np.testing.assert_array_equal(sens.depth_raw(i), depth)
        np.testing.assert_array_equal(sens.depth(i), depth.astype(np.float32) / np.float32(500.0))


def test_sens_layout_is_byte_exact(tmp_path: Path) -> None:
    """Hand-packed bytes per SPATIAL_MLLM.md section 5, so the writer cannot drift from the spec."""
    h = _header(color_compression=COLOR_RAW, depth_compression=DEPTH_RAW_USHORT, sensor_name="ab")
    pose = np.arange(16, dtype=np.float32).reshape(4, 4)
    path = tmp_path / "x.sens"
    write_sens(path, h, [SensFrame(pose, b"C" * 144, b"D" * 24, 11, 12)])
    expected = struct.pack("<IQ", 4, 2) + b"ab"
    for m in (h.intrinsic_color, h.extrinsic_color, h.intrinsic_depth, h.extrinsic_depth):
        expected += struct.pack("<16f", *np.asarray(m, dtype=np.float32).reshape(16))
    expected += struct.pack("<iiIIIIfQ", 0, 0, 8, 6, 4, 3, 1000.0, 1)
    expected += struct.pack("<16fQQQQ", *pose.reshape(16), 11, 12, 144, 24) + b"C" * 144 + b"D" * 24
    assert path.read_bytes() == expected


def test_sens_errors(tmp_path: Path) -> None:
    path = tmp_path / "x.sens"
    with pytest.raises(ScanError, match="x.sens: missing file"):
        SensFile(path)
    h = _header(depth_compression=DEPTH_OCCI_USHORT)
    write_sens(path, h, [SensFrame(np.eye(4), encode_color(np.zeros((6, 8, 3), np.uint8), COLOR_JPEG), b"??")])
    sens = SensFile(path)  # listing works; the unsupported codec surfaces on decode
    with pytest.raises(ScanError, match="frame 0: unsupported depth compression occi_ushort"):
        sens.depth(0)
    with pytest.raises(ScanError, match="no frame 5"):
        sens.color(5)

    data = bytearray(path.read_bytes())
    data[0:4] = struct.pack("<I", 3)
    path.write_bytes(bytes(data))
    with pytest.raises(ScanError, match="unsupported .sens version 3"):
        SensFile(path)
    data[0:4] = struct.pack("<I", 4)
    cc_at = 4 + 8 + len("Test sensor") + 4 * 64
    data[cc_at:cc_at + 4] = struct.pack("<i", 7)
    path.write_bytes(bytes(data))
    with pytest.raises(ScanError, match="invalid colour compression type 7"):
        SensFile(path)


def test_sens_garbage_frame_count_is_truncation_not_memory_error(tmp_path: Path) -> None:
    path = tmp_path / "x.sens"
    write_sens(path, _header(), [])
    data = bytearray(path.read_bytes())
    data[-8:] = struct.pack("<Q", 10**15)
    path.write_bytes(bytes(data))
    with pytest.raises(ScanError, match="truncated at frame 0 of 1000000000000000"):
        SensFile(path)


def test_ply_round_trip_and_scannet_header(tmp_path: Path) -> None:
    v = RNG.normal(size=(50, 3)).astype(np.float32)
    c = RNG.integers(0, 256, (50, 3), dtype=np.uint8)
    f = RNG.integers(0, 50, (70, 3)).astype(np.int32)
    path = tmp_path / "m.ply"
    write_ply(path, v, c, f)
    header = path.read_bytes().split(b"end_header\n")[0].decode()
    assert "format binary_little_endian 1.0" in header and "property uchar alpha" in header
    assert "property list uchar int vertex_indices" in header
    mesh = read_ply(path)
    np.testing.assert_array_equal(mesh.vertices, v)
    np.testing.assert_array_equal(mesh.colors, c)
    np.testing.assert_array_equal(mesh.faces, f)


def test_ply_big_endian_doubles_and_extra_properties(tmp_path: Path) -> None:
    header = ("ply\nformat binary_big_endian 1.0\ncomment made by hand\nelement vertex 3\n"
              "property double x\nproperty double y\nproperty double z\nproperty ushort label\n"
              "element face 1\nproperty list uchar uint vertex_indices\nelement edge 0\nproperty int a\n"
              "end_header\n")
    vert = np.array([(0, 0, 0, 1), (1, 0, 0, 2), (0, 1, 0.5, 3)],
                    dtype=[("x", ">f8"), ("y", ">f8"), ("z", ">f8"), ("label", ">u2")])
    face = np.array([(3, (0, 1, 2))], dtype=[("n", "u1"), ("i", ">u4", 3)])
    path = tmp_path / "m.ply"
    path.write_bytes(header.encode() + vert.tobytes() + face.tobytes())
    mesh = read_ply(path)
    np.testing.assert_array_equal(mesh.vertices[2], [0, 1, 0.5])
    np.testing.assert_array_equal(mesh.colors, np.zeros((3, 3), np.uint8))
    np.testing.assert_array_equal(mesh.faces, [[0, 1, 2]])


def test_ply_ascii(tmp_path: Path) -> None:
    """ASCII PLY (what many tools export) reads like binary."""
    path = tmp_path / "m.ply"
    path.write_text("ply\nformat ascii 1.0\nelement vertex 4\nproperty float x\nproperty float y\n"
                    "property float z\nproperty uchar red\nproperty uchar green\nproperty uchar blue\n"
                    "element face 2\nproperty list uchar int vertex_index\nend_header\n"
                    "0 0 0 1 2 3\n1 0 0 4 5 6\n0 1 0 7 8 9\n0 0 1.5 10 11 12\n3 0 1 2\n3 1 2 3\n")
    mesh = read_ply(path)
    np.testing.assert_array_equal(mesh.vertices[3], [0, 0, 1.5])
    np.testing.assert_array_equal(mesh.colors[1], [4, 5, 6])
    np.testing.assert_array_equal(mesh.faces, [[0, 1, 2], [1, 2, 3]])
    assert mesh.faces.dtype == np.int32


@pytest.mark.parametrize("body,problem", [
    ("format ascii 1.0\nelement vertex 1\nproperty float x\nproperty float y\nproperty float z\n"
     "element face 1\nproperty list uchar int vertex_indices\n", "truncated vertex data"),
    ("format binary_little_endian 1.0\nelement vertex 1\nproperty quux x\n", "bad PLY header line"),
    ("format binary_little_endian 1.0\nelement vertex 0\nproperty float x\nproperty float y\nproperty float z\n"
     "element face 1\nproperty list uchar int vertex_indices\n", "truncated face data"),
])
def test_ply_errors(tmp_path: Path, body: str, problem: str) -> None:
    path = tmp_path / "m.ply"
    path.write_bytes(f"ply\n{body}end_header\n".encode())
    with pytest.raises(ScanError, match=problem):
        read_ply(path)


def test_ply_rejects_bad_faces(tmp_path: Path) -> None:
    path = tmp_path / "m.ply"
    write_ply(path, np.zeros((3, 3)), np.zeros((3, 3)), [[0, 1, 5]])
    with pytest.raises(ScanError, match="face index out of range"):
        read_ply(path)
    quad = path.read_bytes().replace(b"\x03\x00\x00\x00\x00", b"\x04\x00\x00\x00\x00")
    path.write_bytes(quad)
    with pytest.raises(ScanError, match="only triangle faces"):
        read_ply(path)


def test_exported_scene_without_intrinsic_folder_uses_txt(tmp_path: Path) -> None:
    """Some exports carry no intrinsic/ folder; <scene>.txt has fx/fy/mx/my."""
    scan = make_scan()
    scene = write_scan(scan, tmp_path / scan.name)
    shutil.rmtree(scene / "intrinsic")
    got = read_scan(scene)
    np.testing.assert_allclose(got.intrinsic_color, scan.intrinsic_color)
    np.testing.assert_allclose(got.intrinsic_depth, scan.intrinsic_depth)


def test_scan_io_never_imports_torch() -> None:
    code = ("import sys, data_gen.scans.scannet, data_gen.scans.sens, data_gen.scans.ply, data_gen.scans.codecs, data_gen.scans.scan_frames; "
            "assert 'torch' not in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(__file__).parents[3])
