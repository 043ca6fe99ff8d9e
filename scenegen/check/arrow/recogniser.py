"""The Arrow Room recogniser: DetectNet finds the objects, ObjectNet reads each one's crop (and its
mirror image, averaged: ObjectNet is fitted on mirrored crops too).

Per image it returns boxes, class probabilities (shape, colour, material) and the image geometry
(projected centre, drawn heading direction) of every object found.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from scenegen.check.arrow.nets import SIZE_UNIT, STRIDE, DetectNet, ObjectNet
from scenegen.check.arrow.trainset import crop, crop_windows, to_tensor

BATCH = 256  # images per batch (bounds memory)


@dataclass(frozen=True)
class ObjectReading:
    """What was read in one image, k objects: boxes float [k, 4] xyxy pixels; score float [k] centre
    confidence; shape / color / material float [k, S] / [k, C] / [k, M] probabilities; centre float [k, 2]
    projected 3D centre (pixels); direction float [k, 2] unit drawn heading (image x right, y down)."""

    boxes: np.ndarray
    score: np.ndarray
    shape: np.ndarray
    color: np.ndarray
    material: np.ndarray
    centre: np.ndarray
    direction: np.ndarray


def decode(maps: torch.Tensor, threshold: float) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """DetectNet maps float [B, 5, h, w] -> (image index int64 [P], boxes float [P, 4] xyxy pixels,
    scores float [P]) of the local heatmap maxima (3x3) above threshold."""
    heat = torch.sigmoid(maps[:, 0])
    peak = (heat == F.max_pool2d(heat[:, None], 3, 1, 1)[:, 0]) & (heat > threshold)
    b, row, col = peak.nonzero(as_tuple=True)
    reg = maps[b, 1:, row, col]
    centre = (torch.stack([col, row], dim=1).float() + reg[:, :2]) * STRIDE
    half = reg[:, 2:].clamp_min(0.05) * SIZE_UNIT / 2
    return b, torch.cat([centre - half, centre + half], dim=1), heat[b, row, col]


class ArrowRecogniser:
    """Reads Arrow Room images: `read(images)` -> one ObjectReading per image."""

    def __init__(self, detect: DetectNet, objects: ObjectNet, threshold: float = 0.3) -> None:
        self.detect, self.objects, self.threshold = detect.eval(), objects.eval(), threshold

    @torch.inference_mode()
    def read(self, images: np.ndarray) -> list[ObjectReading]:
        """Readings of images float32 [N, H, W, 3] in [0, 1] (or uint8)."""
        out: list[ObjectReading] = []
        for start in range(0, len(images), BATCH):
            batch = to_tensor(images[start : start + BATCH])
            index, boxes, score = decode(self.detect(batch), self.threshold)
            windows = crop_windows(boxes)
            res = self.read_crops(crop(batch, index, windows)) if len(index) else None
            side = (windows[:, 2] - windows[:, 0])[:, None]
            for i in range(len(batch)):
                rows = (index == i).nonzero()[:, 0]
                if res is None or len(rows) == 0:
                    out.append(_empty(self.objects))
                    continue
                centre = (windows[rows, :2] + windows[rows, 2:]) / 2 + res["centre"][rows] * side[rows]
                classes = {k: res[k][rows].numpy() for k in ("shape", "color", "material")}
                out.append(ObjectReading(boxes[rows].numpy(), score[rows].numpy(), centre=centre.numpy(),
                                         direction=res["direction"][rows].numpy(), **classes))
        return out

    def read_crops(self, crops: torch.Tensor) -> dict[str, torch.Tensor]:
        """ObjectNet on crops float [M, 3, CROP, CROP] and on their mirror images, averaged: class
        probabilities, centre (crop-side units) and unit direction."""
        plain, mirror = self.objects(crops), self.objects(crops.flip(-1))
        unflip = torch.tensor([[-1.0, 1.0]])  # a mirrored crop's image x points the other way
        out = {k: (F.softmax(plain[k], dim=1) + F.softmax(mirror[k], dim=1)) / 2 for k in ("shape", "color", "material")}
        out["centre"] = (plain["centre"] + mirror["centre"] * unflip) / 2
        out["direction"] = F.normalize(F.normalize(plain["direction"], dim=1) + F.normalize(mirror["direction"], dim=1) * unflip, dim=1)
        return out


def _empty(net: ObjectNet) -> ObjectReading:
    """The reading of an image with no object found."""
    zeros = {k: np.zeros((0, net.sizes[k]), np.float32) for k in ("shape", "color", "material", "centre", "direction")}
    return ObjectReading(np.zeros((0, 4), np.float32), np.zeros(0, np.float32), **zeros)
