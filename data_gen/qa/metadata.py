"""Scene metadata: what every question generator reads. Objects with boxes, room area and centre,
first appearance per category. Pure numpy; JSON-friendly through to_dict/from_dict.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

import numpy as np

from data_gen.qa.config import QAConfig
from data_gen.qa.floor_grid import FloorGrid, floor_grid
from data_gen.qa.geometry import (
    OrientedBox,
    alpha_shape_area,
    oriented_box,
    rect_grid,
    sample_surface,
    sample_triangles,
)
from data_gen.qa.labels import LabelMapping
from data_gen.qa.obb import Box3D, box_distances, minimal_obb, upright_box
from data_gen.qa.visibility import first_visible_frames, frame_time, visibility_frame_ids
from data_gen.scans.scan import Scan, ScanError
from data_gen.seeding import stable_rng


@dataclass(frozen=True)
class ObjectMeta:
    """One annotated, non-structural instance."""

    object_id: int
    category: str  # question category, e.g. "chair" (labels.py)
    box: Box3D  # qa.boxes: VSI-Bench's minimal oriented box, or an upright one
    num_vertices: int


@dataclass(frozen=True)
class Appearance:
    """When a category is first seen: the earliest of its instances."""

    time_s: float  # frame / fps
    frame: int  # stream index of the frame
    object_id: int  # the instance seen first


@dataclass
class SceneMetadata:
    scene_name: str
    dataset: str
    fps: float  # frames per second of the video the times refer to
    floor_z: float  # metres
    room_area: float  # m^2, alpha shape of the floor points
    room_center: tuple[float, float, float]  # area centroid of the floor, at floor height
    objects: list[ObjectMeta]  # sorted by object_id
    first_appearance: dict[str, Appearance]  # category -> first sighting; unseen categories absent
    # The frames every record shows (the uniform ones; stream indices) and the camera-to-world pose
    # [3, 4] of each, row-major: what the camera-motion questions are asked from. Empty when the
    # scene was built without frames (a meta_info file).
    shown_frames: tuple[int, ...] = ()
    shown_poses: tuple[tuple[float, ...], ...] = ()
    shown_camera: tuple[float, ...] = ()  # the colour camera: (fx, fy, cx, cy, width, height)
    floor_grid: FloorGrid | None = None  # the floor-level mesh as cells (route planning); None from meta_info
    # The source's own instance counts where it states them (a meta_info entry's object_counts), else
    # None and counted from `objects`. VSI-Bench reads counts there, not from the boxes: counting's
    # answer and "the only instance of its category" (tasks/vsibench/get_obj_count_qa.py,
    # get_obj_size_qa.py in VITA-Group/VLM-3R); its ScanNet file has 3 counts that differ from its boxes.
    annotated_counts: dict[str, int] | None = None
    _distances: np.ndarray | None = field(default=None, repr=False, compare=False)  # [N, N], by position
    _position: dict[int, int] = field(default_factory=dict, repr=False, compare=False)  # object id -> row
    _nearest: dict[tuple[int, str], tuple[float, ObjectMeta]] = field(default_factory=dict, repr=False, compare=False)

    @property
    def counts(self) -> dict[str, int]:
        """Instances per category, categories sorted: `annotated_counts` where given."""
        if self.annotated_counts is not None:
            return dict(sorted(self.annotated_counts.items()))
        out: dict[str, int] = defaultdict(int)
        for o in self.objects:
            out[o.category] += 1
        return dict(sorted(out.items()))

    def by_category(self) -> dict[str, list[ObjectMeta]]:
        out: dict[str, list[ObjectMeta]] = defaultdict(list)
        for o in self.objects:
            out[o.category].append(o)
        return dict(sorted(out.items()))

    def unique_objects(self) -> list[ObjectMeta]:
        """Objects that are the only instance of their category (by `counts`), sorted by category."""
        counts = self.counts
        return [objs[0] for c, objs in self.by_category().items() if counts.get(c, 0) == 1]

    def object(self, object_id: int) -> ObjectMeta:
        for o in self.objects:
            if o.object_id == object_id:
                return o
        raise KeyError(object_id)

    def distance(self, a: ObjectMeta, b: ObjectMeta) -> float:
        """Closest-point distance between two objects' solid boxes, metres (every pair computed
        at once on first use: one batched call is ~5x cheaper per pair than one at a time)."""
        if self._distances is None:
            self._distances = box_distances([o.box for o in self.objects])
            self._position = {o.object_id: k for k, o in enumerate(self.objects)}
        return float(self._distances[self._position[a.object_id], self._position[b.object_id]])

    def category_distance(self, anchor: ObjectMeta, category: str) -> tuple[float, ObjectMeta]:
        """Distance from anchor to the nearest instance of a category, and that instance (cached)."""
        key = (anchor.object_id, category)
        if key not in self._nearest:
            instances = [o for o in self.objects if o.category == category]
            if not instances:
                raise KeyError(category)
            self._nearest[key] = min(((self.distance(anchor, o), o) for o in instances), key=lambda t: t[0])
        return self._nearest[key]

    def to_dict(self) -> dict:
        return {
            "scene_name": self.scene_name,
            "dataset": self.dataset,
            "fps": self.fps,
            "floor_z": self.floor_z,
            "room_area": self.room_area,
            "room_center": list(self.room_center),
            "objects": [
                {
                    "object_id": o.object_id,
                    "category": o.category,
                    "box": o.box.to_dict(),
                    "num_vertices": o.num_vertices,
                }
                for o in self.objects
            ],
            "counts": self.counts,
            "first_appearance": {
                c: {"time_s": a.time_s, "frame": a.frame, "object_id": a.object_id}
                for c, a in self.first_appearance.items()
            },
            "shown_frames": list(self.shown_frames),
            "shown_poses": [list(p) for p in self.shown_poses],
            "shown_camera": list(self.shown_camera),
            "floor_grid": None if self.floor_grid is None else self.floor_grid.to_dict(),
            **({} if self.annotated_counts is None else {"annotated_counts": dict(sorted(self.annotated_counts.items()))}),
        }

    @classmethod
    def from_dict(cls, d: dict) -> SceneMetadata:
        return cls(
            scene_name=d["scene_name"],
            dataset=d["dataset"],
            fps=float(d["fps"]),
            floor_z=float(d["floor_z"]),
            room_area=float(d["room_area"]),
            room_center=tuple(float(v) for v in d["room_center"]),
            objects=[
                ObjectMeta(
                    int(o["object_id"]),
                    o["category"],
                    Box3D.from_dict(o["box"]),
                    int(o["num_vertices"]),
                )
                for o in d["objects"]
            ],
            first_appearance={
                c: Appearance(float(a["time_s"]), int(a["frame"]), int(a["object_id"]))
                for c, a in d["first_appearance"].items()
            },
            shown_frames=tuple(int(i) for i in d.get("shown_frames", ())),
            shown_poses=tuple(tuple(float(v) for v in p) for p in d.get("shown_poses", ())),
            shown_camera=tuple(float(v) for v in d.get("shown_camera", ())),
            floor_grid=FloorGrid.from_dict(d["floor_grid"]) if d.get("floor_grid") else None,
            annotated_counts={str(c): int(n) for c, n in d["annotated_counts"].items()}
            if d.get("annotated_counts") is not None else None,
        )


def _instance_faces(scan: Scan, vertex_ids: np.ndarray) -> np.ndarray:
    """[Fi, 3] faces whose three vertices all belong to the instance."""
    member = np.zeros(len(scan.vertices), dtype=bool)
    member[vertex_ids] = True
    return scan.faces[_all_corners(member, scan.faces)]


def _instances_faces(scan: Scan, vertex_ids: list[np.ndarray]) -> list[np.ndarray]:
    """`_instance_faces` of every instance, from one pass over the faces when the instances share
    no vertex (the usual case; otherwise instance by instance)."""
    owner = np.full(len(scan.vertices), -1, dtype=np.int64)
    for k, vids in enumerate(vertex_ids):
        owner[vids] = k
    if np.count_nonzero(owner >= 0) != sum(len(v) for v in vertex_ids):  # a vertex in two instances
        return [_instance_faces(scan, vids) for vids in vertex_ids]
    faces = scan.faces
    own = owner[faces[:, 0]]
    own = np.where((own == owner[faces[:, 1]]) & (own == owner[faces[:, 2]]), own, -1)  # [F]
    order = np.argsort(own, kind="stable")  # faces grouped by instance, ascending within each
    bounds = np.searchsorted(own[order], np.arange(len(vertex_ids) + 1))
    return [faces[order[bounds[k] : bounds[k + 1]]] for k in range(len(vertex_ids))]


def _all_corners(mask: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """[F] bool: all three vertices of each face are in the vertex mask [V] (column ANDs: fast)."""
    return mask[faces[:, 0]] & mask[faces[:, 1]] & mask[faces[:, 2]]


def scene_objects(
    scan: Scan, config: QAConfig, labels: LabelMapping | None = None
) -> list[tuple[ObjectMeta, np.ndarray]]:
    """Instances whose label maps to a question category (`labels`; default: `LabelMapping.load(config)`),
    with enough vertices and not fragments -> (ObjectMeta, vertex ids [K]), by object id."""
    labels = labels or LabelMapping.load(config)
    num_vertices = len(scan.vertices)
    out = []
    for inst in sorted(scan.instances, key=lambda i: i.object_id):
        category = labels.category(inst.label, scan.dataset)
        if category is None:
            continue
        vids = np.unique(np.asarray(inst.vertex_ids, dtype=np.int64))
        if len(vids) and (vids[0] < 0 or vids[-1] >= num_vertices):
            raise ScanError(
                scan.name, f"instance {inst.object_id} ({inst.label}) has vertex ids outside the mesh"
            )
        if len(vids) < config.min_instance_vertices:
            continue
        fit = minimal_obb if config.boxes == "minimal" else upright_box
        box = Box3D(*inst.box) if inst.box is not None else fit(scan.vertices[vids])  # a source's own box wins
        out.append((ObjectMeta(int(inst.object_id), category, box, len(vids)), vids))
    return without_fragments(out, config.fragment_ratio)


def without_fragments(objects: list[tuple[ObjectMeta, np.ndarray]], ratio: float) -> list[tuple[ObjectMeta, np.ndarray]]:
    """Drop instances whose longest side is below `ratio` x the median longest side of the other
    instances of their category (the median of the others, so one oversized outlier neither hides
    nor creates fragments)."""
    longest: dict[str, list[float]] = defaultdict(list)
    for o, _ in objects:
        longest[o.category].append(o.box.longest_side)
    kept = []
    for o, vids in objects:
        sides = list(longest[o.category])
        sides.remove(o.box.longest_side)
        if ratio > 0 and sides and o.box.longest_side < ratio * float(np.median(sides)):
            continue
        kept.append((o, vids))
    return kept


def footprints(scan: Scan, objects: list[tuple[ObjectMeta, np.ndarray]]) -> list[OrientedBox]:
    """Each object's upright box (floor rectangle x height), what the floor area fills in with."""
    return [oriented_box(scan.vertices[vids]) for _, vids in objects]


