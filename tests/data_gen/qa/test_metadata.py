"""Scene metadata from scans built in the test: objects, room area, first appearance, rejections."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

from data_gen.qa.config import QAConfig
from data_gen.qa.metadata import SceneMetadata, footprints, room_geometry, scene_metadata, scene_objects
from data_gen.qa.visibility import visibility_frame_ids, visible_points
from data_gen.scans.label_table import normalise_label
from data_gen.scans.scan import Instance, ScanError
from tests.data_gen.qa.qa_scenes import (
    MeshBuilder,
    box_quads,
    camera_pose,
    furnished_room,
    intrinsic,
    l_shaped_floor_scan,
    make_scan,
    room_outline_quads,
    turning_scan,
)

CFG = QAConfig()


@pytest.fixture(scope="module")
def room_meta() -> SceneMetadata:
    return scene_metadata(furnished_room(), CFG)


def test_objects_boxes_and_counts(room_meta):
    assert room_meta.counts == {
        "closet": 1,
        "chair": 2,
        "lamp": 1,
        "sofa": 1,
        "table": 1,
    }  # walls etc. excluded
    assert [o.object_id for o in room_meta.objects] == [10, 11, 12, 13, 14, 15]
    table = room_meta.object(12)
    np.testing.assert_allclose(table.box.center, [2.5, 2.0, 0.375], atol=1e-6)
    np.testing.assert_allclose(sorted(table.box.extents, reverse=True), [1.6, 0.8, 0.75], atol=1e-6)
    assert [o.category for o in room_meta.unique_objects()] == ["closet", "lamp", "sofa", "table"]
    assert room_meta.distance(room_meta.object(10), table) == pytest.approx(np.hypot(0.45, 0.35), abs=1e-6)


def test_room_area_and_centre_of_the_rectangle(room_meta):
    assert room_meta.room_area == pytest.approx(20.0, rel=0.02)
    np.testing.assert_allclose(room_meta.room_center[:2], [2.5, 2.0], atol=0.05)
    assert room_meta.floor_z == pytest.approx(0.0)


def test_l_shaped_room_is_not_its_bounding_box():
    scan = l_shaped_floor_scan()
    _, area, centre, _ = room_geometry(scan, footprints(scan, scene_objects(scan, CFG)), CFG)
    assert area == pytest.approx(16.0, rel=0.02)  # the bounding box would be 20
    # Area centroid of [0,5]x[0,2] (10 m^2 at (2.5, 1)) and [0,3]x[2,4] (6 m^2 at (1.5, 3)).
    np.testing.assert_allclose(centre[:2], [(10 * 2.5 + 6 * 1.5) / 16, (10 * 1 + 6 * 3) / 16], atol=0.05)


def test_footprints_fill_the_floor_hole_under_furniture():
    # Floor missing under a 2 x 1.3 m bed, as in a real scan: footprints restore the area.
    mesh = MeshBuilder(step=0.1)
    mesh.add(
        [((0, 0, 0), (5, 0, 0), (0, 2.5, 0)), ((0, 3.8, 0), (5, 0, 0), (0, 0.2, 0)),
         ((0, 2.5, 0), (0.5, 0, 0), (0, 1.3, 0)), ((2.5, 2.5, 0), (2.5, 0, 0), (0, 1.3, 0))],
        "floor", 0,
    )  # fmt: skip
    mesh.add(room_outline_quads([(0, 0), (5, 0), (5, 4), (0, 4)], 2.5), "wall", 1)
    mesh.add(box_quads((0.5, 2.5, 0.0), (2.5, 3.8, 0.6))[1:], "bed", 10)  # scanned: no bottom face
    k = intrinsic(8, 6, 60.0)
    scan = make_scan("scene0704_00", mesh, camera_pose((1, 1, 1), 0)[None], [np.zeros((6, 8), np.float32)], k)
    objects = footprints(scan, scene_objects(scan, CFG))
    assert room_geometry(scan, objects, CFG)[1] == pytest.approx(20.0, rel=0.02)
    no_footprints = CFG.model_copy(update={"footprint_max_height": -1.0})
    assert room_geometry(scan, objects, no_footprints)[1] == pytest.approx(20.0 - 2.6, rel=0.02)


def test_metadata_round_trips_through_json(room_meta):
    d = json.loads(json.dumps(room_meta.to_dict()))
    back = SceneMetadata.from_dict(d)
    assert back == room_meta
    assert d["counts"]["chair"] == 2 and max(d["objects"][0]["box"]["extents"]) == pytest.approx(0.9)


def test_labels_are_normalised_mapped_and_structure_excluded():
    assert normalise_label("  Office_Chair ") == "office chair"
    scan = furnished_room(num_frames=2)
    scan.instances[6] = Instance(10, "Office  Chair", scan.instances[6].vertex_ids)  # the first chair
    cats = [o.category for o, _ in scene_objects(scan, CFG)]
    assert cats[0] == "chair" and "wall" not in cats and "floor" not in cats  # office chair -> chair
    open_cats = [o.category for o, _ in scene_objects(scan, QAConfig(vocabulary="open"))]
    assert open_cats == cats  # structure stays out in the open vocabulary too


# --- first appearance ------------------------------------------------------------------------------


def test_first_appearance_along_a_known_trajectory():
    meta = scene_metadata(turning_scan(fps=2.0), CFG)
    got = {c: (a.frame, a.time_s) for c, a in meta.first_appearance.items()}
    assert got == {"chair": (0, 0.0), "table": (6, 3.0), "sofa": (12, 6.0), "lamp": (18, 9.0)}


def test_occluded_object_never_appears():
    # A 0.8 m closet 1.2 m from the camera hides the table behind it in every frame.
    c = np.array([3.0, 3.0]) + 1.2 * np.array([np.cos(np.radians(112.5)), np.sin(np.radians(112.5))])
    closet = [((c[0] - 0.4, c[1] - 0.4, 0.0), (c[0] + 0.4, c[1] + 0.4, 1.0))]
    meta = scene_metadata(turning_scan(extra={"closet": closet}), CFG)
    assert "table" not in meta.first_appearance
    assert meta.first_appearance["closet"].frame <= 6
    assert meta.counts["table"] == 1  # still an object, just never seen


class DepthReads:
    """A scan's frames, recording which depth images are decoded."""

    def __init__(self, frames):
        self.frames, self.read = frames, []
        self.ids, self.skipped = frames.ids, frames.skipped

    def pose(self, i):
        return self.frames.pose(i)

    def depth(self, i):
        self.read.append(i)
        return self.frames.depth(i)

    def __len__(self):
        return len(self.frames)


