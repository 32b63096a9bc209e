"""ScanNet's `.sens` RGB-D stream: binary reader (lazy, seek-based) and writer.

Layout (little-endian), as SensReader writes it: uint32 version (4); uint64 n + n bytes sensor
name; four float32[16] row-major matrices (intrinsic_color, extrinsic_color, intrinsic_depth,
extrinsic_depth); int32 colour compression; int32 depth compression; uint32 colour width, colour
height, depth width, depth height; float32 depth_shift; uint64 frame count; then per frame
float32[16] camera_to_world, uint64 colour timestamp, uint64 depth timestamp, uint64 colour byte
count, uint64 depth byte count, colour bytes, depth bytes. Whatever follows the frames (IMU data in
some releases) is ignored.

Opening a file reads the header and walks the frame table (pose + sizes, seeking past the image
bytes), so listing a 5,000-frame scene decodes nothing; `color(i)` / `depth(i)` seek straight to
frame i; `container_problems()` checks every frame's image bytes from their first and last bytes
(no decode). No file handle is held between calls, so a SensFile pickles (Ray tasks).
"""

from __future__ import annotations

import io
import struct
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np

from data_gen.scans.codecs import (
    COLOR_JPEG,
    COLOR_NAMES,
    DEPTH_NAMES,
    DEPTH_SHIFT_MM,
    DEPTH_ZLIB_USHORT,
    HEAD_BYTES,
    TAIL_BYTES,
    color_problem,
    decode_color,
    decode_depth,
    depth_problem,
)
from data_gen.scans.scan import ScanError

SENS_VERSION = 4


_MATRIX = struct.Struct("<16f")
_HEADER_TAIL = struct.Struct("<ii4IfQ")  # compressions, 4 sizes, depth_shift, frame count
_FRAME_HEAD = struct.Struct("<16f4Q")  # pose, 2 timestamps, 2 byte counts


@dataclass(frozen=True)
class SensHeader:
    """Everything before the frames. `num_frames` is ignored by `write_sens` (it counts)."""

    intrinsic_color: np.ndarray  # [4, 4] float64
    extrinsic_color: np.ndarray  # [4, 4] float64
    intrinsic_depth: np.ndarray  # [4, 4] float64
    extrinsic_depth: np.ndarray  # [4, 4] float64
    color_width: int
    color_height: int
    depth_width: int
    depth_height: int
    color_compression: int = COLOR_JPEG
    depth_compression: int = DEPTH_ZLIB_USHORT
    depth_shift: float = DEPTH_SHIFT_MM  # depth units per metre
    sensor_name: str = "StructureSensor"
    version: int = SENS_VERSION
    num_frames: int = 0


@dataclass(frozen=True)
class SensFrame:
    """One frame to write: pose in the file frame plus already-encoded image bytes."""

    camera_to_world: np.ndarray  # [4, 4]
    color_bytes: bytes
    depth_bytes: bytes
    color_timestamp: int = 0
    depth_timestamp: int = 0


@dataclass(frozen=True)
class FrameIndex:
    """Where each frame's bytes lie, and its pose; built without decoding any image."""

    poses: np.ndarray  # [N, 4, 4] float32, file frame
    color_timestamps: np.ndarray  # [N] uint64
    depth_timestamps: np.ndarray  # [N] uint64
    color_offsets: np.ndarray  # [N] int64 byte offset of the colour bytes
    color_sizes: np.ndarray  # [N] int64
    depth_offsets: np.ndarray  # [N] int64
    depth_sizes: np.ndarray  # [N] int64


