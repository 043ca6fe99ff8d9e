"""Renderer (paper Algorithm 2): inverse spatial transformer and compositing of glimpses.

Coordinate convention. Boxes are (centre, size) in fractions of the image; pixel k spans
[k, k + 1]. The inverse STN is bilinear resampling with zero padding and align_corners=False
(ALIGN_CORNERS): normalised coordinates -1 and +1 are the outer edges of the border pixels,
for the image and the glimpse alike, so a glimpse's outer edges land exactly on its box's
edges and the pixel box is (centre -+ size / 2) * image_size with no half-pixel shift.
Outside its box a glimpse contributes zero.

Implementation. A box transform has no rotation or shear, so bilinear resampling separates
into rows and columns: placed = R_y @ glimpse @ R_x^T, where R_y [H, g] and R_x [W, g] hold the
bilinear ("hat") weights of each output row / column on the glimpse's rows / columns. This is
exactly F.grid_sample(glimpse, F.affine_grid(theta), "bilinear", "zeros", align_corners=False)
for theta = [[1/w, 0, (1 - 2 cx)/w], [0, 1/h, (1 - 2 cy)/h]] (the tests check it against that
call), gradients included, but costs two small batched matmuls for all cells and channels at
once instead of a full-resolution sampling grid. The summing compositor folds the sum over
cells into the matmul contraction and never builds per-cell full-size maps.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor

from .config import ModelConfig

ALIGN_CORNERS = False
# Added to the sum of the depth weights before normalising (pixels no glimpse covers).
_WEIGHT_EPS = 1e-6


def box_theta(centre: Tensor, size: Tensor) -> Tensor:
    """[..., 2] box centre / size fractions -> [..., 2, 3] affine_grid theta mapping image to glimpse coordinates."""
    inv = 1.0 / size
    shift = (1.0 - 2.0 * centre) * inv
    zero = torch.zeros_like(inv[..., 0])
    rows = [inv[..., 0], zero, shift[..., 0], zero, inv[..., 1], shift[..., 1]]
    return torch.stack(rows, dim=-1).unflatten(-1, (2, 3))


def hat_weights(centre: Tensor, size: Tensor, glimpse_size: int, image_size: int) -> Tensor:
    """Bilinear weights of output pixels on glimpse pixels along one axis: [B, N] -> [B, N, image_size, g].

    Output pixel i has normalised centre u_i = (2i + 1) / image_size - 1; it reads the glimpse at
    normalised (u_i - (2 centre - 1)) / size, i.e. at glimpse pixel coordinate
    p_i = (that + 1) * g / 2 - 1/2 (align_corners=False), with weight max(0, 1 - |p_i - a|) on pixel a.
    """
    u = torch.arange(image_size, device=centre.device, dtype=centre.dtype).mul_(2.0 / image_size).add_(
        1.0 / image_size - 1.0)
    src = ((u - (2.0 * centre[..., None] - 1.0)) / size[..., None] + 1.0) * (glimpse_size / 2.0) - 0.5
    taps = torch.arange(glimpse_size, device=centre.device, dtype=centre.dtype)
    return torch.relu(1.0 - (src[..., None] - taps).abs())


@dataclass
class BoxResampler:
    """Inverse STN for a batch of boxes; built once, shared by every map placed with the same boxes."""

    r_y: Tensor  # [B, N, H, g] row weights
    r_x: Tensor  # [B, N, W, g] column weights

    @classmethod
    def from_boxes(cls, centre: Tensor, size: Tensor, glimpse_size: int, image_size: int) -> BoxResampler:
        """centre, size: [B, N, 2] (x, y) fractions of the image."""
        return cls(r_y=hat_weights(centre[..., 1], size[..., 1], glimpse_size, image_size),
                   r_x=hat_weights(centre[..., 0], size[..., 0], glimpse_size, image_size))

    def place(self, maps: Tensor) -> Tensor:
        """Each cell's maps into its box: [B, N, K, g, g] -> [B, N, H, K, W].

        The channel axis comes out between rows and columns, the layout the two matmuls produce
        without copies: rows first (R_y @ maps, all K channels in one matmul), then columns.
        """
        b, n, k, g, _ = maps.shape
        h, w = self.r_y.shape[2], self.r_x.shape[2]
        rows = self.r_y @ maps.transpose(2, 3).reshape(b, n, g, k * g)           # [B, N, H, K*g]
        return (rows.view(b, n, h * k, g) @ self.r_x.transpose(-1, -2)).view(b, n, h, k, w)

    def place_sum(self, maps: Tensor) -> Tensor:
        """sum_n place(maps)[:, n] without per-cell full-size maps: [B, N, K, g, g] -> [B, K, H, W].

        The sum over cells becomes part of one matmul contraction, over (cell, glimpse row).
        """
        b, n, k, g, _ = maps.shape
        h, w = self.r_y.shape[2], self.r_x.shape[2]
        cols = maps.reshape(b, n, k * g, g) @ self.r_x.transpose(-1, -2)          # [B, N, K*g, W]
        stacked_rows = self.r_y.transpose(1, 2).reshape(b, 1, h, n * g)            # [B, 1, H, N*g]
        stacked_cols = cols.view(b, n, k, g, w).transpose(1, 2).reshape(b, k, n * g, w)
        return stacked_rows @ stacked_cols


def composite_sum(glimpses: Tensor, pres: Tensor, depth: Tensor, boxes: BoxResampler,
                  background: Tensor | None, alpha_force: float) -> Tensor:
    """MNIST rendering: x = sum_n STN^-1(o_n) * z_pres_n (no alpha, no depth, no background).

    glimpses [B, N, C, g, g]; pres, depth [B, N]; returns [B, C, H, W].
    """
    del depth, background, alpha_force  # not used by this compositor (same signature as composite_alpha)
    return boxes.place_sum(glimpses * pres[:, :, None, None, None])


def composite_alpha(glimpses: Tensor, pres: Tensor, depth: Tensor, boxes: BoxResampler,
                    background: Tensor | None, alpha_force: float) -> Tensor:
    """Arrow rendering with alpha, depth-ordered responsibilities and a background.

    With a_n = alpha_n * z_pres_n (alpha_n := alpha_force over the whole box when alpha_force >= 0):
      A_n = STN^-1(a_n),  w_n = A_n * sigmoid(-z_depth_n),  gamma_n = w_n / sum_m w_m
      fg  = sum_n gamma_n * STN^-1(a_n * o_n),  M = min(sum_n A_n, 1),  x = fg + (1 - M) * bg
    (STN^-1(a_n * sigmoid(-depth_n)) = sigmoid(-depth_n) * A_n, so colour and coverage are the
    only maps to place.) glimpses [B, N, C + 1, g, g] -> [B, C, H, W].
    """
    colour, alpha = glimpses[:, :, :-1], glimpses[:, :, -1:]
    if alpha_force >= 0:
        alpha = torch.full_like(alpha, alpha_force)
    a = alpha * pres[:, :, None, None, None]
    colour_img = boxes.place(a * colour)                                     # [B, N, H, C, W]
    cover = boxes.place(a)                                                   # [B, N, H, 1, W]
    weight = cover * torch.sigmoid(-depth)[:, :, None, None, None]
    fg = (colour_img * weight).sum(dim=1) / (weight.sum(dim=1) + _WEIGHT_EPS)  # [B, H, C, W]
    if background is not None:
        mask = cover.sum(dim=1).clamp(max=1.0)
        fg = fg + (1.0 - mask) * background.transpose(1, 2)
    return fg.transpose(1, 2)


Compositor = Callable[[Tensor, Tensor, Tensor, BoxResampler, "Tensor | None", float], Tensor]
COMPOSITORS: dict[bool, Compositor] = {False: composite_sum, True: composite_alpha}  # keyed by glimpse_alpha


class Renderer:
    """Parameter-free renderer picking its compositor from the config."""

    def __init__(self, cfg: ModelConfig) -> None:
        self.image_size = cfg.image_size
        self.glimpse_size = cfg.glimpse_size
        self.composite = COMPOSITORS[cfg.glimpse_alpha]

    def __call__(self, glimpses: Tensor, pres: Tensor, depth: Tensor, centre: Tensor, size: Tensor,
                 background: Tensor | None, alpha_force: float) -> Tensor:
        """Composite the glimpses (and background) into images [B, C, H, W]."""
        boxes = BoxResampler.from_boxes(centre, size, self.glimpse_size, self.image_size)
        return self.composite(glimpses, pres, depth, boxes, background, alpha_force)
