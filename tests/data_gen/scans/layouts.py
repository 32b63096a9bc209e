"""One scene in every layout users have, converted from its `.sens` the way the real tools do it.

Independent of the reader under test: the `.sens` is parsed here with `struct` (as ScanNet's
SensReader/python/SensorData.py does), and each layout is written in its tool's format:

- `write_export`: ScanNet's python exporter (`reader.py --export_*`): `color/<n>.jpg`,
  `depth/<n>.png` (16-bit greyscale PNG of the raw depth units), `pose/<n>.txt` and
  `intrinsic/*.txt` (`np.savetxt(fmt='%f')` row by row), every `step`-th frame (`frame_skip`), names
  plain (`12.jpg`) or zero-padded to 6 digits (`000012.jpg`, as other export scripts write them);
- `write_flat`: the C++ exporter (SensReader/c++, `SensorData::saveToImages`): `_info.txt`
  (`key = value`, matrices as 16 numbers each followed by a space), `frame-000012.color.jpg`,
  `frame-000012.depth.pgm` (`P5`, a comment line, `w h`, `65535`, big-endian samples) and
  `frame-000012.pose.txt` (4 rows, no newline after the last), numbers as `std::ostream` prints
  them (`%g`, 6 significant digits).

The colour JPEG bytes are copied verbatim (the C++ exporter does so; the python one re-encodes,
which would make pixels differ by JPEG loss only). `number_format` / `precision` default to the
tools' own; the layout-identity tests pass full precision (`%.17g`, as with
`std::setprecision(17)`), so every layout carries the same float values as the `.sens`.
"""

from __future__ import annotations

import io
import shutil
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

PYTHON_EXPORTER_FORMAT = "%f"  # SensorData.save_mat_to_file
CPP_PRECISION = 6  # std::ostream's default


@dataclass
class RawSens:
    """A `.sens` as SensorData.py loads it: header fields and per-frame bytes."""

    version: int
    sensor_name: str
    intrinsic_color: np.ndarray  # [4, 4] float32
    extrinsic_color: np.ndarray
    intrinsic_depth: np.ndarray
    extrinsic_depth: np.ndarray
    color_compression: int
    depth_compression: int
    color_width: int
    color_height: int
    depth_width: int
    depth_height: int
    depth_shift: float
    poses: list[np.ndarray]  # [4, 4] float32 each
    color_bytes: list[bytes]
    depth_bytes: list[bytes]

    def depth_units(self, i: int) -> np.ndarray:
        """[h, w] uint16, zlib_ushort as ScanNet stores it."""
        assert self.depth_compression == 1
        raw = zlib.decompress(self.depth_bytes[i])
        return np.frombuffer(raw, dtype="<u2").reshape(self.depth_height, self.depth_width)


def load_sens(path: Path) -> RawSens:
    data = path.read_bytes()
    at = 0

    def take(fmt: str) -> tuple:
        nonlocal at
        values = struct.unpack_from("<" + fmt, data, at)
        at += struct.calcsize("<" + fmt)
        return values

    (version,) = take("I")
    (name_len,) = take("Q")
    name = data[at:at + name_len].decode()
    at += name_len
    mats = [np.array(take("16f"), dtype=np.float32).reshape(4, 4) for _ in range(4)]
    cc, dc, cw, ch, dw, dh = take("ii4I")
    (shift,) = take("f")
    (n,) = take("Q")
    poses, colors, depths = [], [], []
    for _ in range(n):
        poses.append(np.array(take("16f"), dtype=np.float32).reshape(4, 4))
        _, _, c_size, d_size = take("4Q")
        colors.append(data[at:at + c_size])
        at += c_size
        depths.append(data[at:at + d_size])
        at += d_size
    return RawSens(version, name, *mats, cc, dc, cw, ch, dw, dh, shift, poses, colors, depths)


def _copy_scene_files(sens_scene: Path, dest: Path) -> None:
    """Everything but the stream: <scene>.txt, the mesh, segs and aggregation."""
    dest.mkdir(parents=True)
    for p in sens_scene.iterdir():
        if p.is_file() and p.suffix != ".sens":
            shutil.copyfile(p, dest / p.name)


def _savetxt(path: Path, matrix: np.ndarray, fmt: str) -> None:
    """np.savetxt(f, row[np.newaxis], fmt=fmt) for each row, as SensorData.save_mat_to_file."""
    with open(path, "w") as f:
        for row in np.asarray(matrix):
            np.savetxt(f, row[np.newaxis], fmt=fmt)


def png16(units: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(units, dtype=np.uint16)).save(buf, format="PNG")
    return buf.getvalue()


def write_export(sens_scene: Path, dest: Path, *, padded: bool = False, step: int = 1,
                 number_format: str = PYTHON_EXPORTER_FORMAT) -> Path:
    """`dest` (named like the scene) with the export of `sens_scene`'s stream; returns dest."""
    raw = load_sens(sens_scene / f"{sens_scene.name}.sens")
    _copy_scene_files(sens_scene, dest)
    for sub in ("color", "depth", "pose", "intrinsic"):
        (dest / sub).mkdir()
    for i in range(0, len(raw.poses), step):
        n = f"{i:06d}" if padded else str(i)
        (dest / "color" / f"{n}.jpg").write_bytes(raw.color_bytes[i])
        (dest / "depth" / f"{n}.png").write_bytes(png16(raw.depth_units(i)))
        _savetxt(dest / "pose" / f"{n}.txt", raw.poses[i], number_format)
    for name in ("intrinsic_color", "extrinsic_color", "intrinsic_depth", "extrinsic_depth"):
        _savetxt(dest / "intrinsic" / f"{name}.txt", getattr(raw, name), number_format)
    return dest


