"""z_where parametrisation, the inverse spatial transformer and compositing."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from gnm.model import ModelConfig
from gnm.model.render import ALIGN_CORNERS, BoxResampler, Renderer, box_theta, composite_alpha
from gnm.model.structure import box_pixels, where_to_box


def raw_where_for_box(centre: tuple[float, float], size: tuple[float, float], cell: tuple[int, int],
                      grid: int) -> torch.Tensor:
    """Invert the z_where parametrisation: raw [s, r, tx, ty] giving the box for cell (col, row)."""
    w, h = size
    scale, ratio = math.sqrt(w * h), h / w
    tx = math.atanh(centre[0] * grid - (cell[0] + 0.5))
    ty = math.atanh(centre[1] * grid - (cell[1] + 0.5))
    return torch.tensor([math.log(scale / (1 - scale)), math.log(ratio), tx, ty])


def test_where_parametrisation() -> None:
    grid = 4
    where = torch.zeros(1, grid * grid, 4)
    where[0, :, 0] = 0.0        # sigmoid(0) = 0.5
    where[0, 5, 1] = math.log(4.0)   # ratio 4: w = 0.5 / 2, h = 0.5 * 2
    where[0, 6, 2] = 50.0       # tanh -> +1: one cell to the right
    where[0, 7, 3] = -50.0      # one cell up
    centre, size = where_to_box(where, grid)
    cells = torch.tensor([[c + 0.5, r + 0.5] for r in range(grid) for c in range(grid)]) / grid
    torch.testing.assert_close(centre[0, :5], cells[:5])
    torch.testing.assert_close(size[0, 0], torch.tensor([0.5, 0.5]))
    torch.testing.assert_close(size[0, 5], torch.tensor([0.25, 1.0]))
    torch.testing.assert_close(centre[0, 6], cells[6] + torch.tensor([1 / grid, 0.0]))
    torch.testing.assert_close(centre[0, 7], cells[7] - torch.tensor([0.0, 1 / grid]))
    # cell 6 is row 1, col 2 (row-major)
    torch.testing.assert_close(cells[6], torch.tensor([2.5, 1.5]) / grid)


def test_where_to_box_inverts_and_gives_pixel_boxes() -> None:
    raw = raw_where_for_box((0.3, 0.6), (0.25, 0.125), cell=(1, 2), grid=4)
    centre, size = where_to_box(raw.view(1, 1, 4).expand(1, 16, 4).clone(), grid=4)
    torch.testing.assert_close(centre[0, 9], torch.tensor([0.3, 0.6]))
    torch.testing.assert_close(size[0, 9], torch.tensor([0.25, 0.125]))
    torch.testing.assert_close(box_pixels(centre[0, 9], size[0, 9], 128), torch.tensor([22.4, 68.8, 54.4, 84.8]))


def test_box_sizes_are_bounded_for_extreme_raw_values() -> None:
    centre, size = where_to_box(torch.tensor([[[-1e4, 1e4, 1e4, -1e4]]]).expand(1, 16, 4), grid=4)
    assert torch.isfinite(centre).all() and torch.isfinite(size).all() and (size > 0).all()


def test_resampler_equals_affine_grid_and_grid_sample_with_gradients() -> None:
    torch.manual_seed(0)
    b, n, k, g, hw = 2, 3, 2, 8, 24
    maps = torch.rand(b, n, k, g, g, dtype=torch.float64, requires_grad=True)
    centre = torch.rand(b, n, 2, dtype=torch.float64, requires_grad=True)
    size = (0.1 + 0.6 * torch.rand(b, n, 2, dtype=torch.float64)).requires_grad_(True)
    ours = BoxResampler.from_boxes(centre, size, g, hw).place(maps).transpose(2, 3)  # -> [B, N, K, H, W]
    grid = F.affine_grid(box_theta(centre, size).view(b * n, 2, 3), [b * n, k, hw, hw], align_corners=ALIGN_CORNERS)
    ref = F.grid_sample(maps.view(b * n, k, g, g), grid, mode="bilinear", padding_mode="zeros",
                        align_corners=ALIGN_CORNERS).view(b, n, k, hw, hw)
    torch.testing.assert_close(ours, ref)
    weights = torch.randn_like(ref)
    grads_ours = torch.autograd.grad((ours * weights).sum(), [maps, centre, size])
    grads_ref = torch.autograd.grad((ref * weights).sum(), [maps, centre, size])
    for a, r in zip(grads_ours, grads_ref, strict=True):
        torch.testing.assert_close(a, r)
    summed = BoxResampler.from_boxes(centre, size, g, hw).place_sum(maps)
    torch.testing.assert_close(summed, ref.sum(1))


def square_scene(cfg: ModelConfig, raw_where: torch.Tensor, cell: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Render one all-ones glimpse in `cell` (all other cells absent); return (image, its pixel box)."""
    n = cfg.num_cells
    glimpses = torch.ones(1, n, cfg.glimpse_out_channels, cfg.glimpse_size, cfg.glimpse_size)
    pres = torch.zeros(1, n)
    pres[0, cell] = 1.0
    where = torch.zeros(1, n, 4)
    where[0, cell] = raw_where
    centre, size = where_to_box(where, cfg.grid)
    image = Renderer(cfg)(glimpses, pres, torch.zeros(1, n), centre, size, None, -1.0)
    return image[0, 0], box_pixels(centre, size, cfg.image_size)[0, cell]


