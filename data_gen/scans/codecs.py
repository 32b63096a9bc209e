"""Image codecs for scan frames: colour JPEG/PNG/raw and uint16 depth (zlib, raw, 16-bit PNG/PGM).

Shared by the `.sens` stream, the exported `color/`, `depth/` folders and the C++ exporter's
`frame-*.depth.pgm`. The compression enums are ScanNet's (sensorData.h). Every decode failure is a
ScanError naming where the bytes came from.

Besides decoding, `*_problem` functions check an encoded image's container from its first and
last bytes only (magic, PNG header and end chunk, JPEG end marker, PGM header and length): what a
missing, empty, truncated or garbage file fails, at the cost of two small reads, so listing a scan
can find damaged frames without decoding any. They return None or the problem as text.
"""

from __future__ import annotations

import io
import re
import zlib
from pathlib import Path
from typing import BinaryIO

import numpy as np
from PIL import Image

from data_gen.scans.scan import ScanError

# Compression enums, as in ScanNet's sensorData.h.
COLOR_UNKNOWN, COLOR_RAW, COLOR_PNG, COLOR_JPEG = -1, 0, 1, 2
DEPTH_UNKNOWN, DEPTH_RAW_USHORT, DEPTH_ZLIB_USHORT, DEPTH_OCCI_USHORT = -1, 0, 1, 2
COLOR_NAMES = {-1: "unknown", 0: "raw", 1: "png", 2: "jpeg"}
DEPTH_NAMES = {-1: "unknown", 0: "raw_ushort", 1: "zlib_ushort", 2: "occi_ushort"}

JPEG_QUALITY = 90  # fixed so the writer is deterministic
DEPTH_SHIFT_MM = 1000.0  # depth units per metre in ScanNet: millimetres (.sens and depth/<i>.png)


def encode_color(rgb: np.ndarray, compression: int = COLOR_JPEG) -> bytes:
    rgb = np.ascontiguousarray(rgb, dtype=np.uint8)
    if compression == COLOR_RAW:
        return rgb.tobytes()
    fmt = {COLOR_JPEG: "JPEG", COLOR_PNG: "PNG"}.get(compression)
    if fmt is None:
        raise ValueError(f"cannot encode colour compression {compression}")
    buf = io.BytesIO()
    kwargs = {"quality": JPEG_QUALITY} if fmt == "JPEG" else {}
    Image.fromarray(rgb).save(buf, format=fmt, **kwargs)
    return buf.getvalue()


def encode_depth(depth_units: np.ndarray, compression: int = DEPTH_ZLIB_USHORT) -> bytes:
    raw = np.ascontiguousarray(depth_units, dtype="<u2").tobytes()
    if compression == DEPTH_RAW_USHORT:
        return raw
    if compression == DEPTH_ZLIB_USHORT:
        return zlib.compress(raw, 6)
    raise ValueError(f"cannot encode depth compression {compression}")


def decode_color(data: bytes, compression: int, width: int, height: int, *, where: str) -> np.ndarray:
    """Bytes -> [H, W, 3] uint8 RGB. `where` names the file/frame in errors."""
    if compression == COLOR_RAW:
        if len(data) != width * height * 3:
            raise ScanError(where, f"raw colour has {len(data)} bytes, expected {width}x{height}x3")
        return np.frombuffer(data, dtype=np.uint8).reshape(height, width, 3).copy()
    if compression not in (COLOR_JPEG, COLOR_PNG):
        raise ScanError(where, f"unsupported colour compression {COLOR_NAMES.get(compression, compression)}")
    return decode_image(io.BytesIO(data), where=where, mode="RGB")


def decode_depth(data: bytes, compression: int, width: int, height: int, *, where: str) -> np.ndarray:
    """Bytes -> [h, w] uint16 depth units."""
    if compression == DEPTH_ZLIB_USHORT:
        try:
            data = zlib.decompress(data)
        except zlib.error as e:
            raise ScanError(where, f"undecodable zlib depth: {e}") from None
    elif compression != DEPTH_RAW_USHORT:
        raise ScanError(where, f"unsupported depth compression {DEPTH_NAMES.get(compression, compression)}")
    if len(data) != width * height * 2:
        raise ScanError(where, f"depth has {len(data)} bytes, expected {width}x{height} uint16")
    return np.frombuffer(data, dtype="<u2").reshape(height, width).astype(np.uint16)


