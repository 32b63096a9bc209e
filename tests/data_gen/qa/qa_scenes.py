"""Scenes built by the QA tests themselves: box meshes, rooms, cameras and a ray-cast depth renderer.

Everything is axis-aligned so every expected answer can be worked out by hand.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from data_gen.scans.scan import InMemoryFrames, Instance, Scan

Box = tuple[tuple[float, float, float], tuple[float, float, float]]  # (lo, hi) corners, metres


def grid_quad(origin, u, v, step: float) -> tuple[np.ndarray, np.ndarray]:
    """A planar quad origin + s*u + t*v (s, t in [0, 1]) as a grid mesh with ~step spacing."""
    origin, u, v = (np.asarray(a, dtype=np.float64) for a in (origin, u, v))
    nu = max(int(np.ceil(np.linalg.norm(u) / step)), 1)
    nv = max(int(np.ceil(np.linalg.norm(v) / step)), 1)
    s, t = np.meshgrid(np.linspace(0, 1, nu + 1), np.linspace(0, 1, nv + 1), indexing="ij")
    verts = origin + s.reshape(-1, 1) * u + t.reshape(-1, 1) * v  # [(nu+1)(nv+1), 3]
    i, j = np.meshgrid(np.arange(nu), np.arange(nv), indexing="ij")
    a = (i * (nv + 1) + j).ravel()
    b, c, d = a + (nv + 1), a + (nv + 1) + 1, a + 1
    faces = np.concatenate([np.stack([a, b, c], 1), np.stack([a, c, d], 1)])
    return verts, faces


def box_quads(lo, hi) -> list[tuple]:
    lo, hi = np.asarray(lo, float), np.asarray(hi, float)
    dx, dy, dz = hi - lo
    x, y, z = np.eye(3)
    return [
        (lo, dx * x, dy * y), (lo + dz * z, dx * x, dy * y),  # bottom, top
        (lo, dx * x, dz * z), (lo + dy * y, dx * x, dz * z),  # front, back
        (lo, dy * y, dz * z), (lo + dx * x, dy * y, dz * z),  # left, right
    ]  # fmt: skip


@dataclass
class MeshBuilder:
    """Collects parts; each labelled part becomes one instance."""

    step: float = 0.1
    vertices: list[np.ndarray] = field(default_factory=list)
    faces: list[np.ndarray] = field(default_factory=list)
    instances: list[Instance] = field(default_factory=list)
    count: int = 0

    def add(self, quads: list[tuple], label: str | None = None, object_id: int | None = None) -> None:
        start = self.count
        for origin, u, v in quads:
            verts, faces = grid_quad(origin, u, v, self.step)
            self.vertices.append(verts)
            self.faces.append(faces + self.count)
            self.count += len(verts)
        if label is not None:
            oid = object_id if object_id is not None else len(self.instances)
            self.instances.append(Instance(oid, label, np.arange(start, self.count, dtype=np.int64)))

    def add_box(self, box: Box, label: str, object_id: int | None = None) -> None:
        self.add(box_quads(*box), label, object_id)


def room_outline_quads(outline: list[tuple[float, float]], height: float) -> list[tuple]:
    """Vertical wall quads along a closed floor outline."""
    pts = np.asarray(outline, float)
    out = []
    for a, b in zip(pts, np.roll(pts, -1, axis=0), strict=True):
        out.append((np.r_[a, 0.0], np.r_[b - a, 0.0], np.array([0.0, 0.0, height])))
    return out


def intrinsic(width: int, height: int, hfov_deg: float) -> np.ndarray:
    f = (width / 2) / np.tan(np.radians(hfov_deg) / 2)
    k = np.eye(4)
    k[0, 0] = k[1, 1] = f
    k[0, 2], k[1, 2] = (width - 1) / 2, (height - 1) / 2
    return k


def camera_pose(position, yaw_deg: float, pitch_deg: float = 0.0) -> np.ndarray:
    """Camera-to-world at `position` looking along world yaw (0 = +x), tilted up by pitch."""
    cy, sy = np.cos(np.radians(yaw_deg)), np.sin(np.radians(yaw_deg))
    cp, sp = np.cos(np.radians(pitch_deg)), np.sin(np.radians(pitch_deg))
    forward = np.array([cp * cy, cp * sy, sp])
    right = np.array([sy, -cy, 0.0])
    down = np.cross(forward, right)  # (x, y, z) = (right, down, forward) is right-handed
    pose = np.eye(4)
    pose[:3, :3] = np.stack([right, down, forward], axis=1)
    pose[:3, 3] = position
    return pose


def render_depth(
    pose: np.ndarray, k: np.ndarray, width: int, height: int, room: Box, boxes: list[Box]
) -> np.ndarray:
    """[h, w] float32 z-depth of the nearest hit: solid boxes, then the inside of the room box."""
    u, v = np.meshgrid(np.arange(width), np.arange(height))
    rays = np.stack([(u - k[0, 2]) / k[0, 0], (v - k[1, 2]) / k[1, 1], np.ones_like(u, float)], -1).reshape(
        -1, 3
    )
    dirs = rays @ pose[:3, :3].T  # world direction per unit of camera z
    origin = pose[:3, 3]
    with np.errstate(divide="ignore", invalid="ignore"):
        inv = 1.0 / dirs
        lo, hi = np.asarray(room[0]), np.asarray(room[1])
        t1, t2 = (lo - origin) * inv, (hi - origin) * inv
        best = np.nanmin(np.maximum(t1, t2), axis=1)  # leaving the room
        for blo, bhi in boxes:
            t1, t2 = (np.asarray(blo) - origin) * inv, (np.asarray(bhi) - origin) * inv
            near, far = np.nanmax(np.minimum(t1, t2), axis=1), np.nanmin(np.maximum(t1, t2), axis=1)
            hit = (near <= far) & (near > 0)
            best = np.where(hit & (near < best), near, best)
    return best.reshape(height, width).astype(np.float32)


def make_scan(
    name: str,
    mesh: MeshBuilder,
    poses: np.ndarray,
    depths: list[np.ndarray],
    k: np.ndarray,
    fps: float = 24.0,
    dataset: str = "synthetic",
) -> Scan:
    vertices = np.concatenate(mesh.vertices).astype(np.float32)
    h, w = depths[0].shape if depths else (1, 1)
    return Scan(
        name=name,
        axis_alignment=np.eye(4),
        vertices=vertices,
        vertex_colors=np.full((len(vertices), 3), 128, np.uint8),
        faces=np.concatenate(mesh.faces).astype(np.int32),
        seg_indices=np.zeros(len(vertices), np.int64),
        instances=list(mesh.instances),
        intrinsic_color=k,
        intrinsic_depth=k,
        color_size=(w, h),
        depth_size=(w, h),
        frames=InMemoryFrames(np.asarray(poses), [np.zeros((h, w, 3), np.uint8)] * len(depths), depths),
        num_frames=len(poses),
        dataset=dataset,
        fps=fps,
    )


# --- the 5 x 4 m furnished room ------------------------------------------------------------------

ROOM_5X4: Box = ((0.0, 0.0, 0.0), (5.0, 4.0, 2.5))
FURNITURE: dict[str, list[Box]] = {
    "chair": [((0.75, 0.75, 0.0), (1.25, 1.25, 0.9)), ((3.75, 0.75, 0.0), (4.25, 1.25, 0.9))],
    "table": [((1.7, 1.6, 0.0), (3.3, 2.4, 0.75))],
    "sofa": [((1.5, 3.1, 0.0), (3.5, 3.9, 0.85))],
    "closet": [((4.3, 3.0, 0.0), (4.9, 3.9, 1.2))],
    "lamp": [((0.2, 3.4, 0.0), (0.5, 3.7, 1.6))],
}


def furnished_room(
    name: str = "scene0700_00",
    num_frames: int = 24,
    width: int = 64,
    height: int = 48,
    furniture=None,
    fps=2.0,
) -> Scan:
    """The 5 x 4 x 2.5 m room: floor, four walls, ceiling, then FURNITURE (ids from 10 up); a camera
    at (2.5, 2.7, 1.4) looking 25 degrees down, turning a full circle counter-clockwise from +x."""
    furniture = FURNITURE if furniture is None else furniture
    mesh = MeshBuilder(step=0.1)
    (x0, y0, _), (x1, y1, z1) = ROOM_5X4
    mesh.add([((x0, y0, 0.0), (x1 - x0, 0, 0), (0, y1 - y0, 0))], "floor", 0)
    for i, quad in enumerate(room_outline_quads([(x0, y0), (x1, y0), (x1, y1), (x0, y1)], z1)):
        mesh.add([quad], "wall", 1 + i)
    mesh.add([((x0, y0, z1), (x1 - x0, 0, 0), (0, y1 - y0, 0))], "ceiling", 5)
    oid = 10
    boxes = []
    for label, items in furniture.items():
        for box in items:
            mesh.add_box(box, label, oid)
            boxes.append(box)
            oid += 1
    k = intrinsic(width, height, 60.0)
    poses = np.stack([camera_pose((2.5, 2.7, 1.4), 360.0 * f / num_frames, -25.0) for f in range(num_frames)])
    depths = [render_depth(p, k, width, height, ROOM_5X4, boxes) for p in poses]
    return make_scan(name, mesh, poses, depths, k, fps=fps)


def l_shaped_floor_scan(name: str = "scene0701_00") -> Scan:
    """Floor [0,5]x[0,2] + [0,3]x[2,4] (16 m^2; its bounding box is 20 m^2), walls, one bed, no frames
    that matter (one camera frame with empty depth)."""
    mesh = MeshBuilder(step=0.1)
    mesh.add([((0, 0, 0), (5, 0, 0), (0, 2, 0)), ((0, 2, 0), (3, 0, 0), (0, 2, 0))], "floor", 0)
    outline = [(0, 0), (5, 0), (5, 2), (3, 2), (3, 4), (0, 4)]
    mesh.add(room_outline_quads(outline, 2.5), "wall", 1)
    mesh.add_box(((0.5, 2.5, 0.0), (2.5, 3.8, 0.6)), "bed", 10)
    k = intrinsic(8, 6, 60.0)
    return make_scan(name, mesh, camera_pose((1, 1, 1), 0)[None], [np.zeros((6, 8), np.float32)], k)


# --- a camera turning on the spot, four objects at known bearings ------------------------------------

TURN_CENTER = (3.0, 3.0)
TURN_BEARINGS = {"chair": 22.5, "table": 112.5, "sofa": 202.5, "lamp": 292.5}  # degrees from +x
TURN_STEP_DEG = 15.0  # camera yaw per frame, counter-clockwise from +x


def turning_scan(
    name: str = "scene0703_00", fps: float = 2.0, extra: dict[str, list[Box]] | None = None
) -> Scan:
    """A 6 x 6 m room; a level camera at (3, 3, 0.6) with a 60-degree field of view turns 15 degrees
    per frame (24 frames). 0.3 x 0.3 x 0.5 m boxes stand 2 m away at TURN_BEARINGS, so each enters
    the view when the camera has turned to within ~23 degrees of it: frames 0, 6, 12 and 18."""
    room: Box = ((0.0, 0.0, 0.0), (6.0, 6.0, 2.5))
    objects: dict[str, list[Box]] = {}
    for label, bearing in TURN_BEARINGS.items():
        cx = TURN_CENTER[0] + 2.0 * np.cos(np.radians(bearing))
        cy = TURN_CENTER[1] + 2.0 * np.sin(np.radians(bearing))
        objects[label] = [((cx - 0.15, cy - 0.15, 0.0), (cx + 0.15, cy + 0.15, 0.5))]
    objects.update(extra or {})
    mesh = MeshBuilder(step=0.05)
    mesh.add([((0, 0, 0), (6, 0, 0), (0, 6, 0))], "floor", 0)
    oid = 10
    for label, boxes in objects.items():
        for box in boxes:
            mesh.add_box(box, label, oid)
            oid += 1
    k = intrinsic(80, 60, 60.0)
    poses = np.stack([camera_pose((*TURN_CENTER, 0.6), TURN_STEP_DEG * f) for f in range(24)])
    all_boxes = [b for boxes in objects.values() for b in boxes]
    depths = [render_depth(p, k, 80, 60, room, all_boxes) for p in poses]
    return make_scan(name, mesh, poses, depths, k, fps=fps)
