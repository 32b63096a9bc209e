"""The synthetic scene generator: determinism, geometry consistency, layout rules, camera safety."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from scipy.spatial import cKDTree

from data_gen.scans.label_table import FILE_NAME
from data_gen.scans.scan import Scan
from data_gen.synthetic.furniture import CATALOGUE, FLOOR, ON, OPENING
from data_gen.synthetic.labels import RAW_LABELS, question_category
from data_gen.synthetic.room import Room, rect_distance, rotation2
from data_gen.synthetic.scenes import SCENE_TYPES, generate_scene, scene_layout, scene_seed, synthesize_scans

SMALL = {"num_frames": 8, "width": 160, "height": 120}
ROOM_LABELS = {"wall", "floor", "ceiling"}
STRUCTURE = ROOM_LABELS | {"shower walls"}
INFO_KEYS = ("colorWidth colorHeight depthWidth depthHeight fx_color fy_color mx_color my_color fx_depth "
             "fy_depth mx_depth my_depth numColorFrames numDepthFrames sceneType axisAlignment").split()


def _first_seed(predicate, limit: int = 200) -> int:
    return next(s for s in range(limit) if predicate(scene_layout(s)[1]))


L_SEED = _first_seed(lambda room: room.notch is not None)
RECT_SEED = _first_seed(lambda room: room.notch is None)


@pytest.fixture(scope="module")
def scenes() -> dict[int, tuple[Scan, list]]:
    return {seed: generate_scene(f"scene{seed:04d}_00", seed, **SMALL) for seed in (L_SEED, RECT_SEED)}


# ----- helpers: distance from points to the mesh's triangles -----


def _segment_distance(p: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    ab = b - a
    t = np.clip(np.einsum("...k,...k", p - a, ab) / np.maximum(np.einsum("...k,...k", ab, ab), 1e-12), 0, 1)
    return np.linalg.norm(p - (a + t[..., None] * ab), axis=-1)


def mesh_distance(vertices: np.ndarray, faces: np.ndarray, points: np.ndarray, k: int = 12) -> np.ndarray:
    """[N] distance from points [N, 3] to the nearest of the k triangles with the closest centroids.

    An upper bound of the true distance (the nearest triangle might not be among the k), so a
    "within 2 cm" check based on it can only be stricter than the exact one.
    """
    tri = vertices[faces].astype(np.float64)  # [F, 3, 3]
    _, idx = cKDTree(tri.mean(axis=1)).query(points, k=k)  # [N, k]
    a, b, c = tri[idx, 0], tri[idx, 1], tri[idx, 2]  # [N, k, 3] each
    p = np.broadcast_to(points[:, None], a.shape)
    n = np.cross(b - a, c - a)
    n /= np.maximum(np.linalg.norm(n, axis=-1, keepdims=True), 1e-12)
    plane = np.einsum("nkc,nkc->nk", p - a, n)  # signed distance to the triangle's plane
    q = p - plane[..., None] * n  # projection onto the plane
    inside = np.ones(plane.shape, dtype=bool)
    for u, v in ((a, b), (b, c), (c, a)):
        inside &= np.einsum("nkc,nkc->nk", np.cross(v - u, q - u), n) >= 0
    edges = np.minimum.reduce([_segment_distance(p, u, v) for u, v in ((a, b), (b, c), (c, a))])
    return np.where(inside, np.abs(plane), edges).min(axis=1)


def backproject(scan: Scan, frame: int, n: int, rng: np.random.Generator) -> np.ndarray:
    """[n, 3] aligned-frame points of n random valid depth pixels of one frame."""
    depth = scan.frames.depth(frame)
    v, u = np.nonzero(depth > 0)
    pick = rng.choice(len(u), size=min(n, len(u)), replace=False)
    u, v, z = u[pick], v[pick], depth[v[pick], u[pick]].astype(np.float64)
    k = scan.intrinsic_depth
    cam = np.stack([(u - k[0, 2]) / k[0, 0] * z, (v - k[1, 2]) / k[1, 1] * z, z, np.ones_like(z)], axis=1)
    return (cam @ scan.frames.pose(frame).T)[:, :3]


def assert_depth_on_mesh(scan: Scan) -> None:
    for i in scan.frames.ids:  # a closed room: every pixel sees some surface in front of the camera
        assert (scan.frames.depth(i) > 0.05).all(), f"frame {i} has pixels without depth"
    rng = np.random.default_rng(0)
    points = np.concatenate([backproject(scan, i, 400, rng) for i in scan.frames.ids])
    dist = mesh_distance(scan.vertices, scan.faces, points)
    assert np.mean(dist < 0.02) >= 0.95, f"only {np.mean(dist < 0.02):.1%} of depth points on the mesh"


def _ids_labels(instances: list) -> list[tuple[int, str]]:
    return [(i.object_id, i.label) for i in instances]


# ----- tests -----


def test_same_seed_same_scene(scenes):
    scan, objects = scenes[RECT_SEED]
    again, objects2 = generate_scene(scan.name, RECT_SEED, **SMALL)
    for field in ("axis_alignment", "vertices", "vertex_colors", "faces", "seg_indices", "intrinsic_color"):
        np.testing.assert_array_equal(getattr(scan, field), getattr(again, field), err_msg=field)
    assert scan.info == again.info and scan.scene_type == again.scene_type
    for i in range(scan.num_frames):
        np.testing.assert_array_equal(scan.frames.pose(i), again.frames.pose(i))
        np.testing.assert_array_equal(scan.frames.color(i), again.frames.color(i))
        np.testing.assert_array_equal(scan.frames.depth(i), again.frames.depth(i))
    assert _ids_labels(scan.instances) == _ids_labels(again.instances)
    for a, b in zip(objects, objects2, strict=True):
        assert (a.object_id, a.label, a.yaw) == (b.object_id, b.label, b.yaw)
        np.testing.assert_array_equal(a.center, b.center)
    other, _ = generate_scene(scan.name, RECT_SEED + 1, **SMALL)
    assert other.vertices.shape != scan.vertices.shape or not np.array_equal(other.vertices, scan.vertices)


def test_scan_fields(scenes):
    scan, _ = scenes[RECT_SEED]
    assert scan.dataset == "synthetic" and scan.fps == 24 and scan.num_frames == 8
    assert scan.color_size == scan.depth_size == (160, 120)
    assert all(key in scan.info for key in INFO_KEYS)
    text = np.array([float(v) for v in scan.info["axisAlignment"].split()]).reshape(4, 4)
    np.testing.assert_array_equal(text, scan.axis_alignment)
    assert not np.allclose(scan.axis_alignment, np.eye(4))
    np.testing.assert_allclose(scan.axis_alignment[2, :3], [0, 0, 1], atol=1e-6)  # rotation about z only
    k = scan.intrinsic_color
    np.testing.assert_array_equal(k, scan.intrinsic_depth)
    assert (k[0, 2], k[1, 2]) == (79.5, 59.5)
    hfov = np.degrees(2 * np.arctan(80 / k[0, 0]))
    assert 60 <= hfov <= 70
    assert scan.frames.color(0).dtype == np.uint8 and scan.frames.color(0).shape == (120, 160, 3)
    depth = scan.frames.depth(0)
    assert depth.dtype == np.float32 and depth.shape == (120, 160) and (depth > 0).all()
    np.testing.assert_array_equal(np.rint(depth * 1000).astype(np.uint16) / np.float32(1000), depth)


def test_mesh_is_dense(scenes):
    scan, _ = scenes[L_SEED]
    tri = scan.vertices[scan.faces]  # [F, 3, 3]
    edges = np.linalg.norm(tri - np.roll(tri, 1, axis=1), axis=-1)
    assert edges.max() < 0.1 * np.sqrt(2) + 1e-4
    assert len(np.unique(scan.seg_indices)) > 20


@pytest.mark.parametrize("which", ["L", "rect"])
def test_depth_lands_on_mesh(scenes, which):
    assert_depth_on_mesh(scenes[L_SEED if which == "L" else RECT_SEED][0])


def test_write_read_roundtrip_keeps_depth_on_mesh(scenes, tmp_path):
    from data_gen.scans.scannet import read_scan
    from data_gen.scans.scannet_write import write_scan

    scan, _ = scenes[L_SEED]
    back = read_scan(write_scan(scan, tmp_path / scan.name))
    np.testing.assert_allclose(back.vertices, scan.vertices, atol=1e-4)  # aligned exactly once
    np.testing.assert_allclose(back.frames.pose(3), scan.frames.pose(3), atol=1e-5)
    assert _ids_labels(back.instances) == _ids_labels(scan.instances)
    assert back.dataset == "synthetic" and back.scene_type == scan.scene_type
    assert_depth_on_mesh(back)


def test_instances_match_objects(scenes):
    for scan, objects in scenes.values():
        by_id = {i.object_id: i for i in scan.instances}
        assert len(by_id) == len(scan.instances)
        furniture = [i for i in scan.instances if i.object_id < len(objects)]
        assert Counter(i.label for i in furniture) == Counter(o.raw_label for o in objects)
        assert {i.label for i in scan.instances[len(objects):]} <= STRUCTURE
        assert {i.label for i in scan.instances} >= {"floor", "ceiling"}
        counts = Counter(question_category(o.label) for o in objects) - Counter({None: len(objects)})
        assert max(counts.values()) > 1 and min(counts.values()) == 1
        assert 6 <= sum(o.mount == FLOOR for o in objects) <= 20
        for o in objects:
            inst = by_id[o.object_id]
            assert inst.label == o.raw_label and o.raw_label in dict(RAW_LABELS[o.label])
            # The instance's vertices span exactly the object's box, in the object's own frame.
            c, s = np.cos(o.yaw), np.sin(o.yaw)
            rel = scan.vertices[inst.vertex_ids].astype(np.float64) - o.center
            local = np.stack([c * rel[:, 0] + s * rel[:, 1], -s * rel[:, 0] + c * rel[:, 1], rel[:, 2]], 1)
            np.testing.assert_allclose(local.max(0) - local.min(0), o.size, atol=2e-3)
            np.testing.assert_allclose((local.max(0) + local.min(0)) / 2, 0, atol=2e-3)


def _footprint_points(o, step: float = 0.05) -> np.ndarray:
    """[P, 2] points covering an object's footprint (boundary included)."""
    gx = np.linspace(-o.half[0], o.half[0], max(2, int(o.size[0] / step) + 1))
    gy = np.linspace(-o.half[1], o.half[1], max(2, int(o.size[1] / step) + 1))
    local = np.stack(np.meshgrid(gx, gy), -1).reshape(-1, 2)
    c, s = np.cos(o.yaw), np.sin(o.yaw)
    return local @ np.array([[c, s], [-s, c]]) + o.center[:2]