def test_frames_where_nothing_unseen_is_in_view_are_not_decoded():
    """The hidden table keeps the walk going to the last frame, but once the lamp is seen (frame
    18) the camera turns away from the table (frames 19-23 face 285-345 degrees, the table stands
    at 112.5): those depth images are never decoded, and the appearances are the same."""
    c = np.array([3.0, 3.0]) + 1.2 * np.array([np.cos(np.radians(112.5)), np.sin(np.radians(112.5))])
    scan = turning_scan(extra={"closet": [((c[0] - 0.4, c[1] - 0.4, 0.0), (c[0] + 0.4, c[1] + 0.4, 1.0))]})
    frames = DepthReads(scan.frames)
    meta = scene_metadata(dataclasses.replace(scan, frames=frames), QAConfig(visibility_step_s=0.0))
    assert meta.first_appearance == scene_metadata(scan, QAConfig(visibility_step_s=0.0)).first_appearance
    assert {c: a.frame for c, a in meta.first_appearance.items()} == {"chair": 0, "closet": 5, "sofa": 12, "lamp": 18}
    assert 18 in frames.read and not set(range(19, 24)) & set(frames.read)


def test_visibility_frame_ids_bucket_by_time():
    assert visibility_frame_ids(list(range(48)), 24.0, 0.25) == list(range(0, 48, 6))
    assert visibility_frame_ids([1, 2, 3, 7, 13], 24.0, 0.25) == [1, 7, 13]
    assert visibility_frame_ids([1, 2, 3], 24.0, 0.0) == [1, 2, 3]


def test_visible_points_depth_test():
    k = intrinsic(80, 60, 60.0)
    pose = camera_pose((0.0, 0.0, 0.0), 0.0)  # looking along +x
    depth = np.full((60, 80), 2.0, np.float32)
    depth[:, :5] = 0.0  # no measurement on the left edge
    pts = np.array([
        [2.0, 0.0, 0.0],  # on the surface: seen
        [1.0, 0.0, 0.0],  # in front of the surface (1 m off): rejected
        [3.0, 0.0, 0.0],  # behind the surface: occluded
        [-2.0, 0.0, 0.0],  # behind the camera
        [2.0, 5.0, 0.0],  # outside the image
        [2.0, 1.1, 0.0],  # left edge, no depth there
    ])  # fmt: skip
    seen = visible_points(pts, pose, k, depth, tolerance=0.1, near=0.1)
    assert seen.tolist() == [True, False, False, False, False, False]


# --- rejected scenes -------------------------------------------------------------------------------


def test_scene_without_objects_is_rejected():
    scan = furnished_room(num_frames=2, furniture={})
    with pytest.raises(ScanError, match="no annotated object"):
        scene_metadata(scan, CFG)


def test_scene_without_usable_frames_is_rejected():
    scan = furnished_room(num_frames=2)
    scan.frames.poses[:] = -np.inf
    with pytest.raises(ScanError, match="no usable frame"):
        scene_metadata(scan, CFG)


