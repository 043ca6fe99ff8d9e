"""Labelled crops to fit the recogniser on: generated train scenes, degraded, read by the detector, labelled
from ground truth. Never model outputs.

Each batch of scenes (drawn with the dataset's own generator from train digits) gets non-digits added
(another scene overlaid at an offset, blobs) and is degraded (augment.py). The detector runs on the
result exactly as at check time; a candidate is labelled with the class of the ground-truth digit that
makes up its ink, or GARBAGE when it is mostly blob, a mix of digits, or a small part of one digit
(broken off by thinning or cut by the image border). Unclear cases are left out.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from scenegen.check.augment import AugmentSettings, augment
from scenegen.check.detect import DetectSettings, crops, find
from scenegen.check.recogniser import GARBAGE
from scenegen.scene import Scene

BLOB = 255  # owner id of blob pixels (digits are 1..2K)


@dataclass(frozen=True)
class TrainsetSettings:
    """overlay: fraction of scenes with another scene overlaid at a random offset; blobs: blobs per scene
    (0 to this many); clean: fraction of scenes left undegraded. Labels: a digit when `digit_share` of
    the candidate's ink is one digit's and it holds `digit_cover` of that digit's ink; GARBAGE below
    `garbage_share` or `garbage_cover`; in between left out."""

    overlay: float = 0.15
    blobs: int = 2
    clean: float = 0.3
    digit_share: float = 0.9
    digit_cover: float = 0.8
    garbage_share: float = 0.7
    garbage_cover: float = 0.5
    augment: AugmentSettings = field(default_factory=AugmentSettings)


def owner_maps(scenes: list[Scene]) -> np.ndarray:
    """int64 [N, H, W]: k + 1 where scene object k has ink, else 0."""
    size = scenes[0].image.shape[0]
    owners = np.zeros((len(scenes), size, size), dtype=np.int64)
    for i, scene in enumerate(scenes):
        ink = scene.image[:, :, 0] > 0
        for k, (x0, y0, x1, y1) in enumerate(scene.boxes.astype(np.int64)):
            region = owners[i, y0:y1, x0:x1]
            region[ink[y0:y1, x0:x1]] = k + 1
    return owners


def overlay(images: torch.Tensor, owners: torch.Tensor, k: int, chosen: torch.Tensor, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Chosen images float [n, 1, H, W] get the previous image of the batch overlaid (max), rolled by a
    random offset; its owners are shifted by k so that they stay distinct."""
    size = images.shape[-1]
    shift = [int(v) for v in torch.randint(-size // 2, size // 2 + 1, (2,), generator=gen)]
    other = torch.roll(images.roll(1, 0), shift, dims=(2, 3))
    other_owner = torch.roll(owners.roll(1, 0), shift, dims=(2, 3))
    on_top = chosen[:, None, None, None] & (other > images)
    return torch.where(on_top, other, images), torch.where(on_top, torch.where(other_owner > 0, other_owner + k, 0), owners)


def add_blobs(images: torch.Tensor, owners: torch.Tensor, most: int, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Up to `most` random elliptical gaussian blobs per image (sigma 1.5-5 px), owned by BLOB."""
    n, _, size, _ = images.shape
    yy, xx = torch.meshgrid(torch.arange(size, dtype=torch.float32), torch.arange(size, dtype=torch.float32), indexing="ij")
    for _ in range(most):
        keep = torch.rand(n, generator=gen) < 0.5
        cx, cy = (torch.rand(2, n, generator=gen) * size)[:, :, None, None]  # each [n, 1, 1]
        sx, sy = (1.5 + 3.5 * torch.rand(2, n, generator=gen))[:, :, None, None]
        amp = (0.5 + 0.5 * torch.rand(n, generator=gen))[:, None, None] * keep[:, None, None]
        blob = (amp * torch.exp(-((xx - cx) ** 2 / (2 * sx**2) + (yy - cy) ** 2 / (2 * sy**2))))[:, None]
        on_top = (blob > 0.1) & (blob > images)
        images, owners = torch.where(on_top, blob, images), torch.where(on_top, BLOB, owners)
    return images, owners


def label_candidates(images: np.ndarray, found_map: np.ndarray, found_ids: np.ndarray, owners: np.ndarray,
                     owner_mass: np.ndarray, classes: np.ndarray, s: TrainsetSettings) -> np.ndarray:
    """The training label of each candidate (-1: left out).

    images float [N, H, W]; found_map int [N, H, W] candidate ids; owners int [N, H, W];
    owner_mass float [N, B]: ink of each owner; classes int [N, B] digit class of each owner.
    """
    n, bins = owner_mass.shape
    on = found_map > 0
    image_index = np.broadcast_to(np.arange(n)[:, None, None], found_map.shape)[on]
    key = found_map[on].astype(np.int64) * (n * bins) + image_index * bins + owners[on]
    keys, inverse = np.unique(key, return_inverse=True)
    mass = np.bincount(inverse, weights=images[on])
    candidate, rest = keys // (n * bins), keys % (n * bins)
    image_of, owner = rest // bins, rest % bins
    # ink that no owner claims is halo from blur or thickening, or noise: it does not vote
    owned = np.where(owner > 0, mass, 0.0)
    total = np.bincount(np.searchsorted(found_ids, candidate), weights=owned, minlength=len(found_ids))
    best = np.zeros(len(found_ids), dtype=np.int64)  # row of keys with the most owned mass per candidate
    order = np.lexsort((-owned, candidate))
    first = np.r_[True, candidate[order][1:] != candidate[order][:-1]]
    best[np.searchsorted(found_ids, candidate[order][first])] = order[first]
    share = owned[best] / np.maximum(total, 1e-9)
    cover = owned[best] / np.maximum(owner_mass[image_of[best], owner[best]], 1e-9)
    is_digit = (owner[best] > 0) & (owner[best] != BLOB)
    labels = np.full(len(found_ids), -1, dtype=np.int64)
    digit = is_digit & (share >= s.digit_share) & (cover >= s.digit_cover)
    labels[digit] = classes[image_of[best][digit], owner[best][digit]]
    labels[~is_digit | (share < s.garbage_share) | (cover < s.garbage_cover)] = GARBAGE
    return labels


def labelled_crops(scenes: list[Scene], s: TrainsetSettings, detect: DetectSettings, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Crops float [M, 1, 28, 28] and labels int64 [M] (0-9, GARBAGE) read from degraded scenes."""
    n, k = len(scenes), max(len(sc.labels) for sc in scenes)
    classes = np.full((n, BLOB + 1), GARBAGE, dtype=np.int64)
    for i, scene in enumerate(scenes):
        classes[i, 1 : len(scene.labels) + 1] = scene.labels
        previous = scenes[i - 1]  # overlay() puts scene i - 1 on scene i, owners shifted by k
        classes[i, k + 1 : k + 1 + len(previous.labels)] = previous.labels
    images = torch.from_numpy(np.stack([sc.image[:, :, 0] for sc in scenes])).float()[:, None] / 255
    owners = torch.from_numpy(owner_maps(scenes))[:, None]
    images, owners = overlay(images, owners, k, torch.rand(n, generator=gen) < s.overlay, gen)
    images, owners = add_blobs(images, owners, s.blobs, gen)
    degraded, warped = augment(images, owners, s.augment, gen)
    clean = (torch.rand(n, generator=gen) < s.clean)[:, None, None, None]
    images, owners = torch.where(clean, images, degraded), torch.where(clean, owners, warped)
    flat, owner_np = images[:, 0].numpy(), owners[:, 0].numpy()
    ink = flat > detect.threshold
    owner_mass = np.stack([np.bincount(owner_np[i][ink[i]], weights=flat[i][ink[i]], minlength=BLOB + 1) for i in range(n)])
    found = find(flat, detect)
    labels = label_candidates(flat, found.label_map, found.ids, owner_np, owner_mass, classes, s)
    keep = labels >= 0
    return crops(flat, found.subset(keep)), torch.from_numpy(labels[keep])
