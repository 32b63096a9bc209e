"""Settings of the per-scene QA generation: metadata, question filters, frame selection.

Every default says where it comes from: VSI-Bench's generation rules (their public source is
VITA-Group/VLM-3R, `vlm_3r_data_process/src/tasks/vsibench/` and `src/metadata_generation/`),
measured properties of VSI-Bench's own questions (tests/data_gen/qa/test_vsibench_fidelity.py), the
Spatial-MLLM paper (16 of 128 frames, voxel = shortest extent / 20), or "ours" for choices the
benchmark has no counterpart to.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from data_gen.schema import QUESTION_TYPES

# Per-scene caps whose proportions follow the paper's self-made mix (rel. direction 31.6%,
# distances 31.0%, sizes 16.1%, appearance order 15.8%, counting 5.5%) at ~46 questions a scene
# (~70k questions over ScanNet's ~1.5k train scenes). Scenes with fewer objects yield fewer.
DEFAULT_MAX_PER_TYPE: dict[str, int] = {
    "object_counting": 3,
    "object_size_estimation": 6,
    "room_size_estimation": 1,
    "object_abs_distance": 7,
    "object_rel_distance": 7,
    "object_rel_direction_easy": 5,
    "object_rel_direction_medium": 5,
    "object_rel_direction_hard": 5,
    "obj_appearance_order": 7,
    "route_planning": 3,
    # Camera motion (beyond VSI-Bench): generated, but kept only by a build whose data.build.mix
    # gives the camera_motion group a share (none by default).
    "camera_displacement": 3,
    "camera_movement_direction": 3,
    "camera_obj_abs_distance": 3,
    "camera_obj_rel_distance": 3,
    "obj_obj_rel_position": 3,
}

# Annotation catch-alls: labels that name no kind of thing (kept out of the open vocabulary).
CATCH_ALL_LABELS: tuple[str, ...] = (
    "object", "objects", "otherstructure", "otherfurniture", "otherprop", "unknown", "remove", "stuff",
)  # fmt: skip


class QAConfig(BaseModel):
    """How one scene becomes question-answer records."""

    # Unknown keys fail loudly (a typo must not silently fall back to a default).
    model_config = ConfigDict(extra="forbid", validate_assignment=True, use_attribute_docstrings=True)

    # --- frames -------------------------------------------------------------------------------
    num_frames: int = Field(16, ge=1)
    """Frames per record (frame_indices and uniform_indices), count. Paper: 16."""
    num_candidates: int = Field(128, ge=1)
    """Evenly spaced candidate frames that space-aware selection chooses from, count. Paper: 128."""
    depth_stride: int = Field(4, ge=1)
    """Keep every n-th depth pixel in x and y when back-projecting candidate frames, pixels. Ours
    (a speed choice; the paper does not say)."""
    conf_threshold: float = Field(0.1, ge=0.0)
    """Frame selection keeps points with confidence above this (and >= the median), unitless. Ours;
    a scan's true depth has confidence 1 everywhere, so it matters for video (VGGT's depth) only."""
    voxel_divisions: int = Field(20, ge=1)
    """Voxel edge = shortest extent of the kept points' bounding box / this, count. Paper: 20."""
    pad_frames: bool = True
    """When greedy coverage stops early (no frame adds a voxel), fill frame_indices up to
    min(num_frames, candidates) with evenly spaced unused candidates, so both index lists have
    the same length. False keeps only the greedy picks (and cuts uniform_indices to match). Ours."""
    fps: float | None = Field(None, gt=0)
    """Video frame rate for appearance times, frames/s. None = the scan's own: ScanNet 24, ScanNet++ 30,
    ARKitScenes 10, VSI-Bench's table (utils/trajectory_utils.py)."""

    # --- objects ------------------------------------------------------------------------------
    vocabulary: Literal["vsibench", "open"] = "vsibench"
    """Which categories become objects: `vsibench`, only the benchmark's (ScanNet: its 33, door and
    window included; its metadata's category lists, metadata_generation/ScanNet); `open`, every mapped
    category but structure (wall, floor, ceiling) and `excluded_labels` (ours). See
    data_gen/qa/label_map.yaml."""
    label_map: str | None = None
    """YAML file mapping ScanNet labels to question categories; None = the project's
    data_gen/qa/label_map.yaml (synonyms such as couch -> sofa, and our folding choices)."""
    label_table: str | None = None
    """ScanNet's scannetv2-labels.combined.tsv (raw label -> category, nyu40 class); None = the file
    of that name in the scans folder or the folder above it, when there is one."""
    excluded_labels: list[str] = Field(default_factory=lambda: list(CATCH_ALL_LABELS))
    """Labels (lower case) never kept by the open vocabulary: annotation catch-alls. Ours."""
    boxes: Literal["minimal", "upright"] = "minimal"
    """Object boxes: `minimal`, the minimal oriented 3D box of the instance's vertices as Open3D
    0.18/0.19 computes it (VSI-Bench's, freely tilted); `upright`, a minimal-area floor rectangle
    times the vertical extent. Sizes, distances and direction corners all use these boxes."""
    min_instance_vertices: int = Field(8, ge=1)
    """Raw scans only: instances with fewer mesh vertices are dropped as annotation noise, count.
    Ours: VSI-Bench boxes every instance Open3D can box (at least 4 points that are not coplanar);
    a ScanNet instance under 8 vertices is a stray splinter."""

    # --- room ---------------------------------------------------------------------------------
    floor_percentile: float = Field(1.0, ge=0.0, le=100.0)
    """Floor height = this percentile of the vertex z values, percent (robust to stray points). Ours,
    as is the floor-based room area below: VSI-Bench's room_size is the alpha shape of 10,000
    points drawn with replacement from all of a scan's vertices, walls and furniture included
    (utils/common_utils.py calculate_room_area); meta_info input takes its room_size as given."""
    floor_band: float = Field(0.10, gt=0.0)
    """Mesh faces with every vertex within this of the floor height count as floor, metres. Ours."""
    floor_sample_spacing: float = Field(0.05, gt=0.0)
    """Spacing of the points sampled on floor faces and object footprints, metres. Ours."""
    footprint_max_height: float = 0.30
    """Objects whose box bottom is within this of the floor add their footprint to the floor
    points (real scans have no floor under a bed or sofa), metres. Negative = no footprints. Ours."""
    alpha: float = Field(5.0, gt=0.0)
    """Alpha-shape parameter: keep Delaunay triangles with circumradius < 1/alpha, 1/metres.
    VSI-Bench's: alpha 5 (utils/common_utils.py calculate_room_area)."""
    min_room_area: float = Field(1.0, ge=0.0)
    """A room with a smaller floor area is degenerate and the scene is rejected, square metres. Ours
    (VSI-Bench keeps a failed area as 0.0 and still asks it)."""

    # --- visibility / appearance order -------------------------------------------------------
    visibility_step_s: float = Field(0.25, ge=0.0)
    """Time between the frames tested for visibility, seconds. 0 = every usable frame. Ours, as are
    the visibility settings below: VSI-Bench takes first appearances from 2D instance masks of 32
    evenly spaced frames, any size counting (metadata_generation/ScanNet/scannet_frame_metadata.py);
    we test visibility against depth, which raw scans have and masks need not."""
    visibility_points: int = Field(256, ge=1)
    """Points sampled on each instance's surface for the visibility test, count. Ours."""
    visibility_min_fraction: float = Field(0.1, gt=0.0, le=1.0)
    """An instance is visible in a frame when at least this fraction of its points pass, 0-1. Ours."""
    visibility_depth_tolerance: float = Field(0.10, gt=0.0)
    """A projected point passes when |measured depth - point depth| is below this, metres. Ours."""
    near_plane: float = Field(0.1, ge=0.0)
    """Points closer to the camera than this are not visible, metres. Ours."""

    # --- question filters (VSI-Bench) ---------------------------------------------------------
    max_per_type: dict[str, int] = Field(default_factory=lambda: dict(DEFAULT_MAX_PER_TYPE))
    """Most questions of each type per scene, count: -1 = every valid candidate, 0 disables a type;
    missing types get 0. Defaults in the proportions of the paper's own mix (DEFAULT_MAX_PER_TYPE)."""
    fragment_ratio: float = Field(0.0, ge=0.0, lt=1.0)
    """Raw scans only: an instance whose longest box side is below this share of the median longest
    side of the other instances of its category is a fragment (annotation debris, e.g. a 0.22 m
    "chair" beside 0.9 m ones) and is no object: not counted, never asked about. 0 (default) keeps
    every annotated instance, as VSI-Bench does: its ScanNet metadata makes one box per instance id
    with no size filter (VLM-3R metadata_generation/ScanNet, utils/scannetv2_utils.py
    get_objects_number_and_bbox), and its benchmark counts such debris (object_counts includes the
    0.22 m chair of scene0500_00). Ours, 1/3, is the stricter choice for cleaner labels; it never
    applies to meta_info input (already curated)."""
    abs_distance_min: float = Field(0.2, ge=0.0)
    """Absolute distance: skip pairs whose answer, rounded to 0.1 m, is below this, metres. VSI-Bench's
    generator: `round(d, 1) < 0.2` skips (VLM-3R tasks/vsibench/get_obj_abs_distance_qa.py). Its 347
    ScanNet questions in fact start at 0.4 m, though 46 of the 697 candidate pairs lie in
    [0.2, 0.4): some later selection we cannot see; we keep the script's rule."""
    rel_distance_margin: float = Field(0.10, ge=0.0)
    """Relative distance: reject when the nearest candidate is nearer the anchor than this, or two
    candidate distances differ by this or less, metres. VSI-Bench's rule is 0.15 m on its own
    distances (`min < 0.15`, `|d_i - d_j| <= 0.15`; VLM-3R get_obj_rel_distance_v1_qa.py), which it
    measures between points sampled on a 5 cm grid in each box: they exceed the exact closest-point
    distance we compute by up to a grid step on each box. On exact distances its 259 ScanNet
    questions have gaps down to 0.120 m and nearest candidates down to 0.132 m, so 0.10 keeps them
    all. 0.15 is the stricter choice."""
    rel_distance_margin_large_room: float = Field(0.10, ge=0.0)
    """Relative distance: the margin between candidates in rooms above large_room_area, metres.
    VSI-Bench's four-option generator computes 0.30 for rooms above 40 m^2 but never passes it on
    (get_obj_rel_distance_v1_qa.py; one of its 8 large-room ScanNet questions keeps a 0.25 m gap),
    so the default equals rel_distance_margin."""
    large_room_area: float = Field(40.0, ge=0.0)
    """Rooms above this floor area use the large-room margin, square metres. VSI-Bench's 40
    (`room_size > 40`, get_obj_rel_distance_v1_qa.py)."""
    direction_min_distance: float = Field(0.2, ge=0.0)
    """Relative direction: every pair of the three objects at least this far apart, metres. VSI-Bench's
    rule is 0.30 m on its sampled distances (`d < 0.30` rejects; VLM-3R
    get_obj_rel_direction_v1_qa.py `ambiguous`), which exceed exact closest-point distances by up to
    a 5 cm grid step on each box (see rel_distance_margin): exact distances among its 343 ScanNet
    direction questions go down to 0.235 m, so 0.2 keeps them. 0.3 is the stricter choice."""
    direction_max_distance: float = Field(5.0, gt=0.0)
    """Relative direction: every pair of the three objects at most this far apart, metres (VSI-Bench:
    `d > 5.0` rejects; exact distances are never above its sampled ones)."""
    heading_min_distance: float = Field(0.3, ge=0.0)
    """Camera movement direction and route planning (beyond VSI-Bench, exact geometry): a floor
    displacement, or a start-to-facing-object vector, shorter than this has no direction worth
    asking, metres."""
    camera_rel_distance_margin: float = Field(0.15, ge=0.0)
    """Camera-to-object relative distance (beyond VSI-Bench): reject when the nearest object is nearer
    the camera than this, or two distances differ by this or less, metres (VSI-Bench's relative-
    distance margin as its scripts state it; distances from the camera are exact)."""
    direction_angle_margin: float = Field(10.0, ge=0.0, lt=45.0)
    """Relative direction: discard angles near a bin edge, degrees. Hard (as VSI-Bench) only just
    below an edge: 90 - (angle mod 90) < margin; medium and easy on both sides of every edge.
    VSI-Bench's 10 (get_obj_rel_direction_v1/v2/v3_qa.py; the smallest 90 - (a mod 90) among its
    133 ScanNet hard questions is 10.2)."""
    direction_max_off_corners: int = Field(2, ge=0, le=8)
    """Relative direction: discard a query with more of its 8 box corners than this in another
    bin than its centre, count. VSI-Bench's 2 (`sum(...) > 2`, get_obj_rel_direction_v1_qa.py)."""
    appearance_min_gap_s: float = Field(1.0, ge=0.0)
    """Appearance order: the four first-appearance times, in whole seconds (round(frame / fps), as
    VSI-Bench), must be more than this apart, seconds. VSI-Bench's 1 (`|t_i - t_j| <= 1` rejects,
    get_spatial_temporal_appearance_order_qa.py)."""
    route_cell: float = Field(0.1, gt=0.0)
    """Route planning: cell of the floor grid, metres (at least twice floor_sample_spacing, so that
    the sampled floor faces cover every cell). Ours, as is every route setting: VSI-Bench's routes
    are written by people."""
    route_robot_radius: float = Field(0.25, ge=0.0)
    """Route planning: free space keeps this far from walls and from standing objects (those whose box
    bottom is within footprint_max_height of the floor), metres."""
    route_reach: float = Field(1.0, gt=0.0)
    """Route planning: the start and the destination are the free cells nearest their objects, at
    most this far from the object's footprint, metres."""
    route_turn_margin: float = Field(15.0, ge=0.0, lt=45.0)
    """Route planning: a turn within this many degrees of 45, 135, 225 or 315 (between forward, left,
    back and right) makes the route ambiguous; it is not asked."""
    route_landmark_distance: float = Field(1.0, gt=0.0)
    """Route planning: a leg ends at the single-instance object nearest its end, at most this far."""
    route_landmark_margin: float = Field(0.3, ge=0.0)
    """Route planning: the next-nearest object must be this much farther from a leg's end, metres."""
    route_max_turns: int = Field(3, ge=1)
    """Route planning: routes with more turns to fill in are not asked."""
    max_enumerated: int = Field(20000, ge=1)
    """Candidate tuples (pairs, triples, ...) are enumerated exhaustively up to this many, else
    drawn at random (at most this many draws), count. Ours."""

    @field_validator("max_per_type")
    @classmethod
    def _known_types(cls, value: dict[str, int]) -> dict[str, int]:
        unknown = sorted(set(value) - set(QUESTION_TYPES))
        if unknown:
            raise ValueError(f"unknown question types {unknown}; known: {list(QUESTION_TYPES)}")
        if any(v < -1 for v in value.values()):
            raise ValueError("caps must be >= 0, or -1 for every valid candidate")
        return value

    @field_validator("excluded_labels")
    @classmethod
    def _lower(cls, value: list[str]) -> list[str]:
        return [v.strip().lower() for v in value]

    def cap(self, question_type: str) -> int:
        """Most questions of this type per scene (-1: no limit)."""
        return int(self.max_per_type.get(question_type, 0))