def test_degenerate_room_is_rejected():
    mesh = MeshBuilder(step=0.05)
    mesh.add([((0, 0, 0), (0.5, 0, 0), (0, 0.5, 0))], "floor", 0)
    mesh.add_box(((0.1, 0.1, 0.3), (0.2, 0.2, 0.4)), "clock", 10)  # not standing on the floor
    k = intrinsic(8, 6, 60.0)
    scan = make_scan("scene0705_00", mesh, camera_pose((1, 1, 1), 0)[None], [np.zeros((6, 8), np.float32)], k)
    with pytest.raises(ScanError, match="degenerate room"):
        scene_metadata(scan, CFG)


def test_instance_with_vertex_ids_outside_the_mesh_is_an_error():
    scan = furnished_room(num_frames=2)
    scan.instances.append(Instance(99, "desk", np.array([0, 1, 10**9])))
    with pytest.raises(ScanError, match="outside the mesh"):
        scene_objects(scan, CFG)


def test_interior_thinning_keeps_the_alpha_shape_area(monkeypatch):
    # floor_points keeps one point per 1/(2 alpha) cell deep inside the floor; the alpha shape,
    # notches and holes included, must come out as from all the points.
    import data_gen.qa.metadata as metadata
    from data_gen.qa.geometry import alpha_shape_area

    rng = np.random.default_rng(0)
    clouds = []
    for scan in (furnished_room(num_frames=2), l_shaped_floor_scan()):
        objects = footprints(scan, scene_objects(scan, CFG))
        with monkeypatch.context() as m:
            m.setattr(metadata, "_alpha_support", lambda pts, alpha: np.arange(len(pts)))
            clouds.append(metadata.floor_points(scan, objects, 0.0, CFG))
    for density in (60, 400, 1500):  # points per m^2: sparse to denser than the floor sampling
        pts = rng.uniform(0, 1, (int(density * 12), 2)) * [4.0, 3.0]
        for centre, radius in ((rng.uniform(0, 3, 2), 0.45), (rng.uniform(0, 3, 2), 0.12)):  # holes
            pts = pts[np.hypot(*(pts - centre).T) > radius]
        pts = pts[~((pts[:, 0] > 2.5) & (pts[:, 1] > 1.8))]  # a notch
        clouds.append(pts[metadata._first_in_cell(pts, CFG.floor_sample_spacing / 2)])
    for pts in clouds:
        kept = pts[metadata._alpha_support(pts, CFG.alpha)]
        full_area, full_centre = alpha_shape_area(pts, CFG.alpha)
        area, centre = alpha_shape_area(kept, CFG.alpha)
        assert area == pytest.approx(full_area, rel=1e-12, abs=1e-12)
        np.testing.assert_allclose(centre, full_centre, atol=1e-9)
    assert len(clouds[0][metadata._alpha_support(clouds[0], CFG.alpha)]) < 0.5 * len(clouds[0])


def test_faces_of_all_instances_at_once_match_one_by_one():
    from data_gen.qa.metadata import _instance_faces, _instances_faces

    scan = furnished_room(num_frames=2)
    vids = [v for _, v in scene_objects(scan, CFG)]
    for groups in (vids, [*vids, vids[0][:5]]):  # disjoint; then a vertex in two instances
        got = _instances_faces(scan, groups)
        assert len(got) == len(groups)
        for g, faces in zip(groups, got, strict=True):
            np.testing.assert_array_equal(faces, _instance_faces(scan, g))
    assert _instances_faces(scan, []) == []


def test_fragments_are_no_objects():
    """A 0.22 m "chair" beside 0.9 m chairs is annotation debris (VSI-Bench leaves such fragments
    out of its counts); a single instance, or an oversized outlier, is never a fragment."""
    from data_gen.qa.geometry import OrientedBox
    from data_gen.qa.metadata import ObjectMeta, without_fragments
    from data_gen.qa.obb import prism_box

    def obj(oid: int, category: str, longest: float) -> tuple[ObjectMeta, np.ndarray]:
        return ObjectMeta(oid, category, prism_box(OrientedBox((0, 0, 0), (longest, 0.1, 0.1), 0.0)), 50), np.zeros(1)

    objects = [obj(1, "chair", 0.90), obj(2, "chair", 0.92), obj(3, "chair", 0.22), obj(4, "bed", 0.05),
               obj(5, "table", 1.2), obj(6, "table", 1.2), obj(7, "table", 3.0)]
    kept = [o.object_id for o, _ in without_fragments(objects, 1 / 3)]
    assert kept == [1, 2, 4, 5, 6, 7]
    assert [o.object_id for o, _ in without_fragments(objects, 0.0)] == [1, 2, 3, 4, 5, 6, 7]
