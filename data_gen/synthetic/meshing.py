"""The scene mesh: every planar surface gridded into triangles a few centimetres wide.

Real ScanNet meshes are dense, and later code relies on that (an alpha shape over floor vertices
for the room area, projecting instance vertices for visibility), so every quad is subdivided.
Segments: one per quad (a floor rectangle, a wall, a box face); instances group them per object
(labelled with its raw label), plus "floor", one per wall ("wall", or e.g. "shower walls") and
"ceiling" instances, as ScanNet annotates those too.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from data_gen.scans.scan import Instance
from data_gen.synthetic.appearance import CEILING, FLOOR, OBJECT, WALL, Palette, surface_rgb
from data_gen.synthetic.layout import Box, SceneObject
from data_gen.synthetic.room import Room

ROOM_STEP = 0.1  # metres: maximal grid spacing on floor, walls and ceiling
OBJECT_STEP = 0.06  # finer on furniture, which is smaller


@dataclass
class Mesh:
    vertices: np.ndarray  # [V, 3] float32, aligned frame
    colors: np.ndarray  # [V, 3] uint8
    faces: np.ndarray  # [F, 3] int32, counter-clockwise seen from the side the surface faces
    seg_indices: np.ndarray  # [V] int64
    instances: list[Instance]


@dataclass
class Quad:
    origin: np.ndarray  # [3]
    u: np.ndarray  # [3] first edge
    v: np.ndarray  # [3] second edge; the surface faces along u x v
    step: float
    color: tuple[int, int, int]
    kind: int
    owner: tuple[str, int]  # ("object", object_id) or ("floor" / "ceiling" / "wall", index)


def grid_quad(origin: np.ndarray, u: np.ndarray, v: np.ndarray, step: float) -> tuple[np.ndarray, np.ndarray]:
    """A parallelogram as a grid: ([(nu+1)(nv+1), 3] vertices, [2 nu nv, 3] triangles facing u x v)."""
    nu = max(1, int(np.ceil(np.linalg.norm(u) / step - 1e-9)))
    nv = max(1, int(np.ceil(np.linalg.norm(v) / step - 1e-9)))
    a, b = np.meshgrid(np.linspace(0, 1, nu + 1), np.linspace(0, 1, nv + 1), indexing="ij")  # [nu+1, nv+1]
    verts = origin + a.reshape(-1, 1) * u + b.reshape(-1, 1) * v
    idx = np.arange((nu + 1) * (nv + 1)).reshape(nu + 1, nv + 1)
    p00, p10, p11, p01 = idx[:-1, :-1], idx[1:, :-1], idx[1:, 1:], idx[:-1, 1:]
    tris = np.concatenate([np.stack([p00, p10, p11], -1).reshape(-1, 3),
                           np.stack([p00, p11, p01], -1).reshape(-1, 3)])
    return verts, tris


def build_mesh(room: Room, objects: list[SceneObject], boxes: list[Box], palette: Palette,
               wall_labels: list[str] | None = None, step_scale: float = 1.0) -> Mesh:
    """Grid every quad, colour the vertices like the renderer colours pixels, group segments.
    `wall_labels`: the label of each of `room.walls()` (default "wall"). `step_scale` multiplies
    the grid spacing (0.5: about 4x the vertices, ScanNet's ~10^5 for a room)."""
    quads = room_quads(room, palette) + [q for b in boxes for q in _box_quads(b)]
    verts, faces, colors, segs = [], [], [], []
    members: dict[tuple[str, int], list[np.ndarray]] = {}
    offset = 0
    for seg, q in enumerate(quads):
        v, f = grid_quad(q.origin, q.u, q.v, q.step * step_scale)
        normal = np.cross(q.u, q.v)
        normal /= np.linalg.norm(normal)
        kinds = np.full(len(v), q.kind)
        colors.append(surface_rgb(np.array(q.color, float), tuple(v.T), tuple(normal), kinds, palette.light))
        verts.append(v)
        faces.append(f + offset)
        segs.append(np.full(len(v), seg, dtype=np.int64))
        members.setdefault(q.owner, []).append(np.arange(offset, offset + len(v)))
        offset += len(v)

    # Furniture keeps its object ids; the room's instances are numbered after it.
    instances = [Instance(o.object_id, o.raw_label or o.label, np.concatenate(members[("object", o.object_id)]))
                 for o in objects]
    next_id = len(objects)
    for owner in sorted(k for k in members if k[0] != "object"):
        label = wall_labels[owner[1]] if owner[0] == "wall" and wall_labels else owner[0]
        instances.append(Instance(next_id, label, np.concatenate(members[owner])))
        next_id += 1
    return Mesh(
        vertices=np.concatenate(verts).astype(np.float32),
        colors=np.concatenate(colors),
        faces=np.concatenate(faces).astype(np.int32),
        seg_indices=np.concatenate(segs),
        instances=instances,
    )


def room_quads(room: Room, palette: Palette) -> list[Quad]:
    """Floor and ceiling rectangles (facing into the room) and one quad per wall (facing inward)."""
    quads = []
    height = room.height
    for x0, y0, x1, y1 in room.floor_rects():
        quads.append(Quad(np.array([x0, y0, 0.0]), np.array([x1 - x0, 0, 0]), np.array([0, y1 - y0, 0]),
                           ROOM_STEP, palette.floor, FLOOR, ("floor", 0)))
        quads.append(Quad(np.array([x0, y0, height]), np.array([0, y1 - y0, 0]), np.array([x1 - x0, 0, 0]),
                           ROOM_STEP, palette.ceiling, CEILING, ("ceiling", 0)))
    for i, (a, b, _) in enumerate(room.walls()):
        quads.append(Quad(np.array([a[0], a[1], 0.0]), np.array([0, 0, height]), np.array([*(b - a), 0.0]),
                           ROOM_STEP, palette.walls[i], WALL, ("wall", i)))
    return quads


def _box_quads(box: Box) -> list[Quad]:
    """The faces of a box, outward; the bottom is left out when it rests on something (never seen)."""
    c, s = np.cos(box.yaw), np.sin(box.yaw)
    rot = np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]])
    out = []
    for axis in range(3):
        b_ax, c_ax = (axis + 1) % 3, (axis + 2) % 3  # e_b x e_c = e_axis
        for sign in (1.0, -1.0):
            if axis == 2 and sign < 0 and box.rests:
                continue
            e = np.eye(3)
            center = sign * box.half[axis] * e[axis]
            u, v = 2 * box.half[b_ax] * e[b_ax], 2 * box.half[c_ax] * e[c_ax]
            corner = center - u / 2 - v / 2
            if sign < 0:
                u, v = v, u  # flip the winding so the face points along -axis
            out.append(Quad(rot @ corner + box.center, rot @ u, rot @ v, OBJECT_STEP, box.color, OBJECT,
                             ("object", box.object_id)))
    return out