def _stack(o, objects) -> set[int]:
    """Ids of what `o` stands on, what that stands on, ..."""
    out = set()
    while o.support >= 0:
        out.add(o.support)
        o = objects[o.support]
    return out


def _heights_overlap(a, b) -> bool:
    return a.base < b.top - 1e-6 and b.base < a.top - 1e-6


@pytest.mark.parametrize("seed", range(15))
def test_layout_rules(seed):
    _, room, objects = scene_layout(seed, SCENE_TYPES[seed % len(SCENE_TYPES)])
    for o in objects:
        pts = _footprint_points(o)
        assert room.contains(pts, margin=0.0).all(), f"{o.label} leaves the room"
        assert o.top <= room.height - 0.1
        back = o.center[:2] + rotation2(o.yaw)[:, 1] * o.half[1]  # middle of its back side
        if o.mount == FLOOR:
            assert o.base == pytest.approx(0.0)
        elif o.mount == ON:  # on the top of what it stands on, within its outline, facing its way
            support = objects[o.support]
            top, _, _ = CATALOGUE[support.label].surface(support.size)  # a bed's mattress, a sofa's seat
            assert o.base == pytest.approx(support.base + top) and o.base > 0.1
            assert o.support < o.object_id and o.yaw == support.yaw
            assert (rect_distance(pts, support.center, support.half, support.yaw) < 1e-9).all()
        else:  # in a wall (a door from the floor, a window at sill height) or hung on one
            assert room.clearance(back[None])[0] == pytest.approx(0.0, abs=0.01)
            assert {"door": 0.0 <= o.base < 1e-9, "window": 0.8 <= o.base <= 1.0}.get(o.label, o.base >= 0.8)
        for other in objects:
            stacked = other.object_id in _stack(o, objects) or o.object_id in _stack(other, objects)
            if other.object_id != o.object_id and not stacked and _heights_overlap(o, other):
                assert (rect_distance(pts, other.center, other.half, other.yaw) > 0).all(), \
                    f"{o.label} {o.object_id} overlaps {other.label} {other.object_id}"
    for door in (o for o in objects if o.label == "door"):  # the floor in front of a door stays free
        along, front = rotation2(door.yaw)[:, 0], -rotation2(door.yaw)[:, 1]
        a, d = np.meshgrid(np.linspace(-door.half[0], door.half[0], 10), np.linspace(0.05, 0.85, 9))
        strip = door.center[:2] + front * door.half[1] + a.reshape(-1, 1) * along + d.reshape(-1, 1) * front
        for o in objects:
            if o.mount == FLOOR:
                assert (rect_distance(strip, o.center, o.half, o.yaw) > 0).all(), f"{o.label} blocks a door"


