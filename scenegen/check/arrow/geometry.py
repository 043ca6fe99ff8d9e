"""Image <-> floor geometry: what the checker reads in the image (each object's projected centre, the arrow's
drawn direction) and the world layout the rules judge, through the camera model Blender uses (sampler.Camera).

Training targets come from ground truth with each scene's own (jittered) camera; at check time the
image quantities are lifted back onto the floor with the nominal camera (cfg.camera_*): the jitter
(+-0.25 per axis) is unknown there and moves all objects alike, which the rules tolerate.
"""

from __future__ import annotations

import numpy as np

from scenegen.datasets.arrow_room.config import ArrowRoomConfig
from scenegen.datasets.arrow_room.sampler import Camera, nominal_camera, object_height

DIRECTION_STEP = 0.5  # world units along the heading whose projection gives the drawn direction


def scene_camera(cfg: ArrowRoomConfig, location: np.ndarray) -> Camera:
    """The jittered camera of one scene (shards store its location; it looks at cfg.camera_look_at)."""
    return Camera(tuple(float(v) for v in location), tuple(cfg.camera_look_at), cfg.camera_lens_mm, cfg.camera_sensor_mm,
                  cfg.image_size)


def image_pose(camera: Camera, positions: np.ndarray, headings: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """World centres float [n, 3] and yaws float [n] -> (projected centres float [n, 2] pixel (x, y),
    unit image directions float [n, 2] of each heading drawn from its centre)."""
    positions = np.asarray(positions, np.float64).reshape(-1, 3)
    ahead = positions + DIRECTION_STEP * np.stack([np.cos(headings), np.sin(headings), np.zeros(len(positions))], axis=1)
    centres, _ = camera.project(positions)
    tips, _ = camera.project(ahead)
    step = tips - centres
    return centres, step / np.linalg.norm(step, axis=1, keepdims=True)


def backproject(camera: Camera, pixels: np.ndarray, heights: np.ndarray) -> np.ndarray:
    """Pixels float [n, 2] (x right, y down) -> world points float [n, 3] where their rays meet z = heights [n]."""
    pixels = np.asarray(pixels, np.float64).reshape(-1, 2)
    half = camera.image_size / 2
    rays_cam = np.stack([(pixels[:, 0] - half) / camera.focal_px, -(pixels[:, 1] - half) / camera.focal_px,
                         -np.ones(len(pixels))], axis=1)
    rays = rays_cam @ camera.rotation().T
    origin = np.asarray(camera.location, np.float64)
    t = (np.asarray(heights, np.float64) - origin[2]) / rays[:, 2]
    return origin + t[:, None] * rays


def floor_pose(cfg: ArrowRoomConfig, labels: np.ndarray, centres: np.ndarray, directions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """What the rules read, from the image: world centres float [n, 3] and yaws float [n] of objects with
    shape ids labels int [n], projected centres float [n, 2] and image directions float [n, 2] (nominal camera;
    each centre lies at its shape's nominal half height)."""
    camera = nominal_camera(cfg)
    heights = np.array([object_height(cfg, cfg.shapes[int(k)], 1.0) / 2 for k in labels], np.float64)
    points = backproject(camera, centres, heights)
    ahead = backproject(camera, np.asarray(centres) + np.asarray(directions) * 4.0, heights)
    step = ahead - points
    return points, np.arctan2(step[:, 1], step[:, 0])
