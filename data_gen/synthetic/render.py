"""RGB-D rendering by ray casting, vectorised over the pixels of a frame (numpy only).

The scene is the same analytic geometry the mesh is built from: floor and ceiling planes, vertical
wall quads and oriented boxes. The camera is always inside the room, so the nearest hit among the
floor plane, the ceiling plane and the wall segments is the room surface a ray sees (no polygon
test needed); boxes are intersected with the slab method, each only over the pixels of its
projected bounding rectangle.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np

from data_gen.synthetic.appearance import CEILING, FLOOR, OBJECT, WALL, Palette, surface_rgb
from data_gen.synthetic.layout import Box
from data_gen.synthetic.room import Room

NEAR = 1e-3  # metres; box corners closer than this to the camera plane disable window culling


@dataclass
class RenderScene:
    """Surfaces: 0 floor, 1 ceiling, 2..2+W-1 walls, then one per box."""

    height: float  # ceiling z
    wall_a: np.ndarray  # [W, 2] wall start points
    wall_dir: np.ndarray  # [W, 2] unit direction start -> end
    wall_len: np.ndarray  # [W]
    wall_normal: np.ndarray  # [W, 2] inward unit normals
    box_center: np.ndarray  # [B, 3]
    box_half: np.ndarray  # [B, 3]
    box_yaw: np.ndarray  # [B]
    box_corners: np.ndarray  # [B, 8, 3] world corners, for window culling
    colors: np.ndarray  # [S, 3] float base colour per surface
    kinds: np.ndarray  # [S] FLOOR / CEILING / WALL / OBJECT
    normals: np.ndarray  # [S, 6, 3] world normal per surface and box face (room surfaces: all 6 equal)
    surface_object: np.ndarray  # [S] object id of box surfaces, -1 for the room
    light: np.ndarray  # [3]
    object_runs: list[tuple[int, int]]  # (first, last + 1) box indices of each run of one object's boxes
    normals_by_axis: np.ndarray  # [3, S * 6] `normals` by component, each contiguous (fast gathers)

    @classmethod
    def build(cls, room: Room, boxes: list[Box], palette: Palette) -> RenderScene:
        walls = room.walls()
        a = np.array([w[0] for w in walls])
        d = np.array([w[1] - w[0] for w in walls])
        length = np.linalg.norm(d, axis=1)
        n = np.array([w[2] for w in walls])
        centers = np.array([b.center for b in boxes]).reshape(-1, 3)
        halves = np.array([b.half for b in boxes]).reshape(-1, 3)
        yaws = np.array([b.yaw for b in boxes], dtype=np.float64)
        signs = np.array([[sx, sy, sz] for sx in (-1, 1) for sy in (-1, 1) for sz in (-1, 1)])  # [8, 3]
        local = signs[None] * halves[:, None]  # [B, 8, 3]
        corners = _rotate_z(local, yaws[:, None]) + centers[:, None]

        num_w = len(walls)
        normals = np.zeros((2 + num_w + len(boxes), 6, 3), dtype=np.float32)
        normals[0, :, 2] = 1.0
        normals[1, :, 2] = -1.0
        normals[2: 2 + num_w, :, :2] = n[:, None]
        face_local = np.zeros((6, 3))  # face 2k: +axis k, face 2k+1: -axis k
        face_local[np.arange(6), np.arange(6) // 2] = np.where(np.arange(6) % 2 == 0, 1.0, -1.0)
        normals[2 + num_w:] = _rotate_z(np.broadcast_to(face_local, (len(boxes), 6, 3)), yaws[:, None])

        colors = np.array([palette.floor, palette.ceiling, *palette.walls, *[b.color for b in boxes]],
                          dtype=np.float32)
        kinds = np.array([FLOOR, CEILING] + [WALL] * num_w + [OBJECT] * len(boxes))
        obj = np.array([-1] * (2 + num_w) + [b.object_id for b in boxes])
        starts = [i for i in range(len(boxes)) if i == 0 or (boxes[i].object_id, boxes[i].yaw) !=
                  (boxes[i - 1].object_id, boxes[i - 1].yaw)]
        runs = list(itertools.pairwise([*starts, len(boxes)]))
        return cls(room.height, a, d / length[:, None], length, n, centers, halves, yaws, corners,
                   colors, kinds, normals, obj, palette.light, runs,
                   np.ascontiguousarray(normals.reshape(-1, 3).T))


@dataclass
class RenderedFrame:
    color: np.ndarray  # [H, W, 3] uint8 RGB
    depth: np.ndarray  # [H, W] float32 metres along the optical axis, whole millimetres
    surface: np.ndarray  # [H, W] int32 surface index into RenderScene (map to objects via surface_object)


def pixel_rays(intrinsic: np.ndarray, width: int, height: int) -> tuple[np.ndarray, np.ndarray]:
    """Camera-frame ray slopes ([1, W] x/z, [H, 1] y/z); with z = 1, ray parameter t equals depth."""
    fx, fy, cx, cy = intrinsic[0, 0], intrinsic[1, 1], intrinsic[0, 2], intrinsic[1, 2]
    u = ((np.arange(width) - cx) / fx).astype(np.float32)[None, :]
    v = ((np.arange(height) - cy) / fy).astype(np.float32)[:, None]
    return u, v


def render_frame(scene: RenderScene, pose: np.ndarray, intrinsic: np.ndarray, width: int, height: int
                 ) -> RenderedFrame:
    """Render one view; `pose` [4, 4] camera-to-world, `intrinsic` [4, 4] (or [3, 3])."""
    u, v = pixel_rays(intrinsic, width, height)
    rot = pose[:3, :3].astype(np.float32)
    origin = pose[:3, 3]
    # World ray directions, one [H, W] float32 array per axis (float32 halves memory traffic).
    dirs = tuple(rot[k, 0] * u + rot[k, 1] * v + rot[k, 2] for k in range(3))
    t, surface = _hit_room(scene, origin, dirs)
    face = np.zeros((height, width), dtype=np.int64)
    windows = _windows(scene.box_corners, pose, intrinsic, width, height)
    with np.errstate(divide="ignore"):
        inv_z = np.float32(1.0) / dirs[2]  # [H, W] shared by every box's z slab
    for first, last in scene.object_runs:
        _hit_object(scene, first, last, origin, dirs, inv_z, windows, t, surface, face)

    t = np.where(np.isfinite(t), t, np.float32(0))  # cannot happen inside a closed room; 0 = no depth
    points = tuple(float(origin[k]) + dirs[k] * t for k in range(3))  # world hit points, [H, W] each
    flat = surface * 6 + face  # [H, W] index into the surfaces' faces
    normals = tuple(np.take(scene.normals_by_axis[k], flat) for k in range(3))
    rgb = surface_rgb(scene.colors[surface], points, normals, scene.kinds[surface], scene.light)  # [H, W, 3]
    depth = (np.rint(t.astype(np.float64) * 1000.0) / 1000.0).astype(np.float32)  # exact as uint16 mm
    return RenderedFrame(color=rgb, depth=depth, surface=surface.astype(np.int32))


def render_frames(scene: RenderScene, poses: np.ndarray, intrinsic: np.ndarray, width: int, height: int
                  ) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Colour and depth images for every pose [N, 4, 4]."""
    frames = [render_frame(scene, p, intrinsic, width, height) for p in poses]
    return [f.color for f in frames], [f.depth for f in frames]


