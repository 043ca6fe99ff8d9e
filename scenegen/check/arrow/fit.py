"""Fit the Arrow Room recogniser (DetectNet, then ObjectNet) on a rendered train split, on the CPU.

Both nets learn from ground truth only: DetectNet from the visible boxes (CenterNet targets),
ObjectNet from crops around jittered ground-truth boxes (shape, colour, material, projected centre,
drawn heading). A held-out part of the split measures both; `evaluate` reports it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from scenegen.check.arrow.nets import SIZE_UNIT, STRIDE, DetectNet, ObjectNet
from scenegen.check.arrow.trainset import Scenes, crop, crop_windows, to_tensor
from scenegen.datasets.arrow_room.config import ArrowRoomConfig
from scenegen.datasets.arrow_room.sampler import ARROW


@dataclass(frozen=True)
class ArrowFitSettings:
    """detect_epochs / object_epochs: passes over the train scenes / their objects, in minibatches of
    image_batch images / crop_batch crops; AdamW with a one-cycle rate peaking at lr; box_jitter:
    random shift (fraction of the box side) and log-scale of the crop boxes; rotate_share of the arrows'
    crops are turned by a random angle (arrows drawn at every angle, not only the common ones); arrow_weight: how much more
    often an arrow's crop is drawn than another object's (its direction is the hardest thing to read);
    geometry_weight: weight of the centre and direction regressions; holdout: fraction of scenes kept
    out to measure; seed: all randomness."""

    detect_epochs: int = 30  # 6 (~280 steps on 1,500 scenes) missed partly hidden objects in crowded scenes
    object_epochs: int = 10
    image_batch: int = 32
    crop_batch: int = 128
    lr: float = 3e-3
    weight_decay: float = 1e-4
    box_jitter: float = 0.08
    rotate_share: float = 0.5
    arrow_weight: float = 2.0
    geometry_weight: float = 5.0
    holdout: float = 0.1
    seed: int = 0


def split_holdout(n: int, s: ArrowFitSettings) -> tuple[np.ndarray, np.ndarray]:
    """(fit scene indices, held-out scene indices) of n scenes; the held-out ones are the last."""
    held = int(round(n * s.holdout)) if n > 1 else 0
    return np.arange(n - held), np.arange(n - held, n)


def heat_targets(boxes: list[np.ndarray], cells: int, flip: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
    """CenterNet targets of B scenes with boxes float [k_b, 4] (flip bool [B]: mirrored left-right).

    Returns heatmaps float [B, cells, cells] (gaussian around each centre cell, 1 at it) and
    peaks float [P, 7]: (scene, cell row, cell column, offset x, offset y, width, height) per object.
    """
    size = cells * STRIDE
    grid = torch.arange(cells, dtype=torch.float32)
    heat = torch.zeros(len(boxes), cells, cells)
    peaks = []
    for b, bx in enumerate(boxes):
        bx = torch.as_tensor(bx, dtype=torch.float32)
        if flip[b]:
            bx = torch.stack([size - bx[:, 2], bx[:, 1], size - bx[:, 0], bx[:, 3]], dim=1)
        centre = (bx[:, :2] + bx[:, 2:]) / 2 / STRIDE
        cell = centre.floor().clamp(0, cells - 1)
        wh = bx[:, 2:] - bx[:, :2]
        sigma = (wh.min(dim=1).values / STRIDE * 0.15).clamp_min(0.75)
        for (cx, cy), s in zip(cell, sigma):
            g = torch.exp(-((grid[None, :] - cx) ** 2 + (grid[:, None] - cy) ** 2) / (2 * s * s))
            heat[b] = torch.maximum(heat[b], g)
        off = centre - cell
        peaks.append(torch.cat([torch.full((len(bx), 1), float(b)), cell[:, 1:], cell[:, :1], off, wh / SIZE_UNIT], dim=1))
    return heat, torch.cat(peaks)


def detect_loss(maps: torch.Tensor, heat: torch.Tensor, peaks: torch.Tensor) -> torch.Tensor:
    """CenterNet focal loss on the heatmap plus L1 on offset and size at the centre cells.

    maps float [B, 5, h, w] (DetectNet output), heat float [B, h, w], peaks float [P, 7] (heat_targets)."""
    p = torch.sigmoid(maps[:, 0]).clamp(1e-4, 1 - 1e-4)
    pos = heat >= 1.0
    focal = -(pos * (1 - p) ** 2 * torch.log(p) + (~pos) * (1 - heat) ** 4 * p**2 * torch.log(1 - p)).sum()
    b, row, col = peaks[:, 0].long(), peaks[:, 1].long(), peaks[:, 2].long()
    regress = maps[b, 1:, row, col]  # [P, 4]
    return focal / max(len(peaks), 1) + F.l1_loss(regress, peaks[:, 3:], reduction="sum") / max(len(peaks), 1)


def _loop(net: torch.nn.Module, weights: torch.Tensor, batch: int, epochs: int, s: ArrowFitSettings, gen: torch.Generator,
          desc: str, progress: bool, loss_of: Callable[[torch.Tensor], torch.Tensor]) -> None:
    """Minimise loss_of(index) over `epochs` passes through the items (index int64 [batch]), each pass
    drawing as many items as there are with probability proportional to weights float [count], in
    minibatches of `batch`; AdamW with a one-cycle schedule; leaves net in eval mode."""
    count = len(weights)
    per_epoch = max(count // batch, 1)
    steps = epochs * per_epoch
    optimiser = torch.optim.AdamW(net.parameters(), lr=s.lr, weight_decay=s.weight_decay)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimiser, max_lr=s.lr, total_steps=max(steps, 1), pct_start=0.15)
    net.train()
    with tqdm(total=steps, desc=desc, unit="step", disable=not progress) as bar:
        for _ in range(epochs):
            order = torch.multinomial(weights, count, replacement=True, generator=gen)
            for k in range(per_epoch):
                loss = loss_of(order[k * batch : (k + 1) * batch])
                optimiser.zero_grad()
                loss.backward()
                optimiser.step()
                schedule.step()
                bar.update()
    net.eval()


def fit_detect(scenes: Scenes, s: ArrowFitSettings, progress: bool) -> DetectNet:
    """DetectNet fitted on every scene of `scenes` (random left-right flips)."""
    gen = torch.Generator().manual_seed(s.seed + 1)
    net = DetectNet()
    images = to_tensor(scenes.images)
    per_scene = np.split(scenes.boxes, np.searchsorted(scenes.scene, np.arange(1, len(images))))
    cells = images.shape[-1] // STRIDE

    def loss_of(index: torch.Tensor) -> torch.Tensor:
        flip = (torch.rand(len(index), generator=gen) < 0.5).numpy()
        batch = images[index]
        batch = torch.where(torch.from_numpy(flip)[:, None, None, None], batch.flip(-1), batch)
        heat, peaks = heat_targets([per_scene[int(k)] for k in index], cells, flip)
        return detect_loss(net(batch), heat, peaks)

    _loop(net, torch.ones(len(images)), s.image_batch, s.detect_epochs, s, gen, "detector fit", progress, loss_of)
    return net


def jittered_windows(boxes: torch.Tensor, amount: float, gen: torch.Generator) -> torch.Tensor:
    """Crop windows float [M, 4] of boxes float [M, 4] shifted by up to amount x side and scaled by exp(+-amount)."""
    side = (boxes[:, 2:] - boxes[:, :2]).max(dim=1).values[:, None]
    shift = (2 * torch.rand(len(boxes), 2, generator=gen) - 1) * amount * side
    scale = torch.exp((2 * torch.rand(len(boxes), 1, generator=gen) - 1) * amount)
    centre = (boxes[:, :2] + boxes[:, 2:]) / 2 + shift
    half = (boxes[:, 2:] - boxes[:, :2]) * scale / 2
    return crop_windows(torch.cat([centre - half, centre + half], dim=1))


def object_targets(scenes: Scenes, rows: torch.Tensor, windows: torch.Tensor) -> dict[str, torch.Tensor]:
    """ObjectNet targets of objects rows int [M] cropped at windows float [M, 4]."""
    side = windows[:, 2] - windows[:, 0]
    mid = (windows[:, :2] + windows[:, 2:]) / 2
    return {
        "shape": torch.from_numpy(scenes.shape)[rows], "color": torch.from_numpy(scenes.color)[rows],
        "material": torch.from_numpy(scenes.material)[rows],
        "centre": (torch.from_numpy(scenes.centre)[rows] - mid) / side[:, None],
        "direction": torch.from_numpy(scenes.direction)[rows],
    }


def transformed(crops: torch.Tensor, target: dict[str, torch.Tensor], flip: torch.Tensor,
                angle: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Crops float [M, 3, h, w] mirrored left-right where flip bool [M], then turned by angle float [M]
    (radians, x right / y down, about the crop centre; edges repeated), with their targets turned alike:
    the projected centre and the drawn direction are image vectors, so they map exactly."""
    cos, sin = torch.cos(angle), torch.sin(angle)
    turn = torch.stack([torch.stack([cos, -sin], 1), torch.stack([sin, cos], 1)], 1)  # [M, 2, 2]: v -> turn @ v
    mirror = torch.diag_embed(torch.stack([torch.where(flip, -1.0, 1.0), torch.ones(len(flip))], 1))
    moved = turn @ mirror
    # affine_grid maps output to input coordinates: the inverse map, on normalised (square) coordinates
    theta = torch.cat([torch.linalg.inv(moved), torch.zeros(len(flip), 2, 1)], 2)
    grid = F.affine_grid(theta, list(crops.shape), align_corners=False)
    out = F.grid_sample(crops, grid, mode="bilinear", padding_mode="border", align_corners=False)
    vectors = {k: (moved @ target[k][:, :, None])[:, :, 0] for k in ("centre", "direction")}
    return out, {**target, **vectors}