class SensFile:
    """A `.sens` file opened for lazy frame access."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        try:
            with open(self.path, "rb") as f:
                size = f.seek(0, io.SEEK_END)
                f.seek(0)
                self.header = _read_header(f, self.path)
                self.index = _read_frame_index(f, self.path, self.header.num_frames, size)
        except FileNotFoundError:
            raise ScanError(self.path, "missing file") from None
        except OSError as e:
            raise ScanError(self.path, f"cannot read: {e}") from e

    def __len__(self) -> int:
        return self.header.num_frames

    @property
    def poses(self) -> np.ndarray:
        """[N, 4, 4] float64 camera-to-world as stored (file frame, not axis-aligned)."""
        return self.index.poses.astype(np.float64)

    def color_bytes(self, i: int) -> bytes:
        self._check(i)
        return self._read(int(self.index.color_offsets[i]), int(self.index.color_sizes[i]))

    def depth_bytes(self, i: int) -> bytes:
        self._check(i)
        return self._read(int(self.index.depth_offsets[i]), int(self.index.depth_sizes[i]))

    def color(self, i: int) -> np.ndarray:
        """[H, W, 3] uint8 RGB of frame i."""
        h = self.header
        return decode_color(self.color_bytes(i), h.color_compression, h.color_width, h.color_height,
                            where=f"{self.path} frame {i}")

    def depth_raw(self, i: int) -> np.ndarray:
        """[h, w] uint16 in depth units (see header.depth_shift)."""
        h = self.header
        return decode_depth(self.depth_bytes(i), h.depth_compression, h.depth_width, h.depth_height,
                            where=f"{self.path} frame {i}")

    def depth(self, i: int) -> np.ndarray:
        """[h, w] float32 metres; 0 = no measurement."""
        return np.divide(self.depth_raw(i), np.float32(self.header.depth_shift), dtype=np.float32)

    def container_problems(self) -> dict[int, str]:
        """Frame index -> what is wrong with its image bytes, judged from their first and last
        bytes (`codecs.color_problem` / `depth_problem`: empty, truncated or not the header's
        compression); frames that pass are absent. Reads a few bytes per frame, decodes nothing."""
        h, idx = self.header, self.index
        out: dict[int, str] = {}
        try:
            with open(self.path, "rb", buffering=0) as f:  # unbuffered: a few bytes per seek, not 8 KiB
                for i in range(h.num_frames):
                    c_off, c_size = int(idx.color_offsets[i]), int(idx.color_sizes[i])
                    d_off, d_size = int(idx.depth_offsets[i]), int(idx.depth_sizes[i])
                    if c_size == 0 or d_size == 0:
                        out[i] = f"no {'colour' if c_size == 0 else 'depth'} bytes"
                        continue
                    f.seek(c_off)
                    head = f.read(min(HEAD_BYTES, c_size))
                    f.seek(c_off + max(c_size - TAIL_BYTES, 0))
                    tail = f.read(min(TAIL_BYTES, c_size))
                    problem = color_problem(head, tail, c_size, h.color_compression, h.color_width, h.color_height)
                    if problem is not None:
                        out[i] = f"colour: {problem}"
                        continue
                    f.seek(d_off)
                    problem = depth_problem(f.read(min(2, d_size)), d_size, h.depth_compression, h.depth_width,
                                            h.depth_height)
                    if problem is not None:
                        out[i] = f"depth: {problem}"
        except OSError as e:
            raise ScanError(self.path, f"cannot read: {e}") from e
        return out

    def _check(self, i: int) -> None:
        if not 0 <= i < self.header.num_frames:
            raise ScanError(self.path, f"no frame {i} (stream has {self.header.num_frames})")

    def _read(self, offset: int, n: int) -> bytes:
        try:
            with open(self.path, "rb") as f:
                f.seek(offset)
                data = f.read(n)
        except OSError as e:
            raise ScanError(self.path, f"cannot read: {e}") from e
        if len(data) != n:  # file changed since it was indexed
            raise ScanError(self.path, f"truncated: {n} bytes expected at offset {offset}, got {len(data)}")
        return data


def read_sens_header(path: str | Path) -> SensHeader:
    """Only the header (sizes, calibration, frame count): no walk over the frames."""
    path = Path(path)
    try:
        with open(path, "rb") as f:
            return _read_header(f, path)
    except FileNotFoundError:
        raise ScanError(path, "missing file") from None
    except OSError as e:
        raise ScanError(path, f"cannot read: {e}") from e


def write_sens(path: str | Path, header: SensHeader, frames: Iterable[SensFrame]) -> int:
    """Write a `.sens` file; frames may be a generator (streamed). Returns the frame count."""
    name = header.sensor_name.encode("utf-8")
    with open(path, "wb") as f:
        f.write(struct.pack("<IQ", header.version, len(name)))
        f.write(name)
        for m in (header.intrinsic_color, header.extrinsic_color, header.intrinsic_depth, header.extrinsic_depth):
            f.write(_MATRIX.pack(*np.asarray(m, dtype=np.float32).reshape(16)))
        count_at = f.tell() + _HEADER_TAIL.size - 8
        f.write(_HEADER_TAIL.pack(header.color_compression, header.depth_compression, header.color_width,
                                  header.color_height, header.depth_width, header.depth_height,
                                  header.depth_shift, 0))
        n = 0
        for fr in frames:
            pose = np.asarray(fr.camera_to_world, dtype=np.float32).reshape(16)
            f.write(_FRAME_HEAD.pack(*pose, fr.color_timestamp, fr.depth_timestamp,
                                     len(fr.color_bytes), len(fr.depth_bytes)))
            f.write(fr.color_bytes)
            f.write(fr.depth_bytes)
            n += 1
        f.seek(count_at)  # the count precedes the frames; patch it once they are streamed
        f.write(struct.pack("<Q", n))
    return n


# --- parsing ---


def _read_exact(f: BinaryIO, n: int, path: Path, what: str) -> bytes:
    data = f.read(n)
    if len(data) != n:
        raise ScanError(path, f"truncated header: file ends inside {what}")
    return data


def _read_matrix(f: BinaryIO, path: Path, what: str) -> np.ndarray:
    return np.array(_MATRIX.unpack(_read_exact(f, _MATRIX.size, path, what)), dtype=np.float64).reshape(4, 4)


def _read_header(f: BinaryIO, path: Path) -> SensHeader:
    (version,) = struct.unpack("<I", _read_exact(f, 4, path, "version"))
    if version != SENS_VERSION:
        raise ScanError(path, f"unsupported .sens version {version} (expected {SENS_VERSION})")
    (name_len,) = struct.unpack("<Q", _read_exact(f, 8, path, "sensor name length"))
    if name_len > 4096:  # a garbage length would otherwise swallow the file
        raise ScanError(path, f"implausible sensor name length {name_len}")
    name = _read_exact(f, name_len, path, "sensor name").decode("utf-8", errors="replace")
    mats = [_read_matrix(f, path, what) for what in
            ("intrinsic_color", "extrinsic_color", "intrinsic_depth", "extrinsic_depth")]
    cc, dc, cw, ch, dw, dh, shift, n = _HEADER_TAIL.unpack(_read_exact(f, _HEADER_TAIL.size, path, "image sizes"))
    if cc not in COLOR_NAMES:
        raise ScanError(path, f"invalid colour compression type {cc}")
    if dc not in DEPTH_NAMES:
        raise ScanError(path, f"invalid depth compression type {dc}")
    if not np.isfinite(shift) or shift <= 0:
        raise ScanError(path, f"invalid depth_shift {shift}")
    return SensHeader(*mats, color_width=cw, color_height=ch, depth_width=dw, depth_height=dh,
                      color_compression=cc, depth_compression=dc, depth_shift=float(shift),
                      sensor_name=name, version=version, num_frames=n)


def _read_frame_index(f: BinaryIO, path: Path, n: int, file_size: int) -> FrameIndex:
    min_bytes = n * _FRAME_HEAD.size  # each frame is at least its fixed-size head
    if min_bytes > file_size - f.tell():
        # Reported below with the exact frame; this only avoids allocating for a garbage count.
        n_alloc = max(0, (file_size - f.tell()) // _FRAME_HEAD.size)
    else:
        n_alloc = n
    poses = np.empty((n_alloc, 16), dtype=np.float32)
    meta = np.empty((n_alloc, 4), dtype=np.uint64)  # ts colour, ts depth, colour bytes, depth bytes
    offsets = np.empty((n_alloc, 2), dtype=np.int64)
    pos = f.tell()
    for i in range(n):
        head = f.read(_FRAME_HEAD.size)
        if len(head) != _FRAME_HEAD.size:
            raise ScanError(path, f"truncated at frame {i} of {n}: file ends inside the frame header")
        values = _FRAME_HEAD.unpack(head)
        c_size, d_size = values[18], values[19]
        c_off = pos + _FRAME_HEAD.size
        pos = c_off + c_size + d_size
        if pos > file_size:
            raise ScanError(path, f"truncated at frame {i} of {n}: image bytes run past the end of the file")
        poses[i] = values[:16]
        meta[i] = values[16:]
        offsets[i] = (c_off, c_off + c_size)
        f.seek(pos)  # skip the image bytes: listing decodes nothing
    return FrameIndex(
        poses=poses.reshape(n, 4, 4),
        color_timestamps=meta[:, 0].copy(),
        depth_timestamps=meta[:, 1].copy(),
        color_offsets=offsets[:, 0].copy(),
        color_sizes=meta[:, 2].astype(np.int64),
        depth_offsets=offsets[:, 1].copy(),
        depth_sizes=meta[:, 3].astype(np.int64),
    )
