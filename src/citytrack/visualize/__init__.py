"""Drawing: id colours, labels and boxes (`draw`), the bird's-eye view of a calibrated scene
(`birdseye`), and the multi-camera picture / video of a tracking result (`scene`)."""

from citytrack.visualize.birdseye import (
    WorldToPixel,
    birds_eye_background,
    camera_footprint,
    clamp_to_ground,
    draw_cameras,
    draw_footprints,
    draw_grid,
    draw_world_tracks,
    scene_extent,
)
from citytrack.visualize.draw import camera_colour, draw_label, draw_masks, draw_tracks, id_colour
from citytrack.visualize.scene import SceneRenderer, SceneVideoWriter, scene_snapshot, world_points

__all__ = [
    "SceneRenderer",
    "SceneVideoWriter",
    "WorldToPixel",
    "birds_eye_background",
    "camera_colour",
    "camera_footprint",
    "clamp_to_ground",
    "draw_cameras",
    "draw_footprints",
    "draw_grid",
    "draw_label",
    "draw_masks",
    "draw_tracks",
    "draw_world_tracks",
    "id_colour",
    "scene_extent",
    "scene_snapshot",
    "world_points",
]
