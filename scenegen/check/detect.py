"""Find digit candidates in a batch of images: threshold, connected components, specks, normalised crops.

Digits of these datasets sit on black and never overlap, so the connected components of the
thresholded image are the digit candidates. Specks (a few pixels) join a neighbour or are dropped
as noise; the recogniser (recogniser.py) classifies crops and joins larger fragments of a broken digit.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from scipy import ndimage
from torchvision.ops import roi_align

CROP = 28  # crops are CROP x CROP pixels, MNIST's frame
INK = 20  # the longer side of a candidate's box fills INK pixels of its crop, as in MNIST
# 8-connected within each image, never across images of a batch
IN_PLANE = np.zeros((3, 3, 3), dtype=bool)
IN_PLANE[1] = True


@dataclass(frozen=True)
class DetectSettings:
    """threshold: intensity in [0, 1] above which a pixel is ink.
    min_area: components with fewer ink pixels are specks: joined to a component within merge_gap
        pixels, else dropped as noise. merge_gap: pixels between boxes that still count as touching."""

    threshold: float = 0.2
    min_area: int = 6
    merge_gap: int = 2


@dataclass
class Found:
    """Digit candidates of a batch of images.

    label_map: int32 [N, H, W]: 0 background, else the id of the candidate owning the pixel.
    image: int64 [M] image index of each candidate; ids: int64 [M] its id in label_map;
    boxes: float64 [M, 4] (x_min, y_min, x_max, y_max) of its ink, max exclusive.
    """

    label_map: np.ndarray
    image: np.ndarray
    ids: np.ndarray
    boxes: np.ndarray

    def subset(self, keep: np.ndarray) -> "Found":
        return Found(self.label_map, self.image[keep], self.ids[keep], self.boxes[keep])


def find(images: np.ndarray, settings: DetectSettings) -> Found:
    """Candidates of images float32 [N, H, W] in [0, 1]."""
    label_map, n = ndimage.label(images > settings.threshold, structure=IN_PLANE)
    label_map = label_map.astype(np.int32)
    slices = ndimage.find_objects(label_map)
    image = np.array([s[0].start for s in slices], dtype=np.int64)
    boxes = np.array([(s[2].start, s[1].start, s[2].stop, s[1].stop) for s in slices], dtype=np.float64).reshape(-1, 4)
    areas = np.bincount(label_map.ravel(), minlength=n + 1)[1:]
    owner = np.arange(1, n + 1)  # owner[k - 1]: the id component k ends up in (0: dropped)
    big = areas >= settings.min_area
    for k in np.flatnonzero(~big):
        near = np.flatnonzero(big & (image == image[k]))
        gaps = box_gaps(boxes[k][None], boxes[near])[0]
        owner[k] = near[np.argmin(gaps)] + 1 if len(near) and gaps.min() <= settings.merge_gap else 0
    found = Found(label_map, image, np.arange(1, n + 1), boxes)
    return merge(found, owner)


def merge(found: Found, owner: np.ndarray) -> Found:
    """Relabel candidate with id k as owner[k - 1] (0 drops it); boxes become unions per owner.

    owner: int [max id] over all ids of found.label_map (ids not in found map to themselves).
    """
    lut = np.concatenate([[0], owner]).astype(np.int32)
    label_map = lut[found.label_map]
    new = lut[found.ids]
    kept = np.unique(new[new > 0])
    index = {int(k): i for i, k in enumerate(kept)}
    boxes = np.tile(np.array([np.inf, np.inf, -np.inf, -np.inf]), (len(kept), 1))
    image = np.zeros(len(kept), dtype=np.int64)
    for j, target in enumerate(new):
        if target == 0:
            continue
        i = index[int(target)]
        boxes[i, :2] = np.minimum(boxes[i, :2], found.boxes[j, :2])
        boxes[i, 2:] = np.maximum(boxes[i, 2:], found.boxes[j, 2:])
        image[i] = found.image[j]
    return Found(label_map, image, kept.astype(np.int64), boxes)


def box_gaps(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Chebyshev gaps in pixels between xyxy boxes a [n, 4] and b [m, 4]: float [n, m], 0 if touching."""
    dx = np.maximum(np.maximum(a[:, None, 0] - b[None, :, 2], b[None, :, 0] - a[:, None, 2]), 0)
    dy = np.maximum(np.maximum(a[:, None, 1] - b[None, :, 3], b[None, :, 1] - a[:, None, 3]), 0)
    return np.maximum(dx, dy)


def crops(images: np.ndarray, found: Found, partners: np.ndarray | None = None) -> torch.Tensor:
    """Each candidate's ink, other candidates blanked, in a square centred on its box whose side
    makes the longer box side INK of CROP pixels, resampled to float [M, 1, CROP, CROP].

    partners: int [M], a second id whose pixels also belong to each candidate (to try a join).
    """
    if len(found.ids) == 0:
        return torch.zeros((0, 1, CROP, CROP))
    b = found.boxes
    sides = np.maximum(b[:, 2] - b[:, 0], b[:, 3] - b[:, 1]) * CROP / INK
    cx, cy = (b[:, 0] + b[:, 2]) / 2, (b[:, 1] + b[:, 3]) / 2
    x0, y0 = np.floor(cx - sides / 2).astype(np.int64), np.floor(cy - sides / 2).astype(np.int64)
    width = int(np.ceil(sides.max())) + 2
    offsets = np.arange(width)
    _, height, breadth = images.shape
    z = found.image[:, None, None]
    ys = y0[:, None, None] + offsets[None, :, None]  # [M, width, 1]
    xs = x0[:, None, None] + offsets[None, None, :]  # [M, 1, width]
    inside = (ys >= 0) & (ys < height) & (xs >= 0) & (xs < breadth)
    ys, xs = np.clip(ys, 0, height - 1), np.clip(xs, 0, breadth - 1)
    owner = found.label_map[z, ys, xs]
    own = inside & ((owner == 0) | (owner == found.ids[:, None, None]))
    if partners is not None:
        own |= inside & (owner == partners[:, None, None])
    windows = np.where(own, images[z, ys, xs], 0).astype(np.float32)
    rois = np.stack([np.arange(len(b)), cx - sides / 2 - x0, cy - sides / 2 - y0, cx + sides / 2 - x0, cy + sides / 2 - y0], 1)
    return roi_align(torch.from_numpy(windows)[:, None], torch.from_numpy(rois.astype(np.float32)), output_size=CROP,
                     spatial_scale=1.0, sampling_ratio=2, aligned=True)