Dirs = tuple[np.ndarray, np.ndarray, np.ndarray]  # x, y, z components, each [H, W] float32


def _hit_room(scene: RenderScene, origin: np.ndarray, dirs: Dirs) -> tuple[np.ndarray, np.ndarray]:
    """Nearest floor / ceiling / wall hit: ([H, W] t, [H, W] surface index)."""
    dx, dy, dz = dirs
    with np.errstate(divide="ignore", invalid="ignore"):
        t_floor = np.where(dz < 0, np.float32(-origin[2]) / dz, np.float32(np.inf))
        t_ceil = np.where(dz > 0, np.float32(scene.height - origin[2]) / dz, np.float32(np.inf))
    t = np.minimum(t_floor, t_ceil)
    surface = (t_ceil < t_floor).astype(np.int64)  # 0 floor, 1 ceiling
    for w in range(len(scene.wall_a)):
        (nx, ny), (ax, ay), (ex, ey) = scene.wall_normal[w], scene.wall_a[w], scene.wall_dir[w]
        denom = dx * np.float32(nx) + dy * np.float32(ny)  # < 0: the ray moves towards this wall
        with np.errstate(divide="ignore", invalid="ignore"):
            tw = np.float32((ax - origin[0]) * nx + (ay - origin[1]) * ny) / denom
        along = dx * np.float32(ex) + dy * np.float32(ey)
        s = np.float32((origin[0] - ax) * ex + (origin[1] - ay) * ey) + tw * along  # position along the wall
        # tw > 0: in an L-shaped room the camera can be behind the line of a wall next to the
        # inner corner. The small tolerance keeps rays through a corner from slipping between walls.
        hit = (denom < 0) & (tw > 0) & (tw < t) & (s >= -1e-4) & (s <= scene.wall_len[w] + 1e-4)
        t[hit] = tw[hit]
        surface[hit] = 2 + w
    return t, surface