def decode_image(src: str | Path | BinaryIO, *, where: str | Path, mode: str | None = None) -> np.ndarray:
    """Decode a JPEG/PNG fully; any decoder failure becomes a ScanError naming `where`."""
    try:
        with Image.open(src) as im:
            im.load()  # force the decode here, so truncation surfaces now
            if mode is not None and im.mode != mode:
                im = im.convert(mode)
            return np.asarray(im).copy()
    except FileNotFoundError:
        raise ScanError(where, "missing file") from None
    except Exception as e:  # PIL raises OSError, SyntaxError, ValueError, ... for bad data
        raise ScanError(where, f"truncated or undecodable image: {e}") from None


def metres_to_units(depth_m: np.ndarray, depth_shift: float = DEPTH_SHIFT_MM) -> np.ndarray:
    """[h, w] metres -> uint16 depth units; non-finite, negative or out-of-range -> 0 (invalid)."""
    units = np.rint(np.asarray(depth_m, dtype=np.float64) * depth_shift)
    valid = np.isfinite(units) & (units > 0) & (units <= 65535)
    return np.where(valid, units, 0).astype(np.uint16)


def encode_png16(depth_units: np.ndarray) -> bytes:
    """uint16 depth -> 16-bit greyscale PNG bytes (ScanNet's exported depth/<i>.png)."""
    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(depth_units, dtype=np.uint16)).save(buf, format="PNG")
    return buf.getvalue()


def decode_png16(path: str | Path) -> np.ndarray:
    """A 16-bit greyscale PNG -> [h, w] uint16 (uint16 -> I;16 PNG, as ScanNet's exporter writes it)."""
    arr = decode_image(path, where=path)
    if arr.ndim != 2 or arr.dtype.kind not in "ui" or arr.dtype.itemsize < 2 or (arr.size and (arr.min() < 0 or arr.max() > 65535)):
        raise ScanError(path, f"not a 16-bit depth image (array {arr.dtype} {arr.shape})")
    return arr.astype(np.uint16, copy=False)  # decode_image's array is already a private copy


# --- 16-bit binary PGM (the ScanNet C++ exporter's depth: big-endian, depth units) ---

# "P5", then width, height, maxval separated by whitespace, each possibly preceded by # comments
# (the C++ exporter writes one: "# data values are 16-bit each; depth shift is 1000"), then exactly
# one whitespace byte before the raster.
_PGM_HEADER = re.compile(rb"P5(?:\s|#[^\n]*\n)+(\d+)(?:\s|#[^\n]*\n)+(\d+)(?:\s|#[^\n]*\n)+(\d+)\s")
PGM_HEAD_BYTES = 1024  # enough for the header with a comment line


def pgm16_header(head: bytes) -> tuple[int, int, int, int] | str:
    """(width, height, maxval, raster offset) of a 16-bit binary PGM, or the problem as text."""
    if not head.startswith(b"P5"):
        return "not a binary PGM (no P5 magic)"
    m = _PGM_HEADER.match(head)
    if m is None:
        return "unreadable PGM header"
    w, h, maxval = (int(g) for g in m.groups())
    if not 255 < maxval <= 65535:
        return f"PGM maxval {maxval}: not 16-bit depth"
    return w, h, maxval, m.end()


def pgm16_problem(head: bytes, file_size: int, size: tuple[int, int] | None = None) -> str | None:
    """Problem with a 16-bit PGM from its first PGM_HEAD_BYTES and its length; `size` = (w, h) expected."""
    header = pgm16_header(head)
    if isinstance(header, str):
        return header
    w, h, _, offset = header
    if size is not None and (w, h) != tuple(size):
        return f"depth is {w}x{h}, expected {size[0]}x{size[1]}"
    if file_size < offset + 2 * w * h:
        return f"truncated PGM: {file_size - offset} raster bytes, expected {2 * w * h}"
    return None


