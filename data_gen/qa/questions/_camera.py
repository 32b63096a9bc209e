"""What the camera-motion question types share: the frames a record shows and the camera's pose at
each, named by their place among those frames (1 = the first frame shown).

Conventions: poses are camera-to-world, the camera looks along its +z axis with +x to the right
of the image (OpenCV, as ScanNet), and the world's z axis is up. The camera's heading is its
viewing direction in the floor plane; angles in the floor plane are counter-clockwise seen from
above, degrees in [0, 360), as the relative-direction questions measure them.

Every question says how frames are counted (`FRAMES_NOTE`), since a record's frames are the only
clock the model sees: a record of these types shows exactly `SceneMetadata.shown_frames`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from data_gen.qa.metadata import ObjectMeta, SceneMetadata
from data_gen.qa.obb import Box3D

FRAMES_NOTE = "The frames are numbered 1, 2, ... in the order they are shown."


@dataclass(frozen=True)
class ShownFrame:
    number: int  # 1-based place among the frames shown
    frame: int  # stream index
    pose: np.ndarray  # [4, 4] camera-to-world

    @property
    def position(self) -> np.ndarray:
        return self.pose[:3, 3]

    def heading(self) -> np.ndarray | None:
        """The unit viewing direction in the floor plane; None when the camera looks (almost)
        straight up or down, so that it has no clear heading."""
        forward = self.pose[:2, 2]
        norm = float(np.hypot(*forward))
        return forward / norm if norm > 0.5 else None

    def to_camera(self, points: np.ndarray) -> np.ndarray:
        """World points [N, 3] in this frame's camera coordinates (x right, y down, z forward)."""
        rotation, origin = self.pose[:3, :3], self.pose[:3, 3]
        return (np.asarray(points, dtype=np.float64) - origin) @ rotation


def in_view(meta: SceneMetadata, camera_points: np.ndarray, near: float) -> np.ndarray:
    """[N] bool: camera-coordinate points in front of the camera (z > near) that project inside the
    colour image (`SceneMetadata.shown_camera`)."""
    fx, fy, cx, cy, width, height = meta.shown_camera
    z = camera_points[:, 2]
    ahead = z > near
    u = fx * camera_points[:, 0] / np.where(ahead, z, 1.0) + cx
    v = fy * camera_points[:, 1] / np.where(ahead, z, 1.0) + cy
    return ahead & (u >= 0) & (u < width) & (v >= 0) & (v < height)


def shown_frames(meta: SceneMetadata) -> list[ShownFrame]:
    out = []
    for k, (frame, flat) in enumerate(zip(meta.shown_frames, meta.shown_poses, strict=True)):
        pose = np.eye(4)
        pose[:3] = np.asarray(flat, dtype=np.float64).reshape(3, 4)
        out.append(ShownFrame(k + 1, int(frame), pose))
    return out


def point_box_distance(point: np.ndarray, box: Box3D) -> float:
    """Distance from a point to the closest point of a solid box (0 inside it), metres."""
    local = (np.asarray(point, dtype=np.float64) - np.asarray(box.center)) @ np.asarray(box.axes).T
    outside = np.maximum(np.abs(local) - np.asarray(box.extents) / 2, 0.0)
    return float(np.linalg.norm(outside))


def ccw_angle(start: np.ndarray, end: np.ndarray) -> float:
    """Counter-clockwise angle (degrees, [0, 360)) from floor vector `start` to `end`."""
    angle = np.degrees(np.arctan2(start[0] * end[1] - start[1] * end[0], start[0] * end[0] + start[1] * end[1]))
    return float(angle % 360.0)


def seen_by(meta: SceneMetadata, obj: ObjectMeta, frame: ShownFrame) -> bool:
    """The object's category has been seen at or before this frame (so a question about it at this
    moment is about something the video has shown)."""
    first = meta.first_appearance.get(obj.category)
    return first is not None and first.frame <= frame.frame
