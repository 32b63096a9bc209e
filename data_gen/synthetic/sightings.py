"""When does a camera path first show each object? A cheap prediction, from the analytic boxes, of
the first-appearance times the QA build measures on the rendered depth (`data_gen/qa/visibility.py`:
an object appears in the first tested frame where 10% of its surface passes a depth test, frames
tested every 0.25 s). The camera walk uses it to choose a sweep that shows the categories questions
ask about one after another (appearance-order questions need four first sightings more than a
second apart in whole seconds).
"""

from __future__ import annotations

import numpy as np

from data_gen.synthetic.labels import question_category
from data_gen.synthetic.layout import Box, SceneObject
from data_gen.synthetic.room import Room

# The QA build calls an object seen when 10% of 256 random points on its surface pass. With
# sampling noise (and these points' coarser grid) that happens somewhere between a glimpse of
# GLIMPSE of the surface and a clear view of CLEAR of it: the prediction gives both.
GLIMPSE, CLEAR = 0.03, 0.2
STEP = 6  # frames between the frames tested (0.25 s at 24 fps, as the QA build tests)
NEAR = 0.1  # metres: nearer points are not seen (the QA near plane)
TOLERANCE = 0.1  # metres: a point passes when the surface in front of it is at most this much nearer
GRID = 0.15  # metres between the points on a face (2 to 6 along each side)


class SurfacePoints:
    """Points on the seen-able faces of every object (a grid per box face, weighted by area)."""

    def __init__(self, boxes: list[Box], num_objects: int):
        pts, weights, owners = [], [], []
        for box in boxes:
            c, s = np.cos(box.yaw), np.sin(box.yaw)
            rot = np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])
            for axis in range(3):
                for sign in (1.0, -1.0):
                    if axis == 2 and sign < 0 and box.rests:
                        continue
                    b_ax, c_ax = (axis + 1) % 3, (axis + 2) % 3
                    nb, nc = (int(np.clip(np.ceil(2 * box.half[a] / GRID), 2, 6)) for a in (b_ax, c_ax))
                    gb, gc = np.meshgrid((np.arange(nb) + 0.5) / nb * 2 - 1, (np.arange(nc) + 0.5) / nc * 2 - 1)
                    local = np.zeros((nb * nc, 3))
                    local[:, axis] = sign * box.half[axis]
                    local[:, b_ax] = gb.ravel() * box.half[b_ax]
                    local[:, c_ax] = gc.ravel() * box.half[c_ax]
                    pts.append(local @ rot.T + box.center)
                    weights.append(np.full(nb * nc, 4 * box.half[b_ax] * box.half[c_ax] / (nb * nc)))  # area each
                    owners.append(np.full(nb * nc, box.object_id))
        self.points = np.concatenate(pts)  # [P, 3]
        self.weights = np.concatenate(weights)  # [P]
        self.owners = np.concatenate(owners)  # [P]
        self.totals = np.bincount(self.owners, self.weights, minlength=num_objects)  # [O]


class Occluders:
    """The boxes (and an L-shaped room's notch, as a tall box) that can hide a point."""

    def __init__(self, boxes: list[Box], room: Room):
        centers = [b.center for b in boxes]
        halves = [b.half for b in boxes]
        yaws = [b.yaw for b in boxes]
        if room.notch is not None:
            x0, y0, x1, y1 = room.notch
            centers.append(np.array([(x0 + x1) / 2, (y0 + y1) / 2, 0.0]))
            halves.append(np.array([(x1 - x0) / 2, (y1 - y0) / 2, 100.0]))
            yaws.append(0.0)
        self.center = np.array(centers).reshape(-1, 3)  # [B, 3]
        self.half = np.array(halves).reshape(-1, 3)  # [B, 3]
        self.cos = np.cos(yaws)  # [B]
        self.sin = np.sin(yaws)

    def hidden(self, origin: np.ndarray, points: np.ndarray, depth: np.ndarray) -> np.ndarray:
        """[M] bool: a box (the point's own included: that hides its far faces) lies on the ray from
        `origin` [3] to each point [M, 3] more than TOLERANCE nearer in depth [M] (the point's
        distance along the optical axis): as the QA depth test, which a point passes when the depth
        map is within a tolerance of the point's depth (so the back of a thin pane passes too)."""
        d = points - origin  # [M, 3]
        end = 1.0 - TOLERANCE / depth  # [M] ray parameter at which the depth is TOLERANCE short
        rel = origin - self.center  # [B, 3]
        lo_x = self.cos * rel[:, 0] + self.sin * rel[:, 1]  # [B] origin in each box's frame
        lo_y = -self.sin * rel[:, 0] + self.cos * rel[:, 1]
        ld_x = d[:, :1] * self.cos + d[:, 1:2] * self.sin  # [M, B] directions in each box's frame
        ld_y = -d[:, :1] * self.sin + d[:, 1:2] * self.cos
        ld_z = np.broadcast_to(d[:, 2:3], ld_x.shape)
        near = np.full(ld_x.shape, -np.inf)
        far = np.full(ld_x.shape, np.inf)
        with np.errstate(divide="ignore", invalid="ignore"):
            for ld, lo, h in ((ld_x, lo_x, self.half[:, 0]), (ld_y, lo_y, self.half[:, 1]),
                              (ld_z, rel[:, 2], self.half[:, 2])):
                t1, t2 = (-h - lo) / ld, (h - lo) / ld
                near = np.fmax(near, np.fmin(t1, t2))
                far = np.fmin(far, np.fmax(t1, t2))
        return ((near <= far) & (near < end[:, None]) & (far > 0)).any(axis=1)


