"""Per-cell structure latents z_s = [z_pres, z_where, z_depth, z_what] and the heads that give them.

One head network serves both p(z_s | f) (applied to the StructDRAW canvas) and q(z_s | f_x)
(applied to the image encoding), as in the paper (appendix D, "we share the parameter").

z_where is kept raw, [s, r, tx, ty], and turned into a box by `where_to_box`:
width = sigmoid(s) / sqrt(exp(r)), height = sigmoid(s) * sqrt(exp(r)) (fractions of the image),
centre = (cell centre + tanh(t)) / grid (fractions; tanh lets a box move up to one cell).
Cells are numbered row-major: cell n = row * grid + col; tx moves along columns (x), ty rows (y).
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import torch
from torch import Tensor, nn

from .config import ModelConfig
from .distributions import generator_noise, positive_std, relaxed_bernoulli_rsample
from .layers import conv_stack

WHERE_DIM = 4
# Smallest box side (fraction of the image): keeps the inverse-STN scale 1/size finite.
MIN_BOX_SIZE = 1e-3
# |r| is clamped before exp so that no box side overflows (|r| <= 10 still allows a 22000:1 aspect).
RATIO_LOGIT_LIMIT = 10.0


@dataclass
class CellLatents:
    """Values of the per-cell latents for a batch."""

    pres: Tensor   # [B, N] in [0, 1] (relaxed sample) or {0, 1} (mode)
    where: Tensor  # [B, N, 4] raw [s, r, tx, ty]
    depth: Tensor  # [B, N]
    what: Tensor   # [B, N, z_what_dim]


@dataclass
class CellParams:
    """Distribution parameters of the per-cell latents: Bernoulli logit and Gaussian mean/std."""

    pres_logit: Tensor  # [B, N], bounded by +-pres_logit_scale
    where_mu: Tensor    # [B, N, 4]
    where_std: Tensor   # [B, N, 4]
    depth_mu: Tensor    # [B, N]
    depth_std: Tensor   # [B, N]
    what_mu: Tensor     # [B, N, D]
    what_std: Tensor    # [B, N, D]

    def chunk(self, parts: int) -> list[CellParams]:
        """Split every field along the batch dimension."""
        split = {f.name: getattr(self, f.name).chunk(parts, dim=0) for f in fields(self)}
        return [CellParams(**{name: chunks[i] for name, chunks in split.items()}) for i in range(parts)]

    def rsample(self, tau: float) -> CellLatents:
        """Reparameterised posterior sample: relaxed Bernoulli z_pres at temperature tau, Gaussians."""
        return CellLatents(
            pres=relaxed_bernoulli_rsample(self.pres_logit, tau),
            where=self.where_mu + self.where_std * torch.randn_like(self.where_std),
            depth=self.depth_mu + self.depth_std * torch.randn_like(self.depth_std),
            what=self.what_mu + self.what_std * torch.randn_like(self.what_std),
        )

    def sample(self, generator: torch.Generator | None = None) -> CellLatents:
        """A draw for generation: z_pres a discrete Bernoulli draw, the Gaussians around their means,
        all from `generator` (the global RNG if None)."""
        noise = generator_noise(generator)
        logit = self.pres_logit
        uniform = torch.rand(logit.shape, generator=generator, device=generator.device if generator is not None else logit.device)
        return CellLatents(
            pres=(uniform.to(logit.device) < torch.sigmoid(logit)).to(logit.dtype),
            where=self.where_mu + self.where_std * noise(self.where_std),
            depth=self.depth_mu + self.depth_std * noise(self.depth_std),
            what=self.what_mu + self.what_std * noise(self.what_std),
        )

    def mode(self) -> CellLatents:
        """Mode: z_pres = [logit > 0], Gaussian means (used for generation and inference display)."""
        return CellLatents(
            pres=(self.pres_logit > 0).to(self.pres_logit.dtype),
            where=self.where_mu, depth=self.depth_mu, what=self.what_mu,
        )


class StructureHeads(nn.Module):
    """Feature map [B, C_f, G, G] -> CellParams: `head_layers` 1x1 conv blocks, then one 1x1 output conv."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.cfg = cfg
        d = cfg.z_what_dim
        # output channel groups: pres logit, where mu, where std, depth mu, depth std, what mu, what std
        self.split_sizes = (1, WHERE_DIM, WHERE_DIM, 1, 1, d, d)
        hidden = (cfg.head_hidden,) * cfg.head_layers
        self.trunk = conv_stack(cfg.feature_channels, hidden, (1,) * cfg.head_layers)
        self.out = nn.Conv2d(cfg.head_hidden, sum(self.split_sizes), 1)
        self._init_where()

    @torch.no_grad()
    def _init_where(self) -> None:
        """Start with near-input-independent boxes of scale logit init_scale_logit, centred on their cells."""
        where = slice(1, 1 + WHERE_DIM)
        self.out.weight[where].uniform_(-0.01, 0.01)
        self.out.bias[where].zero_()
        self.out.bias[1] = self.cfg.init_scale_logit

    def forward(self, feature: Tensor) -> CellParams:
        """feature [B, C_f, G, G] -> CellParams with N = G*G cells in row-major order."""
        raw = self.out(self.trunk(feature)).float().flatten(2).transpose(1, 2)  # [B, N, K], float32 under autocast
        pres, w_mu, w_std, d_mu, d_std, what_mu, what_std = raw.split(self.split_sizes, dim=-1)
        floor = self.cfg.std_floor
        return CellParams(
            pres_logit=self.cfg.pres_logit_scale * torch.tanh(pres.squeeze(-1)),
            where_mu=w_mu, where_std=positive_std(w_std, floor),
            depth_mu=d_mu.squeeze(-1), depth_std=positive_std(d_std.squeeze(-1), floor),
            what_mu=what_mu, what_std=positive_std(what_std, floor),
        )

    def prior_and_posterior(self, canvas: Tensor, f_x: Tensor) -> tuple[CellParams, CellParams]:
        """p(z_s | f) and q(z_s | f_x) from one batched pass of the shared network."""
        prior, posterior = self(torch.cat([canvas, f_x], dim=0)).chunk(2)
        return prior, posterior


def cell_centres(grid: int, device: torch.device, dtype: torch.dtype) -> Tensor:
    """[G*G, 2] (col, row) indices + 0.5 of each cell, row-major."""
    idx = torch.arange(grid, device=device, dtype=dtype) + 0.5
    rows, cols = torch.meshgrid(idx, idx, indexing="ij")
    return torch.stack([cols.flatten(), rows.flatten()], dim=-1)


def where_to_box(where: Tensor, grid: int) -> tuple[Tensor, Tensor]:
    """Raw z_where [B, N, 4] -> (centre [B, N, 2] (x, y), size [B, N, 2] (w, h)), fractions of the image."""
    scale = torch.sigmoid(where[..., 0])
    root_ratio = torch.exp(0.5 * where[..., 1].clamp(-RATIO_LOGIT_LIMIT, RATIO_LOGIT_LIMIT))
    size = torch.stack([scale / root_ratio, scale * root_ratio], dim=-1).clamp(min=MIN_BOX_SIZE)
    centre = (cell_centres(grid, where.device, where.dtype) + torch.tanh(where[..., 2:])) / grid
    return centre, size


def box_pixels(centre: Tensor, size: Tensor, image_size: int) -> Tensor:
    """(centre, size) fractions -> [..., 4] pixel boxes (x_min, y_min, x_max, y_max), pixel k spanning [k, k+1]."""
    return torch.cat([centre - size / 2, centre + size / 2], dim=-1) * image_size