def test_openings_and_small_things_are_mounted_as_in_real_rooms():
    layouts = [scene_layout(scene_seed(0, i), SCENE_TYPES[i % len(SCENE_TYPES)])[2] for i in range(10)]
    objects = [o for layout in layouts for o in layout]
    for label, mount in (("door", OPENING), ("window", OPENING), ("clock", "wall"), ("monitor", ON)):
        assert CATALOGUE[label].mount == mount
    by_label = {label: [o for o in objects if o.label == label] for label in ("door", "window", "monitor", "pillow")}
    assert all(by_label.values()), "every kind occurs in ten rooms"
    for door in by_label["door"]:  # real-world sizes: about 0.9 x 2 m, a few centimetres thick
        assert 0.85 <= door.size[0] <= 0.95 and 1.9 <= door.size[2] <= 2.15 and door.size[1] < 0.06
    layout_of = {id(o): layout for layout in layouts for o in layout}
    for monitor in by_label["monitor"]:
        assert layout_of[id(monitor)][monitor.support].label in ("desk", "table")
    for pillow in by_label["pillow"]:
        assert layout_of[id(pillow)][pillow.support].label in ("mattress", "bed", "sofa")


def test_scene_layout_matches_generate_scene(scenes):
    scan, objects = scenes[L_SEED]
    scene_type, _, layout_objects = scene_layout(L_SEED)
    assert scene_type == scan.scene_type
    assert [(o.label, tuple(o.center)) for o in objects] == \
        [(o.label, tuple(o.center)) for o in layout_objects]