def first_frames(poses: np.ndarray, tan_half: tuple[float, float], surface: SurfacePoints,
                 occluders: Occluders, num_objects: int, step: int = STEP) -> tuple[np.ndarray, np.ndarray]:
    """([O] first glimpse, [O] first clear view) of each object: the first tested frame (0, step,
    2 step, ...) in which GLIMPSE, resp. CLEAR, of its surface is seen; -1 never.

    poses: [N, 4, 4] camera-to-world (x right, y down, z forward); tan_half: tangents of the half
    field of view across and down the image.
    """
    glimpse = np.full(num_objects, -1, dtype=np.int64)
    clear = np.full(num_objects, -1, dtype=np.int64)
    for f in range(0, len(poses), step):
        todo = clear[surface.owners] < 0
        if not todo.any():
            break
        rot, origin = poses[f, :3, :3], poses[f, :3, 3]
        idx = np.flatnonzero(todo)
        cam = (surface.points[idx] - origin) @ rot  # [M, 3] world -> camera
        z = cam[:, 2]
        inside = (z > NEAR) & (np.abs(cam[:, 0]) < tan_half[0] * z) & (np.abs(cam[:, 1]) < tan_half[1] * z)
        idx = idx[inside]
        if len(idx) == 0:
            continue
        seen = idx[~occluders.hidden(origin, surface.points[idx], z[inside])]
        share = np.bincount(surface.owners[seen], surface.weights[seen], minlength=num_objects) / surface.totals
        glimpse[(glimpse < 0) & (share >= GLIMPSE)] = f
        clear[(clear < 0) & (share >= CLEAR)] = f
    return glimpse, clear


def category_sightings(objects: list[SceneObject], glimpse: np.ndarray, clear: np.ndarray
                       ) -> dict[str, tuple[int, int]]:
    """Question category -> (first glimpse of any of its objects, first clear view of any), frames;
    the QA build's first appearance falls in between. Categories never seen clearly are left out."""
    early: dict[str, int] = {}
    late: dict[str, int] = {}
    for o in objects:
        category = question_category(o.label)
        for first, frame in ((early, int(glimpse[o.object_id])), (late, int(clear[o.object_id]))):
            if category is not None and frame >= 0:
                first[category] = min(frame, first.get(category, frame))
    return {c: (early[c], f) for c, f in late.items()}


def order_margin(sightings: dict[str, tuple[int, int]], fps: float, size: int = 4) -> float:
    """The largest, over chains of `size` categories, of the smallest time from one's clear view to
    the next one's first glimpse, seconds (-inf without such a chain). At 2 s or more, however the
    QA build places each first appearance in its window, their whole-second times (rounded either
    way) are all at least 2 s apart: an appearance-order question can ask them."""
    return chain(list(sightings.values()), size)[0] / fps


def chain(windows: list[tuple[float, float]], size: int) -> tuple[float, list[tuple[float, float]]]:
    """Of the (early, late) windows, the `size` that follow one another with the largest smallest
    gap (next early - previous late): (that gap, those windows in order); (-inf, []) when no `size`
    windows follow one another at all."""
    order = sorted(range(len(windows)), key=lambda i: (windows[i][1], windows[i][0]))  # by late end

    def greedy(gap: float) -> list[int]:  # the earliest-ending next window each time: optimal
        out = [order[0]]
        for i in order[1:]:
            if len(out) == size:
                break
            if windows[i][0] - windows[out[-1]][1] >= gap:
                out.append(i)
        return out

    gaps = sorted({b[0] - a[1] for a in windows for b in windows if b[0] - a[1] >= 0})
    if not gaps or len(greedy(gaps[0])) < size:
        return -np.inf, []
    lo, hi = 0, len(gaps) - 1  # gaps[lo] is feasible; find the largest feasible one
    while lo < hi:
        mid = (lo + hi + 1) // 2
        lo, hi = (mid, hi) if len(greedy(gaps[mid])) >= size else (lo, mid - 1)
    return gaps[lo], [windows[i] for i in greedy(gaps[lo])]