@pytest.mark.parametrize("cfg", [ModelConfig(), ModelConfig.arrow()], ids=["mnist-sum", "arrow-alpha"])
def test_a_square_glimpse_lands_in_its_pixel_box(cfg: ModelConfig) -> None:
    raw = raw_where_for_box((0.3, 0.6), (0.25, 0.125), cell=(1, 2), grid=cfg.grid)
    image, box = square_scene(cfg, raw, cell=2 * cfg.grid + 1)
    torch.testing.assert_close(box, torch.tensor([22.4, 68.8, 54.4, 84.8]))
    x0, y0, x1, y1 = box.tolist()
    ys, xs = torch.meshgrid(torch.arange(128.0) + 0.5, torch.arange(128.0) + 0.5, indexing="ij")  # pixel centres
    inside = (xs > x0 + 1) & (xs < x1 - 1) & (ys > y0 + 1) & (ys < y1 - 1)
    outside = (xs < x0 - 1) | (xs > x1 + 1) | (ys < y0 - 1) | (ys > y1 + 1)
    assert image[inside].min() > 0.999
    assert image[outside].abs().max() == 0
    # bilinear edges: total mass equals the box area to within a pixel's width along the border
    assert image.sum().item() == pytest.approx((x1 - x0) * (y1 - y0), abs=(x1 - x0) + (y1 - y0))


def test_summing_renderer_adds_overlapping_glimpses() -> None:
    cfg = ModelConfig()
    n = cfg.num_cells
    glimpses = torch.full((1, n, 1, 32, 32), 0.25)
    centre = torch.full((1, n, 2), 0.5)
    size = torch.full((1, n, 2), 0.5)
    pres = torch.ones(1, n)
    image = Renderer(cfg)(glimpses, pres, torch.zeros(1, n), centre, size, None, -1.0)
    assert image[0, 0, 64, 64].item() == pytest.approx(0.25 * n)
    image_half = Renderer(cfg)(glimpses, pres * 0.5, torch.zeros(1, n), centre, size, None, -1.0)
    torch.testing.assert_close(image_half, image * 0.5)


def alpha_scene(depth_front: float, alpha: float, alpha_force: float = -1.0) -> torch.Tensor:
    """Two overlapping opaque-ish squares (red in cell 0, blue in cell 1) on a green background."""
    n, g = 16, 8
    glimpses = torch.zeros(1, n, 4, g, g)
    glimpses[0, 0, 0] = 1.0   # red
    glimpses[0, 1, 2] = 1.0   # blue
    glimpses[0, :, 3] = alpha
    pres = torch.zeros(1, n)
    pres[0, :2] = 1.0
    depth = torch.zeros(1, n)
    depth[0, 0], depth[0, 1] = depth_front, -depth_front
    centre = torch.tensor([[0.4, 0.5], [0.6, 0.5]]).expand(n // 2, 2, 2).reshape(1, n, 2).clone()
    size = torch.full((1, n, 2), 0.4)
    background = torch.zeros(1, 3, 32, 32)
    background[:, 1] = 1.0
    boxes = BoxResampler.from_boxes(centre, size, g, 32)
    return composite_alpha(glimpses, pres, depth, boxes, background, alpha_force)[0]


def test_alpha_compositing_orders_by_depth_and_shows_the_background() -> None:
    front_red = alpha_scene(depth_front=-8.0, alpha=1.0)
    back_red = alpha_scene(depth_front=8.0, alpha=1.0)
    overlap, red_only, empty = (16, 16), (16, 8), (2, 2)
    torch.testing.assert_close(front_red[:, overlap[0], overlap[1]], torch.tensor([1.0, 0.0, 0.0]), atol=1e-3, rtol=0)
    torch.testing.assert_close(back_red[:, overlap[0], overlap[1]], torch.tensor([0.0, 0.0, 1.0]), atol=1e-3, rtol=0)
    torch.testing.assert_close(front_red[:, red_only[0], red_only[1]], torch.tensor([1.0, 0.0, 0.0]))
    torch.testing.assert_close(front_red[:, empty[0], empty[1]], torch.tensor([0.0, 1.0, 0.0]))


def test_alpha_blends_with_the_background_and_alpha_force_overrides_it() -> None:
    half = alpha_scene(depth_front=0.0, alpha=0.5)
    torch.testing.assert_close(half[:, 16, 8], torch.tensor([0.5, 0.5, 0.0]))
    forced = alpha_scene(depth_front=0.0, alpha=0.0, alpha_force=0.9)
    torch.testing.assert_close(forced[:, 16, 8], torch.tensor([0.9, 0.1, 0.0]))