@pytest.mark.parametrize("seed", range(6))
def test_camera_stays_clear(seed):
    scan, objects = generate_scene("scene", seed, num_frames=24, width=32, height=24)
    _, room, _ = scene_layout(seed)
    xyz = np.array([scan.frames.pose(i)[:3, 3] for i in range(scan.num_frames)])
    assert room.contains(xyz[:, :2], margin=0.3).all()
    assert ((xyz[:, 2] > 1.3) & (xyz[:, 2] < 1.7)).all()
    for o in objects:
        assert (rect_distance(xyz[:, :2], o.center, o.half, o.yaw) > 0.25).all(), o.label
    rot = np.array([scan.frames.pose(i)[:3, :3] for i in range(scan.num_frames)])
    np.testing.assert_allclose(rot @ rot.transpose(0, 2, 1), np.tile(np.eye(3), (len(rot), 1, 1)), atol=1e-9)
    assert (rot[:, 2, 2] < 0).all()  # optical axis (camera z) tilts down
    assert (np.abs(rot[:, 2, 0]) < 1e-9).all()  # no roll: camera x stays horizontal


def _seen_objects(scan: Scan, objects: list) -> set[int]:
    """Objects with some vertex that projects into some frame where the depth agrees (like downstream)."""
    k = scan.intrinsic_depth
    w, h = scan.depth_size
    seen = set()
    for i in scan.frames.ids:
        world_to_cam = np.linalg.inv(scan.frames.pose(i))
        depth = scan.frames.depth(i)
        for o in objects:
            if o.object_id in seen:
                continue
            inst = next(x for x in scan.instances if x.object_id == o.object_id)
            p = scan.vertices[inst.vertex_ids[::4]].astype(np.float64)
            p = p @ world_to_cam[:3, :3].T + world_to_cam[:3, 3]  # [P, 3] camera frame
            p = p[p[:, 2] > 0.05]
            u = np.rint(k[0, 0] * p[:, 0] / p[:, 2] + k[0, 2]).astype(int)
            v = np.rint(k[1, 1] * p[:, 1] / p[:, 2] + k[1, 2]).astype(int)
            ok = (u >= 0) & (u < w) & (v >= 0) & (v < h)
            if (np.abs(depth[v[ok], u[ok]] - p[ok, 2]) < 0.05).sum() >= 5:
                seen.add(o.object_id)
    return seen


