"""Procedural ScanNet-style scenes: a furnished room, its dense mesh, and a rendered RGB-D walk.

`generate_scene` builds one scene in memory (a `Scan` plus the ground-truth object list);
`synthesize_scans` writes many as ScanNet scene folders, with ScanNet's label table for the raw
labels they use. Everything is a pure function of the seed: same seed, same arrays, same bytes on
disk.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np

from data_gen.scans.scan import SCANNET_FPS, InMemoryFrames, Scan
from data_gen.seeding import stable_rng
from data_gen.synthetic.appearance import random_palette
from data_gen.synthetic.furniture import RECIPES, plan
from data_gen.synthetic.labels import SHOWER_WALL, WALL, label_table_rows, raw_label
from data_gen.synthetic.layout import SceneObject, layout_ok, object_boxes, place_objects
from data_gen.synthetic.meshing import build_mesh
from data_gen.synthetic.render import RenderScene, render_frames
from data_gen.synthetic.rendered_frames import RenderedFrames
from data_gen.synthetic.room import Room, random_room
from data_gen.synthetic.trajectory import camera_path, intrinsics

__all__ = ["SceneObject", "generate_scene", "run_scene_type", "scene_layout", "scene_seed", "synthesize_scans"]

SCENE_TYPES = tuple(RECIPES)


def generate_scene(
    name: str, seed: int, *, num_frames: int = 96, width: int = 320, height: int = 240,
    scene_type: str | None = None, depth_size: tuple[int, int] | None = None, color_scale: int = 1,
    mesh_step_scale: float = 1.0, stream: bool = False,
) -> tuple[Scan, list[SceneObject]]:
    """One synthetic scene: the aligned-frame `Scan` and its furniture (object ids = instance ids).
    `scene_type`: one of SCENE_TYPES, None = drawn from the seed. `width` x `height` is the colour
    size; `depth_size` the depth size (None: the same), `color_scale` renders colour that many times
    smaller and enlarges it, `mesh_step_scale` multiplies the mesh's grid spacing (see
    `rendered_frames.py`, `meshing.build_mesh`). `stream`: frames rendered when read (bounded
    memory, for writing big scenes) instead of all at once."""
    rng = np.random.default_rng(seed)
    scene_type, room, objects = _layout(rng, seed, scene_type)
    boxes = [b for o in objects for b in object_boxes(o)]
    palette = random_palette(rng, len(room.walls()), _light_position(room))
    mesh = build_mesh(room, objects, boxes, palette, _wall_labels(room, objects, seed), mesh_step_scale)

    hfov = float(rng.uniform(60.0, 70.0))
    k = intrinsics(width, height, hfov_deg=hfov)
    dw, dh = depth_size or (width, height)
    k_depth = intrinsics(dw, dh, hfov_deg=hfov) if (dw, dh) != (width, height) else k.copy()
    poses = camera_path(room, objects, boxes, rng, num_frames, hfov, width / height)  # [N, 4, 4]
    render_scene = RenderScene.build(room, boxes, palette)
    if stream or color_scale != 1 or (dw, dh) != (width, height):
        frames = RenderedFrames(render_scene, poses, color_intrinsic=k, color_size=(width, height),
                                depth_intrinsic=k_depth, depth_size=(dw, dh), color_scale=color_scale)  # fmt: skip
        if not stream:
            frames = InMemoryFrames(poses, [frames.color(i) for i in frames.ids], [frames.depth(i) for i in frames.ids])
    else:
        frames = InMemoryFrames(poses, *render_frames(render_scene, poses, k, width, height))
    align, align_text = _random_axis_alignment(rng)

    info = {
        "colorWidth": str(width), "colorHeight": str(height),
        "depthWidth": str(dw), "depthHeight": str(dh),
        "fx_color": f"{k[0, 0]:.6f}", "fy_color": f"{k[1, 1]:.6f}",
        "mx_color": f"{k[0, 2]:.6f}", "my_color": f"{k[1, 2]:.6f}",
        "fx_depth": f"{k_depth[0, 0]:.6f}", "fy_depth": f"{k_depth[1, 1]:.6f}",
        "mx_depth": f"{k_depth[0, 2]:.6f}", "my_depth": f"{k_depth[1, 2]:.6f}",
        "numColorFrames": str(num_frames), "numDepthFrames": str(num_frames),
        "sceneType": scene_type,
        "axisAlignment": align_text,
    }
    scan = Scan(
        name=name,
        axis_alignment=align,
        vertices=mesh.vertices,
        vertex_colors=mesh.colors,
        faces=mesh.faces,
        seg_indices=mesh.seg_indices,
        instances=mesh.instances,
        intrinsic_color=k,
        intrinsic_depth=k_depth,
        color_size=(width, height),
        depth_size=(dw, dh),
        frames=frames,
        num_frames=num_frames,
        scene_type=scene_type,
        dataset="synthetic",
        fps=SCANNET_FPS,
        info=info,
    )
    return scan, objects


LAYOUTS = ("scannet", "arkitscenes", "scannetpp")
SCANNETPP_LABELS = {"trash bin": "trash can"}  # ScanNet++'s free-text labels name it so
# ARKitScenes annotates only its own 17 classes; catalogue names it writes otherwise. Objects of
# other categories stay in the mesh, unannotated, as in a real ARKitScenes scene.
ARKIT_TAXONOMY = frozenset({"cabinet", "refrigerator", "shelf", "stove", "bed", "sink", "washer", "toilet", "bathtub",
                            "oven", "dishwasher", "fireplace", "stool", "chair", "table", "tv_monitor", "sofa"})  # fmt: skip
ARKIT_LABELS = {"tv": "tv_monitor", "washing machine": "washer", "desk": "table", "bookshelf": "shelf",
                "closet": "cabinet", "dresser": "cabinet", "nightstand": "cabinet"}  # fmt: skip


def synthesize_scans(
    out_dir: Path, num_scenes: int, seed: int, *, num_frames: int = 96, width: int = 320, height: int = 240,
    sens: bool = False, layout: str | tuple[str, ...] | list[str] = "scannet", first_index: int = 0, **sizes,
) -> list[Path]:
    """Write `out_dir/scans/scene0000_00`, ... (ScanNet layout) and ScanNet's label table
    `out_dir/scans/scannetv2-labels.combined.tsv` for their raw labels; returns the scene folders in
    order. The scene types take turns (`run_scene_type`), so a few scenes show every kind of room.
    `sizes`: `depth_size`, `color_scale`, `mesh_step_scale` of `generate_scene`. Frames are
    rendered as they are written (the memory of one frame, whatever the scene's length).

    layout="arkitscenes" writes ARKitScenes' 3DOD layout instead (`scans/<video id>/`, ids 41000000
    + index; each object annotated with its exact box under ARKitScenes' label for it), and
    layout="scannetpp" ScanNet++'s (`scans/<10 hex digits>/`, iPhone stream), for testing those
    readers and builds that mix sources. A list of layouts takes turns by scene index.
    `first_index` numbers the scenes from there (to add scenes beside existing ones)."""
    # The I/O layer, imported here so that generation needs none.
    from data_gen.scans.label_table import FILE_NAME, write_label_table

    layouts = [layout] if isinstance(layout, str) else list(layout)
    if not layouts or any(x not in LAYOUTS for x in layouts):
        raise ValueError(f"layout must be one of {LAYOUTS} (or a list of them), got {layout!r}")
    scans = Path(out_dir) / "scans"
    paths = []
    for index in range(first_index, first_index + num_scenes):
        layout = layouts[index % len(layouts)]
        name = {"scannet": f"scene{index:04d}_00", "arkitscenes": str(41000000 + index),
                "scannetpp": f"{index:010x}"}[layout]  # fmt: skip
        scan, objects = generate_scene(name, scene_seed(seed, index), num_frames=num_frames, width=width,
                                       height=height, scene_type=run_scene_type(seed, index), stream=True, **sizes)
        paths.append(_write(scan, objects, scans / name, layout, sens))
    scans.mkdir(parents=True, exist_ok=True)
    write_label_table(scans / FILE_NAME, label_table_rows())
    return paths


def _write(scan: Scan, objects: list[SceneObject], folder: Path, layout: str, sens: bool) -> Path:
    if layout == "scannet":
        from data_gen.scans.scannet_write import write_scan

        return write_scan(scan, folder, sens=sens)
    if layout == "scannetpp":
        from data_gen.scans.scannetpp_write import write_scannetpp_scene

        labels = {o.object_id: SCANNETPP_LABELS.get(o.label, o.raw_label or o.label) for o in objects}
        return write_scannetpp_scene(scan, folder, label_of=lambda inst: labels.get(inst.object_id))
    from data_gen.scans.arkitscenes_write import write_arkit_scene
    from data_gen.scans.scan import AnnotatedBox

    by_id = {o.object_id: o for o in objects}
    boxed = []
    for inst in scan.instances:
        o = by_id.get(inst.object_id)
        if o is not None:
            axes = np.array([[np.cos(o.yaw), np.sin(o.yaw), 0.0], [-np.sin(o.yaw), np.cos(o.yaw), 0.0], [0.0, 0.0, 1.0]])
            inst = dataclasses.replace(inst, box=AnnotatedBox(np.asarray(o.center, float), axes, np.asarray(o.size, float)))
        boxed.append(inst)
    labels = {o.object_id: ARKIT_LABELS.get(o.label, o.label) for o in objects}
    labels = {k: v for k, v in labels.items() if v in ARKIT_TAXONOMY}
    return write_arkit_scene(dataclasses.replace(scan, instances=boxed), folder,
                             label_of=lambda inst: labels.get(inst.object_id))  # fmt: skip


def scene_seed(seed: int, index: int) -> int:
    """The seed of scene `index` of a run seeded `seed` (independent streams per scene)."""
    return int(np.random.SeedSequence([seed, index]).generate_state(1, dtype=np.uint64)[0])


def run_scene_type(seed: int, index: int) -> str:
    """The scene type of scene `index` of a run seeded `seed`: the types in turn, from an offset."""
    return SCENE_TYPES[(seed + index) % len(SCENE_TYPES)]


def scene_layout(seed: int, scene_type: str | None = None) -> tuple[str, Room, list[SceneObject]]:
    """The scene type, room and furniture that `generate_scene(..., seed, scene_type=...)` builds
    (cheap: no mesh, no rendering); for checks that need the room itself."""
    return _layout(np.random.default_rng(seed), seed, scene_type)


def _layout(rng: np.random.Generator, seed: int, scene_type: str | None
            ) -> tuple[str, Room, list[SceneObject]]:
    """Draw the scene type (the draw is made even when it is given, so the rest of the stream does
    not depend on it), then a room and a layout that passes `layout_ok`; a cramped draw is retried
    with a new room. Raw labels come from their own streams."""
    drawn = SCENE_TYPES[int(rng.integers(len(SCENE_TYPES)))]
    scene_type = scene_type or drawn
    if scene_type not in RECIPES:
        raise ValueError(f"unknown scene type {scene_type!r}; known: {list(SCENE_TYPES)}")
    for _ in range(50):
        room = random_room(rng)
        max_floor = int(np.clip(room.area / 2.2, 6, 20))
        for _ in range(4):
            objects = place_objects(room, plan(scene_type, rng, max_floor), rng, max_floor)
            if layout_ok(objects):
                objects = [dataclasses.replace(o, raw_label=raw_label(o.label, seed, o.object_id)) for o in objects]
                return scene_type, room, objects
    raise RuntimeError(f"could not furnish a {scene_type!r} room")  # never seen; would be a bug


def _wall_labels(room: Room, objects: list[SceneObject], seed: int) -> list[str]:
    """One label per wall: "wall", except that the wall behind a bathtub is sometimes annotated
    "shower walls", as in ScanNet's bathrooms (its own stream, like the objects' raw labels)."""
    walls = room.walls()
    labels = [WALL] * len(walls)
    rng = stable_rng("synthetic-wall-label", seed)
    for o in objects:
        if o.label == "bathtub" and rng.random() < 0.5:
            labels[int(np.argmin([_segment_distance(o.center[:2], a, b) for a, b, _ in walls]))] = SHOWER_WALL
    return labels


def _segment_distance(p: np.ndarray, a: np.ndarray, b: np.ndarray) -> float:
    t = np.clip((p - a) @ (b - a) / ((b - a) @ (b - a)), 0.0, 1.0)
    return float(np.linalg.norm(p - (a + t * (b - a))))


def _light_position(room: Room) -> np.ndarray:
    """A ceiling lamp over the middle of the largest floor rectangle (inside the room even for an L)."""
    x0, y0, x1, y1 = max(room.floor_rects(), key=lambda r: (r[2] - r[0]) * (r[3] - r[1]))
    return np.array([(x0 + x1) / 2, (y0 + y1) / 2, room.height - 0.3])


def _random_axis_alignment(rng: np.random.Generator) -> tuple[np.ndarray, str]:
    """A ScanNet-like axisAlignment (rotation about z plus a translation) and its text.

    The matrix is built from its own 6-decimal text, as ScanNet's files have it, so that the
    text and the matrix agree exactly.
    """
    angle = rng.uniform(0, 2 * np.pi)
    c, s = np.cos(angle), np.sin(angle)
    tx, ty = rng.uniform(-4.0, 4.0, 2)
    tz = rng.uniform(-0.1, 0.1)
    m = np.array([[c, -s, 0, tx], [s, c, 0, ty], [0, 0, 1, tz], [0, 0, 0, 1]])
    text = " ".join(f"{v:.6f}" for v in m.reshape(16))
    return np.array([float(v) for v in text.split()]).reshape(4, 4), text
