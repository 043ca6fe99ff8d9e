"""Fit the recogniser's classifier on crops read from generated train scenes (trainset.py), on the CPU."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from scenegen.check.detect import DetectSettings
from scenegen.check.recogniser import DigitEnsemble, DigitNet
from scenegen.check.trainset import TrainsetSettings, labelled_crops
from scenegen.datasets.mnist4_10 import SPEC as MNIST4_10, Mnist4_10Config
from scenegen.datasets.mnist_common import MnistResources

ELASTIC_CELLS = 4  # control points a side of the crop-level elastic field (one per 7 px of a 28 px crop)


@dataclass(frozen=True)
class FitSettings:
    """scenes: generated train scenes (MNIST-4 and MNIST-10 alike), in batches of scene_batch;
    epochs over their crops in minibatches of `batch`; one-cycle learning rate peaking at lr;
    jitter / elastic: crop-level random shift and scale (fraction of the crop) and elastic warp (pixels,
    digit-scale: the scene-level one in augment.py is nearly affine at this scale), drawn anew each
    epoch, so that the net learns writing styles beyond the train digits' own; nets: classifiers fitted
    on the same crops from different seeds, whose probabilities the recogniser averages (more is steadier
    on odd digits, at that many times the fit and classification time); seed: all randomness."""

    scenes: int = 8000
    scene_batch: int = 250
    epochs: int = 8
    batch: int = 128
    lr: float = 4e-3
    weight_decay: float = 5e-4
    jitter: float = 0.08
    elastic: float = 1.5
    nets: int = 1
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


def jitter(crops: torch.Tensor, amount: float, elastic: float, gen: torch.Generator) -> torch.Tensor:
    """Random shift (up to amount of the crop), scale (1 +- amount) and a smooth elastic field (ELASTIC_CELLS
    control points a side, displacements with a standard deviation of up to `elastic` pixels) of crops
    float [B, 1, 28, 28]."""
    n, size = len(crops), crops.shape[-1]
    theta = torch.zeros(n, 2, 3)
    scale = 1 + amount * (2 * torch.rand(n, generator=gen) - 1)
    theta[:, 0, 0], theta[:, 1, 1] = scale, scale
    theta[:, :, 2] = amount * (2 * torch.rand(n, 2, generator=gen) - 1) * 2
    grid = F.affine_grid(theta, list(crops.shape), align_corners=False)
    field = torch.randn(n, 2, ELASTIC_CELLS, ELASTIC_CELLS, generator=gen) * elastic * torch.rand(n, 1, 1, 1, generator=gen)
    field = F.interpolate(field, size=(size, size), mode="bicubic", align_corners=False) * (2 / size)  # pixels -> grid units
    return F.grid_sample(crops, grid + field.permute(0, 2, 3, 1), align_corners=False)


def fit_net(crops: torch.Tensor, labels: torch.Tensor, s: FitSettings, progress: bool) -> DigitEnsemble:
    """Train s.nets DigitNets on crops float [M, 1, 28, 28] with labels int64 [M] (AdamW, one-cycle
    schedule); net k shuffles and jitters with seed s.seed + 1 + k.

    The global torch RNG (weight init, dropout) is seeded here and restored afterwards, so fitting inside
    another program (e.g. a gnm training run) leaves its randomness alone; gradients are enabled
    even when the caller runs under torch.no_grad().
    """
    with torch.random.fork_rng(), torch.enable_grad():
        torch.manual_seed(s.seed)
        ensemble = DigitEnsemble(s.nets)
        for k, net in enumerate(ensemble.nets):
            _train(net, crops, labels, s, torch.Generator().manual_seed(s.seed + 1 + k), f"recogniser fit {k + 1}/{s.nets}", progress)
    return ensemble.eval()


def _train(net: DigitNet, crops: torch.Tensor, labels: torch.Tensor, s: FitSettings, gen: torch.Generator, desc: str,
           progress: bool) -> None:
    """Fit net in place; gen draws the minibatch order and the jitter."""
    net.to(memory_format=torch.channels_last)
    steps = s.epochs * (len(crops) // s.batch)
    optimiser = torch.optim.AdamW(net.parameters(), lr=s.lr, weight_decay=s.weight_decay)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimiser, max_lr=s.lr, total_steps=steps, pct_start=0.15)
    net.train()
    with tqdm(total=steps, desc=desc, unit="step", disable=not progress) as bar:
        for _ in range(s.epochs):
            order = torch.randperm(len(crops), generator=gen)
            for i in range(len(crops) // s.batch):
                index = order[i * s.batch : (i + 1) * s.batch]
                loss = F.cross_entropy(net(jitter(crops[index], s.jitter, s.elastic, gen)), labels[index])
                optimiser.zero_grad()
                loss.backward()
                optimiser.step()
                schedule.step()
                bar.update()
