"""The camera: pinhole intrinsics and a hand-held walk through the free part of the room.

The walk visits a few far-apart spots of the largest free region (grid shortest paths, so it never
crosses furniture), while the view sweeps more than a full turn with a slight downward pitch: over
the clip every wall and most objects come into view.

Appearance-order questions need four categories first seen at least 2 s apart. The sweep is timed
for that: the first sightings along it are predicted (`sightings.py`), four categories spread along
the turn are picked, and the sweep is re-timed (turning faster or slower, never back) so that they
come into view at 0, 30, 60 and 90% of the clip; a few start headings and both directions are tried,
and the first timing whose predicted sightings are SPACING apart is kept (else the closest).
"""

from __future__ import annotations

import itertools

import numpy as np
from scipy import sparse
from scipy.sparse.csgraph import dijkstra

from data_gen.scans.scan import SCANNET_FPS
from data_gen.synthetic.freespace import FreeSpace
from data_gen.synthetic.layout import CAMERA_OBJECT_MARGIN, CAMERA_WALL_MARGIN, FLOOR, Box, SceneObject
from data_gen.synthetic.room import Room, rect_distance
from data_gen.synthetic.sightings import (
    Occluders,
    SurfacePoints,
    category_sightings,
    chain,
    first_frames,
    order_margin,
)

EYE_HEIGHT = 1.5  # metres above the floor
# Guaranteed clearances of every camera position (the path cells have the larger CAMERA_* margins;
# smoothing may cut corners by less than the difference).
MIN_WALL_CLEARANCE = 0.35
MIN_OBJECT_CLEARANCE = 0.3
MAX_PATH = 8.0  # metres walked over the clip at most: a brisk walk for 96 frames at 24 fps
SWEEPS = 12  # candidate sweeps: 6 start headings x 2 directions
RETIMINGS = 4  # re-timings of each (the view also depends on where the walk is at that time)
REVEAL_AT = (0.0, 0.3, 0.6, 0.9)  # clip fractions at which four categories should first appear
SPACING = 2.25  # seconds between four first sightings that end the search (2 s suffice; the rest is slack)
MAX_TURN_RATE = 120.0  # degrees per second over any half second: a re-timed sweep turns no faster


def intrinsics(width: int, height: int, hfov_deg: float) -> np.ndarray:
    """[4, 4] ScanNet-style intrinsic matrix: square pixels, principal point at the image centre."""
    f = round(width / 2 / np.tan(np.radians(hfov_deg) / 2), 2)  # 2 decimals: exact through text files
    k = np.eye(4)
    k[0, 0] = k[1, 1] = f
    k[0, 2], k[1, 2] = (width - 1) / 2, (height - 1) / 2  # pixel centres at integer coordinates
    return k


