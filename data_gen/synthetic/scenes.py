"""Procedural ScanNet-style scenes: a furnished room, its dense mesh, and a rendered RGB-D walk.

`generate_scene` builds one scene in memory (a `Scan` plus the ground-truth object list);
`synthesize_scans` writes many as ScanNet scene folders. Everything is a pure function of the
seed: same seed, same arrays, same bytes on disk.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from data_gen.scans.scan import SCANNET_FPS, InMemoryFrames, Scan
from data_gen.synthetic.appearance import random_palette
from data_gen.synthetic.furniture import RECIPES, plan
from data_gen.synthetic.layout import SceneObject, layout_ok, object_boxes, place_objects
from data_gen.synthetic.meshing import build_mesh
from data_gen.synthetic.render import RenderScene, render_frames
from data_gen.synthetic.room import Room, random_room
from data_gen.synthetic.trajectory import camera_path, intrinsics

__all__ = ["SceneObject", "generate_scene", "scene_layout", "scene_seed", "synthesize_scans"]

SCENE_TYPES = tuple(RECIPES)


def generate_scene(
    name: str, seed: int, *, num_frames: int = 96, width: int = 320, height: int = 240
) -> tuple[Scan, list[SceneObject]]:
    """One synthetic scene: the aligned-frame `Scan` and its furniture (object ids = instance ids)."""
    rng = np.random.default_rng(seed)
    scene_type, room, objects = _layout(rng)
    boxes = [b for o in objects for b in object_boxes(o)]
    palette = random_palette(rng, len(room.walls()), _light_position(room))
    mesh = build_mesh(room, objects, boxes, palette)

    k = intrinsics(width, height, hfov_deg=float(rng.uniform(60.0, 70.0)))
    poses = camera_path(room, objects, rng, num_frames)  # [N, 4, 4]
    colors, depths = render_frames(RenderScene.build(room, boxes, palette), poses, k, width, height)
    align, align_text = _random_axis_alignment(rng)

    info = {
        "colorWidth": str(width), "colorHeight": str(height),
        "depthWidth": str(width), "depthHeight": str(height),
        "fx_color": f"{k[0, 0]:.6f}", "fy_color": f"{k[1, 1]:.6f}",
        "mx_color": f"{k[0, 2]:.6f}", "my_color": f"{k[1, 2]:.6f}",
        "fx_depth": f"{k[0, 0]:.6f}", "fy_depth": f"{k[1, 1]:.6f}",
        "mx_depth": f"{k[0, 2]:.6f}", "my_depth": f"{k[1, 2]:.6f}",
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
        intrinsic_depth=k.copy(),
        color_size=(width, height),
        depth_size=(width, height),
        frames=InMemoryFrames(poses=poses, colors=colors, depths=depths),
        num_frames=num_frames,
        scene_type=scene_type,
        dataset="synthetic",
        fps=SCANNET_FPS,
        info=info,
    )
    return scan, objects


def synthesize_scans(
    out_dir: Path, num_scenes: int, seed: int, *, num_frames: int = 96, width: int = 320, height: int = 240,
    sens: bool = False,
) -> list[Path]:
    """Write `out_dir/scans/scene0000_00`, ... (ScanNet layout); returns the scene folders in order."""
    from data_gen.scans.scannet_write import write_scan  # the I/O layer; imported here so generation needs none

    paths = []
    for index in range(num_scenes):
        name = f"scene{index:04d}_00"
        scan, _ = generate_scene(name, scene_seed(seed, index), num_frames=num_frames, width=width,
                                 height=height)
        paths.append(write_scan(scan, Path(out_dir) / "scans" / name, sens=sens))
    return paths


def scene_seed(seed: int, index: int) -> int:
    """The seed of scene `index` of a run seeded `seed` (independent streams per scene)."""
    return int(np.random.SeedSequence([seed, index]).generate_state(1, dtype=np.uint64)[0])


def scene_layout(seed: int) -> tuple[str, Room, list[SceneObject]]:
    """The scene type, room and furniture that `generate_scene(..., seed)` builds (cheap: no mesh, no
    rendering); for checks that need the room itself."""
    return _layout(np.random.default_rng(seed))


def _layout(rng: np.random.Generator) -> tuple[str, Room, list[SceneObject]]:
    """Draw the scene type, then a room and a layout that passes `layout_ok`; a cramped draw is
    retried with a new room."""
    scene_type = SCENE_TYPES[int(rng.integers(len(SCENE_TYPES)))]
    for _ in range(50):
        room = random_room(rng)
        max_objects = int(np.clip(room.area / 2.2, 6, 20))
        for _ in range(4):
            # The plan has spares in case some do not fit; dropping the last placed keeps ids 0..n-1.
            objects = place_objects(room, plan(scene_type, rng, max_objects), rng)[:max_objects]
            if layout_ok(objects):
                return scene_type, room, objects
    raise RuntimeError(f"could not furnish a {scene_type!r} room")  # never seen; would be a bug


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