def _windows(corners: np.ndarray, pose: np.ndarray, intrinsic: np.ndarray, width: int, height: int
             ) -> np.ndarray:
    """[B, 4] pixel rows v0:v1 and columns u0:u1 each box (corners [B, 8, 3]) can cover; v0 == v1
    when it is entirely behind the camera or outside the image."""
    cam = (corners - pose[:3, 3]) @ pose[:3, :3]  # [B, 8, 3] world -> camera
    z = cam[..., 2]
    with np.errstate(divide="ignore", invalid="ignore"):
        u = intrinsic[0, 0] * cam[..., 0] / z + intrinsic[0, 2]
        v = intrinsic[1, 1] * cam[..., 1] / z + intrinsic[1, 2]
    out = np.zeros((len(corners), 4), dtype=np.int64)
    front = (z > NEAR).all(axis=1)  # wholly in front: the projected corners bound it
    if front.any():
        uf, vf = u[front], v[front]
        out[front, 0] = np.maximum(0, np.floor(vf.min(1)))
        out[front, 1] = np.minimum(height, np.ceil(vf.max(1)) + 1)
        out[front, 2] = np.maximum(0, np.floor(uf.min(1)))
        out[front, 3] = np.minimum(width, np.ceil(uf.max(1)) + 1)
    straddles = ~front & (z > NEAR).any(axis=1)  # crosses the camera plane: its projection is unbounded
    out[straddles] = (0, height, 0, width)
    empty = (out[:, 0] >= out[:, 1]) | (out[:, 2] >= out[:, 3])
    out[empty] = 0
    return out


def _hit_object(scene: RenderScene, first: int, last: int, origin: np.ndarray, dirs: Dirs, inv_z: np.ndarray,
                windows: np.ndarray, t: np.ndarray, surface: np.ndarray, face: np.ndarray) -> None:
    """Slab tests of boxes first..last-1 (one object: one yaw), each over its window, in order;
    the ray directions in the object's frame are computed once over the union of the windows."""
    win = windows[first:last]
    win = win[win[:, 0] < win[:, 1]]
    if len(win) == 0:
        return
    v0, v1, u0, u1 = win[:, 0].min(), win[:, 1].max(), win[:, 2].min(), win[:, 3].max()
    c, s = np.cos(scene.box_yaw[first]), np.sin(scene.box_yaw[first])
    wx, wy = dirs[0][v0:v1, u0:u1], dirs[1][v0:v1, u0:u1]
    local_dirs = (np.float32(c) * wx + np.float32(s) * wy, np.float32(-s) * wx + np.float32(c) * wy,
                  dirs[2][v0:v1, u0:u1])
    with np.errstate(divide="ignore"):
        inv = (np.float32(1.0) / local_dirs[0], np.float32(1.0) / local_dirs[1], inv_z[v0:v1, u0:u1])
    for b in range(first, last):
        b0, b1, a0, a1 = windows[b]
        if b0 < b1:
            sub = (slice(b0 - v0, b1 - v0), slice(a0 - u0, a1 - u0))
            _hit_box(scene, b, origin, tuple(d[sub] for d in local_dirs), tuple(i[sub] for i in inv),
                     (slice(b0, b1), slice(a0, a1)), t, surface, face)


def _hit_box(scene: RenderScene, b: int, origin: np.ndarray, local_dirs: Dirs, inv: Dirs, window: tuple[slice, slice],
             t: np.ndarray, surface: np.ndarray, face: np.ndarray) -> None:
    """Slab test of box `b` over the window (ray directions in the box's frame and their inverses,
    over the window); updates t, surface and face in place where nearer."""
    c, s = np.cos(scene.box_yaw[b]), np.sin(scene.box_yaw[b])
    rel = origin - scene.box_center[b]
    local_origin = (c * rel[0] + s * rel[1], -s * rel[0] + c * rel[1], rel[2])  # rotate by -yaw
    near, far = [], []
    with np.errstate(invalid="ignore"):
        for i, o, h in zip(inv, local_origin, scene.box_half[b], strict=True):
            t1, t2 = np.float32(-h - o) * i, np.float32(h - o) * i
            near.append(np.fmin(t1, t2))  # fmin/fmax: a 0/0 (ray in a face plane) must not poison
            far.append(np.fmax(t1, t2))
    t_near = np.maximum(np.maximum(near[0], near[1]), near[2])  # [h, w]
    t_far = np.minimum(np.minimum(far[0], far[1]), far[2])
    current = t[window]  # a view: writes below land in t
    hit = (t_near <= t_far) & (t_near > NEAR) & (t_near < current)
    if not hit.any():
        return
    th = t_near[hit]
    # The slab entered last is the face hit; entering through its negative side when d > 0.
    axis = np.where(near[0][hit] == th, 0, np.where(near[1][hit] == th, 1, 2))
    d_axis = np.choose(axis, [local_dirs[0][hit], local_dirs[1][hit], local_dirs[2][hit]])
    current[hit] = th
    surface[window][hit] = 2 + len(scene.wall_a) + b
    face[window][hit] = 2 * axis + (d_axis > 0)


def _rotate_z(v: np.ndarray, yaw: np.ndarray | float) -> np.ndarray:
    """Rotate vectors [..., 3] about +z by `yaw` (broadcast against v[..., 0])."""
    c, s = np.cos(yaw), np.sin(yaw)
    x, y = v[..., 0], v[..., 1]
    return np.stack([c * x - s * y, s * x + c * y, v[..., 2]], axis=-1)