def camera_path(room: Room, objects: list[SceneObject], boxes: list[Box], rng: np.random.Generator,
                num_frames: int, hfov_deg: float, aspect: float) -> np.ndarray:
    """[N, 4, 4] camera-to-world poses (ScanNet camera axes: x right, y down, z forward).

    hfov_deg: horizontal field of view; aspect: image width / height (the sweep is chosen by what
    this frustum shows, so it does not depend on the resolution).
    """
    xy = _walk(room, objects, rng, num_frames)  # [N, 2]
    s = np.linspace(0.0, 1.0, num_frames)
    wobble = 0.06 * np.sin(2 * np.pi * 2.3 * s + rng.uniform(0, 6))
    pitch = -np.radians(15.0 + 5.0 * np.sin(2 * np.pi * 1.4 * s + rng.uniform(0, 6)))
    z = EYE_HEIGHT + rng.uniform(-0.08, 0.08) + 0.03 * np.sin(2 * np.pi * 3.1 * s)
    turns = rng.uniform(1.05, 1.3)
    offset = rng.uniform(0, 2 * np.pi)
    tan_x = float(np.tan(np.radians(hfov_deg) / 2))
    tan_half = (tan_x, tan_x / aspect)
    surface, occluders = SurfacePoints(boxes, len(objects)), Occluders(boxes, room)
    best_margin, best = -np.inf, None
    frames = np.arange(num_frames)
    duration = (num_frames - 1) / SCANNET_FPS  # seconds
    for k in range(SWEEPS):
        start, direction = offset + 2 * np.pi * (k // 2) / (SWEEPS // 2), (1.0, -1.0)[k % 2]
        heading = _yaw_sweep(room, xy, start, direction * turns)  # [N]
        # How far along the sweep MAX_TURN_RATE turns in the whole clip (the sweep's mean speed).
        reach = np.radians(MAX_TURN_RATE) * duration / abs(heading[-1] - heading[0])
        max_rate = max(MAX_TURN_RATE, _turn_rate(heading))  # the untimed sweep's own pace is fine
        progress = np.linspace(0.0, 1.0, num_frames)  # [N] how far along `heading` each frame is
        for _ in range(1 + RETIMINGS):
            yaw = np.interp(progress * (num_frames - 1), frames, heading)  # [N]
            poses = _poses(xy, yaw + wobble, pitch, z)
            seen = category_sightings(objects, *first_frames(poses, tan_half, surface, occluders, len(objects)))
            margin = order_margin(seen, SCANNET_FPS) if _turn_rate(yaw) <= max_rate + 1e-6 else -np.inf
            if best is None or margin > best_margin:
                best_margin, best = margin, poses
            if best_margin >= SPACING:
                return best
            progress = _retimed(progress, [(progress[a], progress[b]) for a, b in seen.values()], reach)
    return best


def _retimed(progress: np.ndarray, seen: list[tuple[float, float]], reach: float) -> np.ndarray:
    """[N] a new timing of the sweep: of the windows of sweep positions in which categories come
    into view (`seen`: from a first glimpse to a clear view), four that follow one another with
    the largest gaps, each clearly in view at the REVEAL_AT fractions of the clip; after the last,
    on towards the end of the sweep, as far as `reach` (sweep per clip) allows."""
    _, windows = chain(seen, len(REVEAL_AT))
    if not windows:
        return progress
    anchors = [w[1] for w in windows]
    end = min(1.0, anchors[-1] + reach * (1.0 - REVEAL_AT[-1]))
    clip = np.linspace(0.0, 1.0, len(progress))
    return np.interp(clip, [*REVEAL_AT, 1.0], [*anchors, end])


def _turn_rate(yaw: np.ndarray) -> float:
    """The fastest turn of headings yaw [N] (radians, one per frame), degrees per second averaged
    over half a second."""
    window = max(1, round(SCANNET_FPS / 2))
    step = np.abs(np.diff(yaw))  # [N-1]
    if len(step) < window:
        return float(np.degrees(step.mean()) * SCANNET_FPS) if len(step) else 0.0
    return float(np.degrees(np.convolve(step, np.ones(window) / window, mode="valid").max()) * SCANNET_FPS)


def _poses(xy: np.ndarray, yaw: np.ndarray, pitch: np.ndarray, z: np.ndarray) -> np.ndarray:
    """[N, 4, 4] poses at positions xy [N, 2] and heights z [N], heading yaw [N], pitch [N] (no roll)."""
    num_frames = len(xy)
    forward = np.stack([np.cos(pitch) * np.cos(yaw), np.cos(pitch) * np.sin(yaw), np.sin(pitch)], -1)  # [N,3]
    right = np.cross(forward, [0.0, 0.0, 1.0])
    right /= np.linalg.norm(right, axis=1, keepdims=True)
    down = np.cross(forward, right)
    poses = np.tile(np.eye(4), (num_frames, 1, 1))
    poses[:, :3, 0], poses[:, :3, 1], poses[:, :3, 2] = right, down, forward
    poses[:, :2, 3], poses[:, 2, 3] = xy, z
    return poses


def clearances(room: Room, objects: list[SceneObject], xy: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """([N] distance to the nearest wall, [N] distance to the nearest object footprint) of points [N, 2]."""
    walls = room.clearance(xy)
    objs = np.full(len(xy), np.inf)
    for o in objects:
        objs = np.minimum(objs, rect_distance(xy, o.center, o.half, o.yaw))
    return walls, objs


def view_distance(room: Room, xy: np.ndarray, yaw: np.ndarray) -> np.ndarray:
    """[K] distance from points [K, 2] to the first wall in horizontal direction `yaw` [K]."""
    d = np.stack([np.cos(yaw), np.sin(yaw)], axis=1)  # [K, 2]
    out = np.full(len(xy), np.inf)
    for a, b, n in room.walls():
        denom = d @ n  # < 0: heading towards this wall from the inside
        along = (b - a) / np.linalg.norm(b - a)
        with np.errstate(divide="ignore", invalid="ignore"):
            t = np.where(denom < 0, ((a - xy) @ n) / denom, np.inf)
            s = ((xy - a) @ along) + t * (d @ along)  # where along the wall the ray meets it
        ok = (t > 0) & (s >= -1e-6) & (s <= np.linalg.norm(b - a) + 1e-6)  # t < 0: behind (L-shaped room)
        out = np.where(ok, np.minimum(out, t), out)
    return out


def _yaw_sweep(room: Room, xy: np.ndarray, start: float, turns: float) -> np.ndarray:
    """[N] heading per frame: `turns` turns (negative: clockwise) from `start`, slower where the view
    reaches far.

    A uniform sweep spends as long staring at a wall half a metre away as at the far side of the
    room; dwelling in proportion to view distance (to the power 1.5) makes most frames show the
    room. The time warp depends on where the camera is at that time, so it is refined a few times.
    """
    n = len(xy)
    frac = np.linspace(0.0, 1.0, n)
    sweep = np.linspace(0.0, 1.0, max(16 * n, 512))  # fine parameter of the turn
    heading = start + 2 * np.pi * turns * sweep  # [K]
    time = sweep  # time (0..1) at which the camera faces `heading`
    for _ in range(3):
        pos = np.stack([np.interp(time, frac, xy[:, k]) for k in range(2)], axis=1)  # [K, 2]
        dwell = np.clip(view_distance(room, pos, heading), 0.3, 20.0) ** 1.5
        dwell += 0.25 * dwell.mean()  # caps the turn rate at a few times the average (no whip pans)
        time = np.concatenate([[0.0], np.cumsum((dwell[1:] + dwell[:-1]) / 2)])
        time /= time[-1]
    return np.interp(frac, time, heading)


def _walk(room: Room, objects: list[SceneObject], rng: np.random.Generator, num_frames: int) -> np.ndarray:
    """[N, 2] positions along a smoothed tour of far-apart free cells, evenly spaced by arc length."""
    free = _free_space(room, objects, CAMERA_WALL_MARGIN)
    # Prefer to stay well inside big rooms (more of the room in view), if that leaves enough room.
    x0, y0, x1, y1 = room.bounds
    inner = _free_space(room, objects, float(np.clip(0.15 * min(x1 - x0, y1 - y0), CAMERA_WALL_MARGIN, 1.0)))
    if inner.largest_area() >= 0.5 * free.largest_area():
        free = inner
    region = free.largest_component()
    if not region.any():
        raise RuntimeError("no free floor for the camera")  # layout guarantees some; a bug if not
    cells = free.centers[region]  # [C, 2]
    graph = _grid_graph(region, free.cell)
    n_way = int(np.clip(round(len(cells) * free.cell**2 / 3.0) + 2, 2, 5))
    way = [int(rng.integers(len(cells)))]
    dist = dijkstra(graph, indices=way[0])
    for _ in range(n_way - 1):  # farthest-point sampling along walkable paths
        way.append(int(np.argmax(dist)))
        dist = np.minimum(dist, dijkstra(graph, indices=way[-1]))
    dist, pred = dijkstra(graph, indices=way, return_predecessors=True)  # [K, C]
    order = min(itertools.permutations(range(len(way))),
                key=lambda p: sum(dist[a, way[b]] for a, b in itertools.pairwise(p)))
    nodes = [way[order[0]]]
    for a, b in itertools.pairwise(order):
        nodes += _path(pred[a], way[b])[1:]
    path = _truncate(cells[nodes], MAX_PATH)  # [M, 2]
    smooth = _smooth(path)
    # Points between two smoothed vertices (<= one cell diagonal apart) may be up to half a
    # diagonal closer to an obstacle than the vertices.
    slack = free.cell * np.sqrt(2) / 2
    walls, objs = clearances(room, objects, smooth)
    if (walls < MIN_WALL_CLEARANCE + slack).any() or (objs < MIN_OBJECT_CLEARANCE + slack).any():
        smooth = path  # cell centres themselves have the full CAMERA_* margins
    return _resample(smooth, num_frames)


def _free_space(room: Room, objects: list[SceneObject], wall_margin: float) -> FreeSpace:
    free = FreeSpace.of_room(room, wall_margin)
    for o in objects:
        if o.mount == FLOOR:  # the others hang on walls (within the wall margin) or stand on these
            free = free.without(o.center, o.half, o.yaw, CAMERA_OBJECT_MARGIN)
    return free


def _grid_graph(region: np.ndarray, cell: float) -> sparse.csr_matrix:
    """Sparse [C, C] 8-neighbour graph over the True cells of `region` (edge weight = metres)."""
    index = np.full((region.shape[0] + 2, region.shape[1] + 2), -1, dtype=np.int64)  # padded by one cell
    index[1:-1, 1:-1][region] = np.arange(region.sum())
    ny, nx = region.shape
    a = index[1:-1, 1:-1]
    rows, cols, weights = [], [], []
    for dy, dx in ((0, 1), (1, 0), (1, 1), (1, -1)):  # each undirected edge once
        b = index[1 + dy: ny + 1 + dy, 1 + dx: nx + 1 + dx]
        ok = (a >= 0) & (b >= 0)
        rows.append(a[ok])
        cols.append(b[ok])
        weights.append(np.full(ok.sum(), cell * np.hypot(dx, dy)))
    r, c, w = np.concatenate(rows), np.concatenate(cols), np.concatenate(weights)
    n = int(region.sum())
    both_ways = (np.concatenate([r, c]), np.concatenate([c, r]))
    return sparse.csr_matrix((np.concatenate([w, w]), both_ways), shape=(n, n))


def _path(pred: np.ndarray, target: int) -> list[int]:
    out = [target]
    while pred[out[-1]] >= 0:
        out.append(int(pred[out[-1]]))
    return out[::-1]


def _smooth(path: np.ndarray, window: int = 7) -> np.ndarray:
    """Moving average of a polyline [M, 2], ends kept in place."""
    if len(path) < 3:
        return path
    pad = window // 2
    padded = np.concatenate([np.repeat(path[:1], pad, 0), path, np.repeat(path[-1:], pad, 0)])
    kernel = np.ones(window) / window
    return np.stack([np.convolve(padded[:, k], kernel, mode="valid") for k in range(2)], axis=1)


def _truncate(path: np.ndarray, max_length: float) -> np.ndarray:
    """The first `max_length` metres of a polyline [M, 2] (whole vertices only)."""
    arc = np.concatenate([[0.0], np.cumsum(np.linalg.norm(np.diff(path, axis=0), axis=1))])
    return path[: max(1, int(np.searchsorted(arc, max_length, side="right")))]


def _resample(path: np.ndarray, n: int) -> np.ndarray:
    """[n, 2] points evenly spaced by arc length along the polyline [M, 2]."""
    seg = np.linalg.norm(np.diff(path, axis=0), axis=1)
    arc = np.concatenate([[0.0], np.cumsum(seg)])
    if arc[-1] < 1e-9:
        return np.repeat(path[:1], n, axis=0)
    t = np.linspace(0.0, arc[-1], n)
    return np.stack([np.interp(t, arc, path[:, k]) for k in range(2)], axis=1)