def floor_mesh_points(scan: Scan, floor_z: float, config: QAConfig) -> np.ndarray:
    """2D points [N, 2] on the floor-level mesh faces: their vertices first (they mark the walls
    exactly), then points sampled on the faces every floor_sample_spacing."""
    z = scan.vertices[:, 2].astype(np.float64)
    near_floor = np.abs(z - floor_z) <= config.floor_band  # [V]
    faces = (
        scan.faces[_all_corners(near_floor, scan.faces)] if len(scan.faces) else np.zeros((0, 3), np.int64)
    )
    rng = stable_rng("floor", scan.name)
    return np.concatenate([
        scan.vertices[np.unique(faces)][:, :2].astype(np.float64),
        sample_triangles(scan.vertices, faces, config.floor_sample_spacing, rng)[:, :2],
    ])  # fmt: skip


def floor_points(scan: Scan, boxes: list[OrientedBox], floor_z: float, config: QAConfig,
                 mesh_points: np.ndarray | None = None) -> np.ndarray:  # fmt: skip
    """2D points [N, 2] on the floor: floor-level mesh faces (`floor_mesh_points`, computed when not
    given) plus footprints of standing objects (`boxes`: their upright boxes, see `footprints`).

    Real scans have no floor under a bed or a sofa; those objects stand on it, so their
    footprints fill the holes the alpha shape would otherwise cut out.
    """
    parts = [floor_mesh_points(scan, floor_z, config) if mesh_points is None else mesh_points]
    for box in boxes if config.footprint_max_height >= 0 else []:
        if box.z_range[0] <= floor_z + config.footprint_max_height:
            parts.append(rect_grid(box, config.floor_sample_spacing))
    pts = np.concatenate(parts)  # [N, 2]
    # Thin to one point per half-spacing cell (the first, i.e. mesh vertices win) to bound Delaunay.
    pts = pts[_first_in_cell(pts, config.floor_sample_spacing / 2)]
    return pts[_alpha_support(pts, config.alpha)]


