"""Triangle-mesh PLY I/O in ScanNet's flavour (`_vh_clean_2.ply`).

Reads binary PLY (little- or big-endian) with numpy structured dtypes, not per-face Python loops:
ScanNet meshes have ~10^5 faces. Writes exactly ScanNet's layout: vertex x, y, z float32 +
red, green, blue, alpha uchar; face `list uchar int vertex_indices`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from data_gen.scans.scan import ScanError

_TYPES = {
    "char": "i1", "int8": "i1", "uchar": "u1", "uint8": "u1",
    "short": "i2", "int16": "i2", "ushort": "u2", "uint16": "u2",
    "int": "i4", "int32": "i4", "uint": "u4", "uint32": "u4",
    "float": "f4", "float32": "f4", "double": "f8", "float64": "f8",
}
_MAX_HEADER = 1 << 16


@dataclass(frozen=True)
class PlyMesh:
    vertices: np.ndarray  # [V, 3] float32
    colors: np.ndarray  # [V, 3] uint8 (zeros when the file has none)
    faces: np.ndarray  # [F, 3] int32


@dataclass
class _Element:
    name: str
    count: int
    props: list[tuple[str, str, str | None]]  # (name, value type, list count type or None)


def write_ply(path: str | Path, vertices: np.ndarray, colors: np.ndarray, faces: np.ndarray) -> None:
    v = np.asarray(vertices, dtype=np.float32).reshape(-1, 3)
    c = np.asarray(colors, dtype=np.uint8).reshape(-1, 3)
    f = np.asarray(faces, dtype=np.int64).reshape(-1, 3)
    vert = np.empty(len(v), dtype=[("xyz", "<f4", 3), ("rgba", "u1", 4)])
    vert["xyz"] = v
    vert["rgba"][:, :3] = c
    vert["rgba"][:, 3] = 255
    face = np.empty(len(f), dtype=[("n", "u1"), ("idx", "<i4", 3)])
    face["n"] = 3
    face["idx"] = f
    header = (
        "ply\nformat binary_little_endian 1.0\n"
        f"element vertex {len(v)}\n"
        "property float x\nproperty float y\nproperty float z\n"
        "property uchar red\nproperty uchar green\nproperty uchar blue\nproperty uchar alpha\n"
        f"element face {len(f)}\nproperty list uchar int vertex_indices\nend_header\n"
    )
    with open(path, "wb") as out:
        out.write(header.encode("ascii"))
        out.write(vert.tobytes())
        out.write(face.tobytes())


def read_ply(path: str | Path) -> PlyMesh:
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise ScanError(path, "missing file") from None
    except OSError as e:
        raise ScanError(path, f"cannot read: {e}") from e
    elements, order, body = _parse_header(data, path)
    tables: dict[str, np.ndarray] = {}
    pos = body
    for el in elements:  # elements are stored back to back, so every one before face is parsed
        if "vertex" in tables and "face" in tables:
            break
        table, pos = _read_element(data, pos, el, order, path)
        tables[el.name] = table
    if "vertex" not in tables:
        raise ScanError(path, "bad PLY: no vertex element")
    vert = tables["vertex"]
    names = vert.dtype.names or ()
    if not {"x", "y", "z"} <= set(names):
        raise ScanError(path, "bad PLY: vertex element lacks x, y, z")
    vertices = np.stack([vert[k] for k in "xyz"], axis=1).astype(np.float32)
    if {"red", "green", "blue"} <= set(names):
        colors = np.stack([vert[k] for k in ("red", "green", "blue")], axis=1).astype(np.uint8)
    else:
        colors = np.zeros((len(vert), 3), dtype=np.uint8)
    faces = tables.get("face", np.zeros((0, 3), dtype=np.int32))
    if len(faces) and (faces.min() < 0 or faces.max() >= len(vertices)):
        raise ScanError(path, f"bad PLY: face index out of range [0, {len(vertices)})")
    return PlyMesh(vertices, colors, faces.astype(np.int32))


def _parse_header(data: bytes, path: Path) -> tuple[list[_Element], str, int]:
    end = data.find(b"end_header", 0, _MAX_HEADER)
    if not data.startswith(b"ply") or end < 0:
        raise ScanError(path, "bad PLY: no 'ply' magic or no end_header")
    body = data.find(b"\n", end) + 1
    if body == 0:
        raise ScanError(path, "bad PLY: truncated after end_header")
    lines = data[:end].decode("ascii", errors="replace").splitlines()
    fmt = ""
    elements: list[_Element] = []
    for line in lines[1:]:
        tok = line.split()
        if not tok or tok[0] in ("comment", "obj_info"):
            continue
        try:
            if tok[0] == "format":
                fmt = tok[1]
            elif tok[0] == "element":
                elements.append(_Element(tok[1], int(tok[2]), []))
            elif tok[0] == "property" and tok[1] == "list":
                elements[-1].props.append((tok[4], _TYPES[tok[3]], _TYPES[tok[2]]))
            elif tok[0] == "property":
                elements[-1].props.append((tok[2], _TYPES[tok[1]], None))
            else:
                raise KeyError(tok[0])
        except (IndexError, KeyError, ValueError):
            raise ScanError(path, f"bad PLY header line {line!r}") from None
    order = {"binary_little_endian": "<", "binary_big_endian": ">"}.get(fmt)
    if order is None:
        raise ScanError(path, f"unsupported PLY format {fmt!r} (binary only)" if fmt else "bad PLY: no format line")
    return elements, order, body


def _read_element(data: bytes, pos: int, el: _Element, order: str, path: Path) -> tuple[np.ndarray, int]:
    lists = [p for p in el.props if p[2] is not None]
    if not lists:
        dtype = np.dtype([(name, order + t) for name, t, _ in el.props])
        return _frombuffer(data, pos, dtype, el, path), pos + dtype.itemsize * el.count
    if el.name != "face" or len(el.props) != 1:
        raise ScanError(path, f"unsupported PLY element {el.name!r} with list properties")
    # Faces: assume triangles (ScanNet's), read all at once, then check every count is 3.
    _, item_t, count_t = el.props[0]
    dtype = np.dtype([("n", order + count_t), ("idx", order + item_t, 3)])
    table = _frombuffer(data, pos, dtype, el, path)
    if len(table) and (table["n"] != 3).any():
        raise ScanError(path, "bad PLY: only triangle faces are supported")
    return table["idx"].astype(np.int64), pos + dtype.itemsize * el.count


def _frombuffer(data: bytes, pos: int, dtype: np.dtype, el: _Element, path: Path) -> np.ndarray:
    need = dtype.itemsize * el.count
    if el.count < 0 or pos + need > len(data):
        raise ScanError(path, f"bad PLY: truncated {el.name} data ({need} bytes needed, {len(data) - pos} left)")
    return np.frombuffer(data, dtype=dtype, count=el.count, offset=pos)