def test_walk_sees_most_of_the_room():
    fractions = []
    for seed in range(4):
        scan, objects = generate_scene("scene", seed, num_frames=96, width=64, height=48)
        fractions.append(len(_seen_objects(scan, objects)) / len(objects))
    assert min(fractions) >= 0.6 and np.mean(fractions) >= 0.85, fractions


def test_l_shaped_rooms_occur_and_have_smaller_floor(scenes):
    shapes = [scene_layout(s)[1].notch is not None for s in range(40)]
    assert 0.05 < np.mean(shapes) < 0.7
    scan, _ = scenes[L_SEED]
    room: Room = scene_layout(L_SEED)[1]
    floor = np.concatenate([i.vertex_ids for i in scan.instances if i.label == "floor"])
    on_floor = np.isin(scan.faces, floor).all(axis=1)
    tri = scan.vertices[scan.faces[on_floor]].astype(np.float64)
    area = np.linalg.norm(np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0]), axis=1).sum() / 2
    assert area == pytest.approx(room.area, rel=1e-4)
    lo, hi = scan.vertices[floor].min(0), scan.vertices[floor].max(0)
    assert area < 0.9 * (hi[0] - lo[0]) * (hi[1] - lo[1])
    assert np.abs(scan.vertices[floor][:, 2]).max() < 1e-6  # floor at z = 0


def test_large_frames_render():
    scan, _ = generate_scene("scene", 3, num_frames=2, width=640, height=480)
    assert scan.frames.color(1).shape == (480, 640, 3) and scan.frames.depth(1).shape == (480, 640)
    assert scan.intrinsic_color[0, 2] == 319.5
    assert_depth_on_mesh(scan)


