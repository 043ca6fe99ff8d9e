"""Fit the recogniser's classifier on crops read from generated train scenes (trainset.py), on the CPU."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from scenegen.check.detect import DetectSettings
from scenegen.check.recogniser import DigitNet
from scenegen.check.trainset import TrainsetSettings, labelled_crops
from scenegen.datasets.mnist4_10 import SPEC as MNIST4_10, Mnist4_10Config
from scenegen.datasets.mnist_common import MnistResources


@dataclass(frozen=True)
class FitSettings:
    """scenes: generated train scenes (MNIST-4 and MNIST-10 alike), in batches of scene_batch;
    epochs over their crops in minibatches of `batch`; one-cycle learning rate peaking at lr;
    jitter: crop-level random shift/scale (fraction of the crop) added each epoch; seed: all randomness."""

    scenes: int = 8000
    scene_batch: int = 250
    epochs: int = 8
    batch: int = 128
    lr: float = 4e-3
    weight_decay: float = 5e-4
    jitter: float = 0.08
    seed: int = 0
    trainset: TrainsetSettings = field(default_factory=TrainsetSettings)


def training_data(cfg: Mnist4_10Config, resources: MnistResources, s: FitSettings, detect: DetectSettings,
                  progress: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """Labelled crops float [M, 1, 28, 28], int64 [M] from s.scenes train scenes of the generator."""
    rng = np.random.default_rng(s.seed)
    gen = torch.Generator().manual_seed(s.seed)
    parts = []
    for start in tqdm(range(0, s.scenes, s.scene_batch), desc="recogniser data", unit="batch", disable=not progress):
        scenes = MNIST4_10.make_shard(cfg, "train", rng, min(s.scene_batch, s.scenes - start), resources)
        parts.append(labelled_crops(scenes, s.trainset, detect, gen))
    return torch.cat([c for c, _ in parts]), torch.cat([y for _, y in parts])


def jitter(crops: torch.Tensor, amount: float, gen: torch.Generator) -> torch.Tensor:
    """Random shift (up to amount of the crop) and scale (1 +- amount) of crops float [B, 1, 28, 28]."""
    n = len(crops)
    theta = torch.zeros(n, 2, 3)
    scale = 1 + amount * (2 * torch.rand(n, generator=gen) - 1)
    theta[:, 0, 0], theta[:, 1, 1] = scale, scale
    theta[:, :, 2] = amount * (2 * torch.rand(n, 2, generator=gen) - 1) * 2
    grid = F.affine_grid(theta, list(crops.shape), align_corners=False)
    return F.grid_sample(crops, grid, align_corners=False)


def fit_net(crops: torch.Tensor, labels: torch.Tensor, s: FitSettings, progress: bool) -> DigitNet:
    """Train a DigitNet on crops float [M, 1, 28, 28] with labels int64 [M] (AdamW, one-cycle schedule).

    The global torch RNG (weight init, dropout) is seeded here and restored afterwards, so fitting inside
    another program (e.g. a gnm training run) leaves its randomness alone; gradients are enabled
    even when the caller runs under torch.no_grad().
    """
    with torch.random.fork_rng(), torch.enable_grad():
        torch.manual_seed(s.seed)
        return _train(crops, labels, s, progress)


def _train(crops: torch.Tensor, labels: torch.Tensor, s: FitSettings, progress: bool) -> DigitNet:
    gen = torch.Generator().manual_seed(s.seed + 1)
    net = DigitNet().to(memory_format=torch.channels_last)
    steps = s.epochs * (len(crops) // s.batch)
    optimiser = torch.optim.AdamW(net.parameters(), lr=s.lr, weight_decay=s.weight_decay)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimiser, max_lr=s.lr, total_steps=steps, pct_start=0.15)
    net.train()
    with tqdm(total=steps, desc="recogniser fit", unit="step", disable=not progress) as bar:
        for _ in range(s.epochs):
            order = torch.randperm(len(crops), generator=gen)
            for i in range(len(crops) // s.batch):
                index = order[i * s.batch : (i + 1) * s.batch]
                loss = F.cross_entropy(net(jitter(crops[index], s.jitter, gen)), labels[index])
                optimiser.zero_grad()
                loss.backward()
                optimiser.step()
                schedule.step()
                bar.update()
    return net.eval()
