"""Triangle-mesh PLY I/O in ScanNet's flavour (`_vh_clean_2.ply`).

Reads any PLY (binary either endianness, or ASCII) with `plyfile`, faces as one fixed-size array
(ScanNet meshes have ~10^5 faces). Writes exactly ScanNet's layout, byte for byte what scans'
hashes rest on: vertex x, y, z float32 + red, green, blue, alpha uchar; face
`list uchar int vertex_indices`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import plyfile

from data_gen.scans.scan import ScanError

_FACE_LISTS = ("vertex_indices", "vertex_index")  # both spellings occur in the wild
_ELEMENT_ERRORS = {  # plyfile's words -> ours
    "early end-of-file": "truncated {name} data",
    "unexpected list length": "only triangle faces are supported",
}


@dataclass(frozen=True)
class PlyMesh:
    vertices: np.ndarray  # [V, 3] float32
    colors: np.ndarray  # [V, 3] uint8 (zeros when the file has none)
    faces: np.ndarray  # [F, 3] int32


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
    """Vertices, colours (zeros when absent) and triangles of a binary or ASCII PLY. Raises ScanError."""
    path = Path(path)
    if not path.is_file():
        raise ScanError(path, "missing file")
    try:
        # Triangles declared up front let plyfile map faces as one fixed-size array (a list
        # property read row by row costs ~0.7 s on a ScanNet mesh); a non-triangle row is refused.
        ply = plyfile.PlyData.read(str(path), known_list_len={"face": dict.fromkeys(_FACE_LISTS, 3)})
    except plyfile.PlyHeaderParseError as e:
        raise ScanError(path, f"bad PLY header {e}") from None
    except plyfile.PlyElementParseError as e:
        name = e.element.name if e.element is not None else "?"
        what = _ELEMENT_ERRORS.get(e.message, e.message).format(name=name)
        raise ScanError(path, f"bad PLY: {what} (row {e.row})") from None
    except (plyfile.PlyParseError, ValueError) as e:
        raise ScanError(path, f"bad PLY: {e}") from None
    except OSError as e:
        raise ScanError(path, f"cannot read: {e}") from e
    if "vertex" not in ply:
        raise ScanError(path, "bad PLY: no vertex element")
    vert = ply["vertex"].data
    names = set(vert.dtype.names or ())
    if not {"x", "y", "z"} <= names:
        raise ScanError(path, "bad PLY: vertex element lacks x, y, z")
    vertices = np.stack([vert[k] for k in "xyz"], axis=1).astype(np.float32)
    if {"red", "green", "blue"} <= names:
        colors = np.stack([vert[k] for k in ("red", "green", "blue")], axis=1).astype(np.uint8)
    else:
        colors = np.zeros((len(vert), 3), dtype=np.uint8)
    faces = _triangles(ply, path)
    if len(faces) and (faces.min() < 0 or faces.max() >= len(vertices)):
        raise ScanError(path, f"bad PLY: face index out of range [0, {len(vertices)})")
    return PlyMesh(vertices, colors, faces)


def _triangles(ply: plyfile.PlyData, path: Path) -> np.ndarray:
    """`[F, 3]` int32 vertex indices of the face element (none: empty)."""
    if "face" not in ply:
        return np.zeros((0, 3), dtype=np.int32)
    face = ply["face"].data
    name = next((n for n in _FACE_LISTS if n in (face.dtype.names or ())), None)
    if name is None:
        raise ScanError(path, f"bad PLY: face element has none of {_FACE_LISTS}")
    column = face[name]
    if column.dtype == object:  # ASCII files: one array per row
        if any(len(row) != 3 for row in column):
            raise ScanError(path, "bad PLY: only triangle faces are supported")
        column = np.stack(column) if len(column) else np.zeros((0, 3))
    return column.reshape(-1, 3).astype(np.int32)