def test_scannet_sized_streams_keep_colour_and_depth_on_the_mesh():
    """ScanNet's shape at a small scale: depth at its own size and intrinsics (as 640x480 beside
    1296x968 colour), colour ray-cast at half size and enlarged, frames rendered when read (equal to
    the in-memory ones), a denser mesh."""
    sizes = {"num_frames": 3, "width": 192, "height": 144, "depth_size": (96, 72), "color_scale": 2}
    scan, _ = generate_scene("scene", RECT_SEED, **sizes)
    streamed, _ = generate_scene("scene", RECT_SEED, stream=True, **sizes)
    full, _ = generate_scene("scene", RECT_SEED, num_frames=3, width=192, height=144)
    assert scan.color_size == (192, 144) and scan.depth_size == (96, 72)
    assert scan.info["depthWidth"] == "96" and scan.info["colorWidth"] == "192"
    assert abs(scan.intrinsic_depth[0, 0] * 2 - scan.intrinsic_color[0, 0]) < 0.02  # one field of view
    assert_depth_on_mesh(scan)  # depth back-projected with the depth intrinsics lands on the mesh
    for i in scan.frames.ids:
        assert scan.frames.color(i).shape == (144, 192, 3) and scan.frames.depth(i).shape == (72, 96)
        np.testing.assert_array_equal(streamed.frames.color(i), scan.frames.color(i))
        np.testing.assert_array_equal(streamed.frames.depth(i), scan.frames.depth(i))
        # enlarged half-size colour shows what a full-size render shows, softer
        diff = np.abs(scan.frames.color(i).astype(int) - full.frames.color(i).astype(int))
        assert diff.mean() < 6, diff.mean()
    one, _ = generate_scene("scene", RECT_SEED, num_frames=2, width=48, height=36, stream=True)
    plain, _ = generate_scene("scene", RECT_SEED, num_frames=2, width=48, height=36)
    for i in plain.frames.ids:  # one size: the streamed frames are render_frames' own pixels
        np.testing.assert_array_equal(one.frames.color(i), plain.frames.color(i))
        np.testing.assert_array_equal(one.frames.depth(i), plain.frames.depth(i))
    dense, _ = generate_scene("scene", RECT_SEED, num_frames=2, width=48, height=36, mesh_step_scale=0.5)
    assert len(dense.vertices) > 3 * len(plain.vertices)
    assert_depth_on_mesh(dense)


def test_synthesize_scans_same_bytes(tmp_path):
    kwargs = {"num_frames": 3, "width": 48, "height": 36}
    first = synthesize_scans(tmp_path / "a", 2, seed=7, **kwargs)
    second = synthesize_scans(tmp_path / "b", 2, seed=7, **kwargs)
    assert [p.name for p in first] == ["scene0000_00", "scene0001_00"]
    assert first[0] == tmp_path / "a" / "scans" / "scene0000_00"
    for a, b in zip(first, second, strict=True):
        files_a = sorted(p.relative_to(a) for p in a.rglob("*") if p.is_file())
        files_b = sorted(p.relative_to(b) for p in b.rglob("*") if p.is_file())
        assert files_a == files_b and len(files_a) > 8
        for rel in files_a:
            assert (a / rel).read_bytes() == (b / rel).read_bytes(), rel
    table = tmp_path / "a" / "scans" / FILE_NAME  # ScanNet's label table for the raw labels, beside the scenes
    assert table.read_bytes() == (tmp_path / "b" / "scans" / FILE_NAME).read_bytes()
    assert scene_seed(7, 0) != scene_seed(7, 1) and scene_seed(7, 0) != scene_seed(8, 0)


def test_synthesize_scans_sens(tmp_path):
    from data_gen.scans.scannet import read_scan

    (path,) = synthesize_scans(tmp_path, 1, seed=1, num_frames=2, width=48, height=36, sens=True)
    assert isinstance(path, Path) and (path / f"{path.name}.sens").exists()
    back = read_scan(path)
    assert back.num_frames == 2 and back.dataset == "synthetic"
