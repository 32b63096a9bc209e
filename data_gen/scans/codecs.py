"""Image codecs for scan frames: colour JPEG/PNG/raw and uint16 depth (zlib, raw, 16-bit PNG).

Shared by the `.sens` stream and the exported `color/`, `depth/` folders. The compression enums are
ScanNet's (sensorData.h). Every decode failure is a ScanError naming where the bytes came from.
"""

from __future__ import annotations

import io
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
    """A 16-bit greyscale PNG -> [h, w] uint16."""
    arr = decode_image(path, where=path)
    if arr.ndim != 2 or arr.dtype.kind not in "ui" or arr.dtype.itemsize < 2 or (arr.size and (arr.min() < 0 or arr.max() > 65535)):
        raise ScanError(path, f"not a 16-bit depth image (array {arr.dtype} {arr.shape})")
    return arr.astype(np.uint16, copy=False)  # decode_image's array is already a private copy


def read_text(path: Path) -> str:
    """A UTF-8 text file of a scan, or ScanError naming it."""
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ScanError(path, "missing file") from None
    except (OSError, UnicodeDecodeError) as e:
        raise ScanError(path, f"cannot read: {e}") from None
