"""D-Steps: how many training steps a real-vs-generated classifier needs to reach 90% held-out accuracy.

Higher is better for the generator. The classifier, optimiser and batch recipe are fixed (below) and
the same for every model, so numbers are comparable between models of one dataset. A run that never
reaches the target accuracy is reported as censored at the step cap.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import torch
from torch import Tensor, nn

from gnm.train.images import new_figure, save_figure

# A source of images: given a batch size and a torch.Generator, returns float [B, C, H, W] in [0, 1].
ImageSource = Callable[[int, torch.Generator], Tensor]


@dataclass(frozen=True)
class DStepsConfig:
    """The fixed protocol. batch: real + generated images per step (half each)."""

    target_accuracy: float = 0.9
    max_steps: int = 20000
    eval_every: int = 50
    batch: int = 32
    held_out: int = 500  # images per class in the fixed held-out set
    lr: float = 1e-4
    channels: tuple[int, ...] = (32, 64, 128, 128)


@dataclass
class DStepsResult:
    """steps: first step whose held-out accuracy >= target (or max_steps when censored)."""

    steps: int
    censored: bool
    curve: list[tuple[int, float]] = field(default_factory=list)


def discriminator(in_channels: int, channels: tuple[int, ...]) -> nn.Module:
    """Strided 4x4 convs with LeakyReLU, global average pool, one logit ("generated")."""
    layers: list[nn.Module] = []
    for out in channels:
        layers += [nn.Conv2d(in_channels, out, 4, stride=2, padding=1), nn.LeakyReLU(0.2)]
        in_channels = out
    return nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(in_channels, 1))


def sample_rows(images: Tensor) -> ImageSource:
    """An ImageSource drawing random rows (with replacement) of a fixed tensor [N, C, H, W]."""

    def draw(n: int, generator: torch.Generator) -> Tensor:
        return images[torch.randint(len(images), (n,), generator=generator)]

    return draw


def d_steps(real: ImageSource, fake: ImageSource, seed: int = 0, cfg: DStepsConfig = DStepsConfig(),
            device: str | torch.device = "cpu") -> DStepsResult:
    """Train a fresh classifier on fresh batches of real (label 0) and generated (label 1) images."""
    generator = torch.Generator().manual_seed(seed)
    held_x = torch.cat([real(cfg.held_out, generator), fake(cfg.held_out, generator)]).to(device)
    held_y = torch.cat([torch.zeros(cfg.held_out), torch.ones(cfg.held_out)]).to(device)
    torch.manual_seed(seed)
    net = discriminator(held_x.shape[1], cfg.channels).to(device)
    optimiser = torch.optim.Adam(net.parameters(), lr=cfg.lr)
    loss_fn = nn.BCEWithLogitsLoss()
    half = cfg.batch // 2
    y = torch.cat([torch.zeros(half), torch.ones(half)]).to(device)
    curve = []
    for step in range(1, cfg.max_steps + 1):
        x = torch.cat([real(half, generator), fake(half, generator)]).to(device)
        optimiser.zero_grad(set_to_none=True)
        loss_fn(net(x).squeeze(1), y).backward()
        optimiser.step()
        if step % cfg.eval_every == 0:
            accuracy = held_out_accuracy(net, held_x, held_y)
            curve.append((step, accuracy))
            if accuracy >= cfg.target_accuracy:
                return DStepsResult(step, False, curve)
    return DStepsResult(cfg.max_steps, True, curve)


@torch.no_grad()
def held_out_accuracy(net: nn.Module, x: Tensor, y: Tensor, chunk: int = 256) -> float:
    """Fraction of x [N, C, H, W] classified as y [N] (logit > 0 means generated)."""
    net.eval()
    correct = sum(int(((net(x[i : i + chunk]).squeeze(1) > 0).float() == y[i : i + chunk]).sum()) for i in range(0, len(x), chunk))
    net.train()
    return correct / len(x)


def mean_d_steps(real: ImageSource, fake: ImageSource, seeds: tuple[int, ...] = (0, 1, 2),
                 cfg: DStepsConfig = DStepsConfig(), device: str | torch.device = "cpu") -> tuple[float, list[DStepsResult]]:
    """D-Steps averaged over seeds (censored runs count at the cap), with every run's result."""
    results = [d_steps(real, fake, seed, cfg, device) for seed in seeds]
    return sum(r.steps for r in results) / len(results), results


def plot_curves(results: Sequence[DStepsResult], target: float, path: Path) -> Path:
    """Held-out accuracy against the step, one line per seed (results[i] is seed i), as a PNG."""
    fig, ax = new_figure(6, 4)
    for seed, result in enumerate(results):
        steps, accuracy = zip(*result.curve) if result.curve else ((), ())
        ax.plot(steps, accuracy, marker=".", linewidth=1, label=f"seed {seed}" + (" (censored)" if result.censored else ""))
    ax.axhline(target, color="grey", linestyle="--", linewidth=1)
    ax.set(xlabel="classifier step", ylabel="held-out accuracy", ylim=(0.0, 1.0), title="D-Steps")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    return save_figure(fig, path)
