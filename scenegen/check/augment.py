"""Degrade scenes the way generated samples differ from real ones: warped, blurred, thin or thick, faint, noisy.

Works on a batch; `owners` (which ground-truth object each pixel belongs to) is warped with the image,
so that what the detector finds in the degraded image can still be labelled from ground truth.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F


@dataclass(frozen=True)
class AugmentSettings:
    """Ranges of the random degradations (each drawn per image, uniformly in the range).

    rotate: degrees; scale: factor range; shear: shear factor; elastic: displacement in pixels of a
    smooth random field with one control point per `elastic_cell` pixels; blur: gaussian sigma in
    pixels; thick/thin: probability of a 3x3 dilation / a soft thinning; peak: brightest ink value;
    gamma: intensity exponent range; noise: sigma of additive gaussian noise.
    """

    rotate: float = 12.0
    scale: tuple[float, float] = (0.85, 1.15)
    shear: float = 0.15
    elastic: float = 2.0
    elastic_cell: int = 16
    blur: tuple[float, float] = (0.0, 1.2)
    thick: float = 0.2
    thin: float = 0.2
    peak: tuple[float, float] = (0.6, 1.0)
    gamma: tuple[float, float] = (0.7, 1.5)
    noise: tuple[float, float] = (0.0, 0.04)


def _uniform(n: int, low: float, high: float, gen: torch.Generator) -> torch.Tensor:
    return low + (high - low) * torch.rand(n, generator=gen)


def warp_grid(n: int, size: int, s: AugmentSettings, gen: torch.Generator) -> torch.Tensor:
    """Sampling grid float [n, size, size, 2]: a random affine map about the image centre plus a smooth
    elastic field (grid_sample convention, align_corners=False)."""
    angle = _uniform(n, -s.rotate, s.rotate, gen) * math.pi / 180
    scale = _uniform(n, *s.scale, gen)
    shear = _uniform(n, -s.shear, s.shear, gen)
    cos, sin = torch.cos(angle) / scale, torch.sin(angle) / scale
    theta = torch.stack([torch.stack([cos, -sin + shear * cos, torch.zeros(n)], 1),
                         torch.stack([sin, cos + shear * sin, torch.zeros(n)], 1)], 1)
    grid = F.affine_grid(theta, [n, 1, size, size], align_corners=False)
    cells = max(size // s.elastic_cell, 2)
    field = torch.randn(n, 2, cells, cells, generator=gen) * _uniform(n, 0, s.elastic, gen)[:, None, None, None]
    field = F.interpolate(field, size=(size, size), mode="bicubic", align_corners=False)
    return grid + field.permute(0, 2, 3, 1) * (2 / size)


def gaussian_blur(images: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
    """Blur images float [n, 1, H, W] with a per-image gaussian sigma float [n] (pixels; 0 = none)."""
    radius = max(int(math.ceil(3 * float(sigma.max()))), 1)
    x = torch.arange(-radius, radius + 1, dtype=torch.float32)
    kernel = torch.exp(-x[None] ** 2 / (2 * sigma.clamp_min(1e-3)[:, None] ** 2))
    kernel = kernel / kernel.sum(1, keepdim=True)  # [n, k]
    n = len(images)
    rows = F.conv2d(images.transpose(0, 1), kernel[:, None, None, :], padding=(0, radius), groups=n)
    return F.conv2d(rows, kernel[:, None, :, None], padding=(radius, 0), groups=n).transpose(0, 1)


def augment(images: torch.Tensor, owners: torch.Tensor, s: AugmentSettings, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Degrade images float [n, 1, H, W] in [0, 1]; owners int64 [n, 1, H, W] warped alike (nearest).

    Returns (images float [n, 1, H, W] in [0, 1], owners int64 [n, 1, H, W]).
    """
    n, _, size, _ = images.shape
    grid = warp_grid(n, size, s, gen)
    images = F.grid_sample(images, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    owners = F.grid_sample(owners.float(), grid, mode="nearest", padding_mode="zeros", align_corners=False).long()
    pick = torch.rand(n, generator=gen)
    thick = (pick < s.thick)[:, None, None, None]
    thin = (pick > 1 - s.thin)[:, None, None, None]
    images = torch.where(thick, F.max_pool2d(images, 3, 1, 1), images)
    images = torch.where(thin, images * (1 - F.max_pool2d(1 - images, 3, 1, 1)).sqrt(), images)
    images = gaussian_blur(images, _uniform(n, *s.blur, gen))
    gamma = torch.exp(_uniform(n, math.log(s.gamma[0]), math.log(s.gamma[1]), gen))[:, None, None, None]
    images = images.clamp(0, 1) ** gamma * _uniform(n, *s.peak, gen)[:, None, None, None]
    images = images + torch.randn(images.shape, generator=gen) * _uniform(n, *s.noise, gen)[:, None, None, None]
    return images.clamp(0, 1), owners