def object_loss(out: dict[str, torch.Tensor], target: dict[str, torch.Tensor], geometry_weight: float) -> torch.Tensor:
    """Cross-entropy of the three classes plus weighted L1 errors of centre and (arrows only) direction."""
    arrows = target["shape"] == ARROW
    direction = F.l1_loss(out["direction"][arrows], target["direction"][arrows]) if arrows.any() else out["direction"].sum() * 0
    return (F.cross_entropy(out["shape"], target["shape"]) + F.cross_entropy(out["color"], target["color"])
            + F.cross_entropy(out["material"], target["material"])
            + geometry_weight * (F.l1_loss(out["centre"], target["centre"]) + direction))


def fit_object(scenes: Scenes, cfg: ArrowRoomConfig, s: ArrowFitSettings, progress: bool) -> ObjectNet:
    """ObjectNet fitted on crops around the jittered ground-truth boxes of every object of `scenes`
    (random left-right flips; arrows also turned)."""
    gen = torch.Generator().manual_seed(s.seed + 2)
    net = ObjectNet(len(cfg.shapes), len(cfg.colors), len(cfg.materials))
    images = to_tensor(scenes.images)
    boxes, scene = torch.from_numpy(scenes.boxes), torch.from_numpy(scenes.scene)

    def loss_of(rows: torch.Tensor) -> torch.Tensor:
        windows = jittered_windows(boxes[rows], s.box_jitter, gen)
        flip = torch.rand(len(rows), generator=gen) < 0.5
        turn = (torch.rand(len(rows), generator=gen) < s.rotate_share) & (torch.from_numpy(scenes.shape)[rows] == ARROW)
        angle = torch.where(turn, (2 * torch.rand(len(rows), generator=gen) - 1) * math.pi, 0.0)
        crops, target = transformed(crop(images, scene[rows], windows), object_targets(scenes, rows, windows), flip, angle)
        return object_loss(net(crops), target, s.geometry_weight)

    weights = torch.where(torch.from_numpy(scenes.shape) == ARROW, s.arrow_weight, 1.0)
    _loop(net, weights, s.crop_batch, s.object_epochs, s, gen, "object fit", progress, loss_of)
    return net


def fit_nets(scenes: Scenes, cfg: ArrowRoomConfig, s: ArrowFitSettings, progress: bool) -> tuple[DetectNet, ObjectNet]:
    """Both nets, fitted with the global torch RNG seeded and restored afterwards (gradients on)."""
    with torch.random.fork_rng(), torch.enable_grad():
        torch.manual_seed(s.seed)
        return fit_detect(scenes, s, progress), fit_object(scenes, cfg, s, progress)

