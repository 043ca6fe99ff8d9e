"""The z_what probe: a 2-layer MLP classifying each inferred z_what into the class of its nearest
ground-truth object (train on train-split latents, report test accuracy)."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn


@dataclass(frozen=True)
class ProbeConfig:
    hidden: int = 256
    epochs: int = 50
    batch: int = 256
    lr: float = 1e-3
    max_distance: float = 16.0  # pixels between box centres; farther objects are left unmatched


def box_centres(boxes: Tensor) -> Tensor:
    """[..., 4] xyxy -> [..., 2] centres."""
    return (boxes[..., :2] + boxes[..., 2:]) / 2


def match_to_ground_truth(
    boxes: Tensor, present: Tensor, gt_boxes: Tensor, gt_labels: Tensor, max_distance: float
) -> Tensor:
    """Label of the nearest ground-truth object for each predicted object, -1 when none qualifies.

    boxes [B, M, 4], present bool [B, M], gt_boxes [B, K, 4], gt_labels [B, K] (-1 = padding) -> [B, M].
    """
    distance = torch.cdist(box_centres(boxes).double(), box_centres(gt_boxes).double())  # [B, M, K]
    distance = distance.masked_fill((gt_labels < 0)[:, None, :], float("inf"))
    nearest, which = distance.min(dim=2)
    labels = torch.gather(gt_labels, 1, which)
    return torch.where(present & (nearest <= max_distance), labels, torch.full_like(labels, -1))


def probe_accuracy(train_z: Tensor, train_y: Tensor, test_z: Tensor, test_y: Tensor, classes: int,
                   cfg: ProbeConfig = ProbeConfig(), seed: int = 0) -> float:
    """Fit the MLP on (train_z [N, D], train_y [N]) and return its accuracy on the test latents."""
    torch.manual_seed(seed)
    mean, std = train_z.mean(0), train_z.std(0).clamp_min(1e-6)
    net = nn.Sequential(nn.Linear(train_z.shape[1], cfg.hidden), nn.ReLU(), nn.Linear(cfg.hidden, classes))
    optimiser = torch.optim.Adam(net.parameters(), lr=cfg.lr)
    x, y = (train_z - mean) / std, train_y.long()
    generator = torch.Generator().manual_seed(seed)
    for _ in range(cfg.epochs):
        for batch in torch.randperm(len(x), generator=generator).split(cfg.batch):
            optimiser.zero_grad(set_to_none=True)
            nn.functional.cross_entropy(net(x[batch]), y[batch]).backward()
            optimiser.step()
    with torch.no_grad():
        predicted = net((test_z - mean) / std).argmax(1)
    return float((predicted == test_y.long()).float().mean())
