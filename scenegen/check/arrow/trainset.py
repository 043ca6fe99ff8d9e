"""Training examples from rendered Arrow Room splits (ground truth only, never model outputs).

Scenes (`load_split`) hold the images and, per object, the targets both nets learn: visible boxes,
shape/colour/material ids, and the image geometry from the scene's own camera (projected centre,
drawn heading direction; geometry.image_pose); per scene, whether its ground truth obeys the rules.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torchvision.ops import roi_align

from scenegen.check.arrow.geometry import image_pose, scene_camera
from scenegen.check.arrow.nets import CROP
from scenegen.data import ShardDataset
from scenegen.datasets.arrow_room import SPEC, ArrowRoomConfig
from scenegen.datasets.base import Layout
from scenegen.shards import read_arrays

CROP_MARGIN = 1.3  # crop side = longer box side x this
MIN_CROP = 12.0  # pixels


@dataclass(frozen=True)
class Scenes:
    """Rendered scenes with per-object targets, objects flattened over scenes.

    images: uint8 [N, H, W, 3]; valid: bool [N] the ground truth obeys every rule. Per object (M in all):
    scene int64 [M]; boxes float32 [M, 4] visible box xyxy; shape, color, material int64 [M]; centre
    float32 [M, 2] projected 3D centre (pixels); direction float32 [M, 2] unit image direction of the heading.
    """

    images: np.ndarray
    valid: np.ndarray
    scene: np.ndarray
    boxes: np.ndarray
    shape: np.ndarray
    color: np.ndarray
    material: np.ndarray
    centre: np.ndarray
    direction: np.ndarray

    def subset(self, keep: np.ndarray) -> "Scenes":
        """The scenes at indices keep int [n], renumbered 0..n-1."""
        rows = np.isin(self.scene, keep)
        renumber = np.full(len(self.images), -1)
        renumber[keep] = np.arange(len(keep))
        return Scenes(self.images[keep], self.valid[keep], renumber[self.scene[rows]], self.boxes[rows], self.shape[rows],
                      self.color[rows], self.material[rows], self.centre[rows], self.direction[rows])


def concat(parts: list[Scenes]) -> Scenes:
    """The scenes of all parts, in order, renumbered."""
    starts = np.cumsum([0] + [len(p.images) for p in parts])
    fields = {f.name: np.concatenate([getattr(p, f.name) for p in parts]) for f in dataclasses.fields(Scenes)}
    fields["scene"] = np.concatenate([p.scene + start for p, start in zip(parts, starts)])
    return Scenes(**fields)


def load_split(folder: Path) -> tuple[Scenes, ArrowRoomConfig]:
    """Every scene of a rendered Arrow Room split folder, with its config."""
    ds = ShardDataset(folder)
    cfg = ArrowRoomConfig.from_dict(ds.config)
    parts = [read_arrays(f) for f in ds.files]
    a = {k: np.concatenate([p[k] for p in parts]) for k in ("images", "boxes", "labels", "colors", "materials", "positions",
                                                            "headings", "num_objects", "camera_x", "camera_y", "camera_z")}
    scene, centres, directions = [], [], []
    for i, n in enumerate(a["num_objects"]):
        camera = scene_camera(cfg, np.array([a["camera_x"][i], a["camera_y"][i], a["camera_z"][i]]))
        c, d = image_pose(camera, a["positions"][i, :n], a["headings"][i, :n])
        scene += [i] * int(n)
        centres.append(c)
        directions.append(d)
    real = np.arange(a["labels"].shape[1])[None, :] < a["num_objects"][:, None]
    valid = np.array([SPEC.first_violation(Layout(a["boxes"][i, :n], a["labels"][i, :n],
                                                  {k: a[k][i, :n] for k in ("materials", "positions", "headings")}), cfg) is None
                      for i, n in enumerate(a["num_objects"])])
    scenes = Scenes(a["images"], valid, np.asarray(scene, np.int64), a["boxes"][real].astype(np.float32), a["labels"][real].astype(np.int64),
                    a["colors"][real].astype(np.int64), a["materials"][real].astype(np.int64),
                    np.concatenate(centres).astype(np.float32), np.concatenate(directions).astype(np.float32))
    return scenes, cfg


def to_tensor(images: np.ndarray) -> torch.Tensor:
    """uint8 or float [N, H, W, 3] -> float [N, 3, H, W] in [0, 1]."""
    t = torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2)
    return t.float().div_(255) if t.dtype == torch.uint8 else t.float()


def crop_windows(boxes: torch.Tensor) -> torch.Tensor:
    """Square crop windows float [M, 4] xyxy centred on boxes float [M, 4], side CROP_MARGIN x the longer box side."""
    centre = (boxes[:, :2] + boxes[:, 2:]) / 2
    half = ((boxes[:, 2:] - boxes[:, :2]).max(dim=1).values * CROP_MARGIN).clamp_min(MIN_CROP)[:, None] / 2
    return torch.cat([centre - half, centre + half], dim=1)


def crop(images: torch.Tensor, index: torch.Tensor, windows: torch.Tensor) -> torch.Tensor:
    """Crops float [M, 3, CROP, CROP] of images float [N, 3, H, W] at windows float [M, 4] of image index int [M]."""
    rois = torch.cat([index[:, None].float(), windows], dim=1)
    return roi_align(images, rois, output_size=CROP, spatial_scale=1.0, sampling_ratio=2, aligned=True)