def decode_pgm16(data: bytes, *, where: str | Path) -> np.ndarray:
    """A 16-bit binary PGM's bytes -> [h, w] uint16 (PGM samples are big-endian)."""
    header = pgm16_header(data[:PGM_HEAD_BYTES])
    if isinstance(header, str):
        raise ScanError(where, header)
    w, h, _, offset = header
    if len(data) < offset + 2 * w * h:
        raise ScanError(where, f"truncated PGM: {len(data) - offset} raster bytes, expected {2 * w * h}")
    return np.frombuffer(data, dtype=">u2", count=w * h, offset=offset).reshape(h, w).astype(np.uint16)


# --- container checks from the first and last bytes ---

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_PNG_END = b"IEND\xaeB`\x82"  # the IEND chunk's type and CRC: the last 8 bytes of every PNG
_JPEG_EOI_WINDOW = 32  # the end marker may be followed by a few padding bytes
HEAD_BYTES, TAIL_BYTES = 32, 32  # what the checks below need of a JPEG / PNG


def jpeg_problem(head: bytes, tail: bytes) -> str | None:
    if not head:
        return "empty file"
    if not head.startswith(b"\xff\xd8"):
        return "not a JPEG (no start marker)"
    # Inside the compressed data 0xFF is always followed by 0x00 or a restart marker, so FF D9
    # near the end is the end marker, and a truncated file has none.
    if b"\xff\xd9" not in tail[-_JPEG_EOI_WINDOW:]:
        return "truncated JPEG (no end marker)"
    return None


def png_problem(head: bytes, tail: bytes, *, depth16: bool = False, size: tuple[int, int] | None = None) -> str | None:
    """`depth16`: must be 16-bit greyscale (ScanNet's depth/<i>.png); `size` = (w, h) expected."""
    if not head:
        return "empty file"
    if not head.startswith(_PNG_SIGNATURE) or head[12:16] != b"IHDR" or len(head) < 26:
        return "not a PNG (no signature and header chunk)"
    w, h = int.from_bytes(head[16:20], "big"), int.from_bytes(head[20:24], "big")
    if depth16 and (head[24], head[25]) != (16, 0):
        return f"not a 16-bit greyscale PNG (bit depth {head[24]}, colour type {head[25]})"
    if size is not None and (w, h) != tuple(size):
        return f"image is {w}x{h}, expected {size[0]}x{size[1]}"
    if not tail.endswith(_PNG_END):
        return "truncated PNG (no end chunk)"
    return None


def zlib_problem(head: bytes) -> str | None:
    """A zlib stream's 2-byte header (deflate, check bits); the rest shows only when decompressed."""
    if len(head) < 2:
        return "empty or truncated zlib depth"
    cmf, flg = head[0], head[1]
    if cmf & 0x0F != 8 or (cmf << 8 | flg) % 31:
        return "not a zlib stream (bad header)"
    return None


def color_problem(head: bytes, tail: bytes, size: int, compression: int, width: int, height: int) -> str | None:
    """A `.sens` frame's colour bytes, checked like the files (raw: by length)."""
    if compression == COLOR_JPEG:
        return jpeg_problem(head, tail)
    if compression == COLOR_PNG:
        return png_problem(head, tail)
    if compression == COLOR_RAW and size != width * height * 3:
        return f"raw colour has {size} bytes, expected {width}x{height}x3"
    return None  # unknown compressions fail when decoded, naming the type


def depth_problem(head: bytes, size: int, compression: int, width: int, height: int) -> str | None:
    """A `.sens` frame's depth bytes (zlib: header; raw: length)."""
    if compression == DEPTH_ZLIB_USHORT:
        return zlib_problem(head)
    if compression == DEPTH_RAW_USHORT and size != width * height * 2:
        return f"depth has {size} bytes, expected {width}x{height} uint16"
    return None


def read_head_tail(path: Path, head: int = HEAD_BYTES, tail: int = TAIL_BYTES) -> tuple[bytes, bytes, int]:
    """(first `head` bytes, last `tail` bytes, size) of a file; raises OSError (FileNotFoundError) as open does."""
    with open(path, "rb", buffering=0) as f:
        size = f.seek(0, io.SEEK_END)
        f.seek(0)
        first = f.read(head)
        f.seek(max(size - tail, 0))
        return first, f.read(tail), size


def read_text(path: Path) -> str:
    """A UTF-8 text file of a scan, or ScanError naming it."""
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ScanError(path, "missing file") from None
    except (OSError, UnicodeDecodeError) as e:
        raise ScanError(path, f"cannot read: {e}") from None