# Cells of the occupancy grid `_alpha_support` builds, at most (4M cells: a 200 m room at alpha 5).
_MAX_SUPPORT_CELLS = 1 << 22


def _cell_keys(pts: np.ndarray, size: float, pad: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Integer cells [N, 2] of size x size squares, shifted so the smallest is (pad, pad), and the
    grid shape [2] that holds them with `pad` free cells on every side."""
    cell = np.floor(pts / size).astype(np.int64)
    cell -= cell.min(0) - pad
    return cell, cell.max(0) + pad + 1


def _first_in_cell(pts: np.ndarray, size: float) -> np.ndarray:
    """Ascending indices of the first point [N, 2] in each occupied size x size cell."""
    if len(pts) == 0:
        return np.zeros(0, dtype=np.int64)
    cell, shape = _cell_keys(pts, size)
    _, first = np.unique(cell[:, 0] * shape[1] + cell[:, 1], return_index=True)
    return np.sort(first)


def _alpha_support(pts: np.ndarray, alpha: float) -> np.ndarray:
    """Ascending indices of the points [N, 2] the alpha shape's area depends on: all of them, except
    deep inside a densely sampled floor, where one point per cell of 1 / (2 alpha) is kept.

    A cell is deep when every cell within two cells of it (one alpha radius) holds a point. Any
    Delaunay triangle over a deep cell is then smaller than the alpha radius (an empty circle that
    large would hold a whole cell, and all cells around are occupied), so the interior stays
    covered; and every point within one alpha radius of an empty cell is kept, so the triangles the
    boundary is made of, notches included, are those of all the points. On the test and benchmark
    rooms the area equals the one from all the points to ~1e-14 m^2, from 3-4x fewer points
    (Delaunay is most of the cost of the floor area).
    """
    idx = np.arange(len(pts))
    if len(pts) == 0:
        return idx
    k = 2  # cells of 1 / (2 alpha): the kept band is one alpha radius wide
    cell, (nx, ny) = _cell_keys(pts, 0.5 / alpha, pad=k)
    if nx * ny > _MAX_SUPPORT_CELLS:  # a far outlier stretches the grid: keep everything
        return idx
    occupied = np.zeros((nx + 1, ny + 1), dtype=np.int32)
    occupied[cell[:, 0] + 1, cell[:, 1] + 1] = 1
    table = occupied.cumsum(0).cumsum(1)  # table[i, j] = occupied cells in [0, i) x [0, j)
    x0, x1, y0, y1 = cell[:, 0] - k, cell[:, 0] + k + 1, cell[:, 1] - k, cell[:, 1] + k + 1
    around = table[x1, y1] - table[x0, y1] - table[x1, y0] + table[x0, y0]  # occupied in the 5x5 window
    deep = around == (2 * k + 1) ** 2
    keep = ~deep
    _, first = np.unique((cell[deep, 0] * ny + cell[deep, 1]), return_index=True)
    keep[np.flatnonzero(deep)[first]] = True
    return idx[keep]


def room_geometry(
    scan: Scan, boxes: list[OrientedBox], config: QAConfig
) -> tuple[float, float, tuple[float, float, float], FloorGrid]:
    """(floor_z, area m^2, centre, the floor grid route planning plans on) of the room, objects'
    upright `boxes` filling the floor under them for the area (not for the grid: a robot cannot
    stand under a bed); raises ScanError when the floor is degenerate."""
    if len(scan.vertices) == 0:
        raise ScanError(scan.name, "the mesh has no vertices")
    floor_z = float(np.percentile(scan.vertices[:, 2], config.floor_percentile))
    mesh = floor_mesh_points(scan, floor_z, config)
    pts = floor_points(scan, boxes, floor_z, config, mesh)
    area, centre = alpha_shape_area(pts, config.alpha)
    if area < config.min_room_area:
        raise ScanError(
            scan.name,
            f"degenerate room: floor area {area:.2f} m^2 < min_room_area {config.min_room_area} m^2",
        )
    return floor_z, area, (float(centre[0]), float(centre[1]), floor_z), floor_grid(mesh, config.route_cell)


def first_appearances(
    scan: Scan, objects: list[tuple[ObjectMeta, np.ndarray]], fps: float, config: QAConfig
) -> dict[str, Appearance]:
    """Category -> earliest sighting over its instances, from depth-tested projections."""
    ids = scan.frames.ids
    rng = stable_rng("visibility", scan.name)
    pts, owner = [], []
    instance_faces = _instances_faces(scan, [vids for _, vids in objects])
    for k, ((_, vids), faces) in enumerate(zip(objects, instance_faces, strict=True)):
        if len(faces):
            p = sample_surface(scan.vertices, faces, config.visibility_points, rng)
        else:  # a point-cloud instance: use its vertices
            take = (
                vids
                if len(vids) <= config.visibility_points
                else rng.choice(vids, config.visibility_points, replace=False)
            )
            p = scan.vertices[take].astype(np.float64)
        pts.append(p)
        owner.append(np.full(len(p), k))
    first = first_visible_frames(
        scan.frames,
        np.asarray(scan.intrinsic_depth, dtype=np.float64),
        np.concatenate(pts),
        np.concatenate(owner),
        len(objects),
        visibility_frame_ids(ids, fps, config.visibility_step_s),
        config.visibility_min_fraction,
        config.visibility_depth_tolerance,
        config.near_plane,
        tuple(scan.depth_size),
    )
    out: dict[str, Appearance] = {}
    for (obj, _), f in zip(objects, first, strict=True):
        if f < 0:
            continue
        seen = out.get(obj.category)
        if seen is None or f < seen.frame:  # objects go by id, so ties keep the lowest id
            out[obj.category] = Appearance(frame_time(int(f), fps), int(f), obj.object_id)
    return dict(sorted(out.items()))


def scene_metadata(scan: Scan, config: QAConfig, labels: LabelMapping | None = None) -> SceneMetadata:
    """Everything the question generators need about one scan.

    Raises ScanError for a scan with no usable frame, no annotated non-structural object, or a
    degenerate floor, so the build can reject the scene with that reason.
    """
    if not scan.frames.ids:
        raise ScanError(scan.name, "no usable frame (every pose is non-finite)")
    labels = labels or LabelMapping.load(config)
    objects = scene_objects(scan, config, labels)
    if not objects:
        raise ScanError(
            scan.name,
            f"no annotated object in the {config.vocabulary} vocabulary (instances: {len(scan.instances)}, "
            f"min_instance_vertices={config.min_instance_vertices}; labels: {', '.join(labels.sources)})",
        )
    metas = [o for o, _ in objects]
    floor_z, area, centre, floor = room_geometry(scan, footprints(scan, objects), config)
    fps = float(config.fps or scan.fps)
    return SceneMetadata(
        scene_name=scan.name,
        dataset=scan.dataset,
        fps=fps,
        floor_z=floor_z,
        room_area=area,
        room_center=centre,
        objects=metas,
        first_appearance=first_appearances(scan, objects, fps, config),
        floor_grid=floor,
    )