def cpp_number(x: float, precision: int = CPP_PRECISION) -> str:
    """`std::ostream << x` with the given precision (default formatting is printf's %g)."""
    return f"{float(x):.{precision}g}"


def pgm16(units: np.ndarray, depth_shift: float, precision: int = CPP_PRECISION) -> bytes:
    """SensorData::saveAsPGM(binary=true): header with a comment, then big-endian samples."""
    h, w = units.shape
    header = (f"P5\n# data values are 16-bit each; depth shift is {cpp_number(depth_shift, precision)}\n"
              f"{w} {h}\n65535\n")
    return header.encode() + np.ascontiguousarray(units, dtype=">u2").tobytes()


def info_txt(raw: RawSens, precision: int = CPP_PRECISION) -> str:
    """`_info.txt` exactly as saveToImages writes it."""

    def num(x: float) -> str:
        return cpp_number(x, precision)

    lines = [
        f"m_versionNumber = {raw.version}\n",
        f"m_sensorName = {raw.sensor_name}\n",
        f"m_colorWidth = {raw.color_width}\n",
        f"m_colorHeight = {raw.color_height}\n",
        f"m_depthWidth = {raw.depth_width}\n",
        f"m_depthHeight = {raw.depth_height}\n",
        f"m_depthShift = {num(raw.depth_shift)}\n",
    ]
    for key, m in (("m_calibrationColorIntrinsic", raw.intrinsic_color),
                   ("m_calibrationColorExtrinsic", raw.extrinsic_color),
                   ("m_calibrationDepthIntrinsic", raw.intrinsic_depth),
                   ("m_calibrationDepthExtrinsic", raw.extrinsic_depth)):
        lines.append(f"{key} = " + "".join(num(v) + " " for v in m.reshape(16)) + "\n")
    lines.append(f"m_frames.size = {len(raw.poses)}\n")
    return "".join(lines)


def pose_txt(pose: np.ndarray, precision: int = CPP_PRECISION) -> str:
    """SensorData::savePoseFile: 4 rows of 4, space-separated, no newline after the last row."""
    return "\n".join(" ".join(cpp_number(v, precision) for v in row) for row in np.asarray(pose))


def write_flat(sens_scene: Path, dest: Path, *, subfolder: str | None = "sens_export", step: int = 1,
               precision: int = CPP_PRECISION, color_png: bool = False) -> Path:
    """`dest` (named like the scene) with the C++ exporter's output in `dest/subfolder` (or in dest
    itself when None); `color_png`: colour as `frame-<n>.color.png` (a PNG- or raw-colour stream)."""
    raw = load_sens(sens_scene / f"{sens_scene.name}.sens")
    _copy_scene_files(sens_scene, dest)
    out = dest / subfolder if subfolder else dest
    out.mkdir(exist_ok=True)
    (out / "_info.txt").write_text(info_txt(raw, precision))
    for i in range(0, len(raw.poses), step):
        base = out / f"frame-{i:06d}"
        if color_png:
            rgb = np.asarray(Image.open(io.BytesIO(raw.color_bytes[i])).convert("RGB"))
            buf = io.BytesIO()
            Image.fromarray(rgb).save(buf, format="PNG")
            base.with_name(base.name + ".color.png").write_bytes(buf.getvalue())
        else:
            base.with_name(base.name + ".color.jpg").write_bytes(raw.color_bytes[i])
        base.with_name(base.name + ".depth.pgm").write_bytes(pgm16(raw.depth_units(i), raw.depth_shift, precision))
        base.with_name(base.name + ".pose.txt").write_text(pose_txt(raw.poses[i], precision))
    return dest


FULL = "%.17g"  # number format that round-trips every float exactly
LAYOUTS = ("sens", "export", "export_padded", "flat", "flat_in_scene", "flat_png")


def write_layout(sens_scene: Path, parent: Path, layout: str, *, step: int = 1, full_precision: bool = True) -> Path:
    """`sens_scene` converted to `layout` under `parent/<layout>/<scene>` (a copy for "sens")."""
    dest = parent / layout / sens_scene.name
    fmt, precision = (FULL, 17) if full_precision else (PYTHON_EXPORTER_FORMAT, CPP_PRECISION)
    if layout == "sens":
        assert step == 1, "a .sens holds every frame"
        return Path(shutil.copytree(sens_scene, dest))
    if layout in ("export", "export_padded"):
        return write_export(sens_scene, dest, padded=layout == "export_padded", step=step, number_format=fmt)
    if layout in ("flat", "flat_in_scene", "flat_png"):
        return write_flat(sens_scene, dest, subfolder=None if layout == "flat_in_scene" else "sens_export",
                          step=step, precision=precision, color_png=layout == "flat_png")
    raise ValueError(layout)
