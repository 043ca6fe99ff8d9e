"""The paper's qualitative figures, each as one uint8 image grid [3, H', W'].

- `componentwise` (Figure 3): prior scenes built up one object at a time, back to front, with
  the z_where box of the object just added.
- `where_traversal` (Figure 5, left): one object of an inferred scene moved and scaled through
  its z_where, everything else fixed.
- `global_traversal` (Figure 5, right): z_g walked between two prior draws (the walk is in
  the standard-normal noise of every StructDRAW step, so every point is a prior draw).
- `resample_structure` (Figures 10-11): z_g fixed (inferred from an image, or drawn from the
  prior), the per-cell latents z_s drawn again from p(z_s | z_g) in every column.
- `slots` (GENESIS): each scene's mixture split into its K slots, mask times component.
"""

from __future__ import annotations

import torch
from torch import Tensor

from gnm.model import GNM
from gnm.model.baselines.genesis import Genesis
from gnm.model.distributions import NoiseFn, generator_noise
from gnm.model.structure import CellLatents
from gnm.train.images import grid, rgb, to_uint8, with_boxes

# z_where offsets of the traversal: [scale logit, aspect logit, tx, ty] per column.
WHERE_STEPS = 7


def _keep_only(cells: CellLatents, keep: Tensor) -> CellLatents:
    """The same latents with z_pres zeroed where keep [B, N] is False."""
    return CellLatents(pres=cells.pres * keep.to(cells.pres.dtype), where=cells.where, depth=cells.depth, what=cells.what)


def _back_to_front(cells: CellLatents) -> Tensor:
    """Cell indices [B, N] from the farthest present object (largest z_depth) to the nearest, absent cells last."""
    far = torch.where(cells.pres > 0.5, cells.depth, torch.full_like(cells.depth, -torch.inf))
    return far.argsort(dim=1, descending=True)


@torch.no_grad()
def componentwise(model: GNM, n: int, generator: torch.Generator) -> Tensor:
    """n prior scenes, one per row: the scene without objects, then each object added back to front
    (the box of the one just added drawn), then the final image."""
    glob = model.global_prior.generate(n, generator_noise(generator))
    cells = model.heads(glob.canvas).mode()
    present = cells.pres > 0.5
    order = _back_to_front(cells)
    keep = torch.zeros_like(present)
    columns = [rgb(to_uint8(model.decode(_keep_only(cells, keep), glob.z).image))]
    for k in range(int(present.sum(1).max())):
        added = torch.zeros_like(present).scatter_(1, order[:, k : k + 1], True) & present
        keep = keep | added
        scene = model.decode(_keep_only(cells, keep), glob.z)
        columns.append(with_boxes(scene.image, scene.boxes, added))
    columns.append(rgb(to_uint8(model.decode(cells, glob.z).image)))
    return grid(torch.stack(columns, dim=1).flatten(0, 1), nrow=len(columns))


@torch.no_grad()
def where_traversal(model: GNM, image: Tensor, span: float = 1.0) -> Tensor:
    """image [C, H, W]: its most confident object, one row per z_where dimension (scale, aspect,
    x, y), shifted from -span to +span around its inferred value in WHERE_STEPS columns."""
    params, glob, z_bg = model.posterior_latents(image[None])
    cells = params.mode()
    cell = int(params.pres_logit[0].argmax())
    offsets = torch.linspace(-span, span, WHERE_STEPS, device=image.device)
    repeat = lambda t: t.repeat(WHERE_STEPS, *(1,) * (t.dim() - 1))  # noqa: E731
    focus = torch.zeros(WHERE_STEPS, cells.pres.shape[1], dtype=torch.bool, device=image.device)
    focus[:, cell] = True
    rows = []
    for dim in range(cells.where.shape[-1]):
        where = repeat(cells.where)
        where[:, cell, dim] += offsets
        moved = CellLatents(pres=repeat(cells.pres), where=where, depth=repeat(cells.depth), what=repeat(cells.what))
        scene = model.decode(moved, repeat(glob.z), None if z_bg is None else repeat(z_bg))
        rows.append(with_boxes(scene.image, scene.boxes, focus))
    return grid(torch.cat(rows), nrow=WHERE_STEPS)


def _walk_noise(rows: int, columns: int, generator: torch.Generator) -> NoiseFn:
    """A NoiseFn for rows * columns scenes: per call, `rows` pairs of standard-normal draws, each pair
    joined by spherical interpolation in `columns` steps (so every point keeps a draw's typical norm)."""

    def noise(like: Tensor) -> Tensor:
        start, end = (torch.randn((rows, like.shape[-1]), generator=generator, device=like.device) for _ in range(2))
        t = torch.linspace(0, 1, columns, device=like.device)[None, :, None]
        cos = (start * end).sum(-1) / (start.norm(dim=-1) * end.norm(dim=-1))
        omega = torch.arccos(cos.clamp(-1 + 1e-6, 1 - 1e-6))[:, None, None]
        walk = (torch.sin((1 - t) * omega) * start[:, None] + torch.sin(t * omega) * end[:, None]) / torch.sin(omega)
        return walk.flatten(0, 1).to(like.dtype)  # [rows * columns, D]

    return noise


@torch.no_grad()
def global_traversal(model: GNM, rows: int, columns: int, generator: torch.Generator) -> Tensor:
    """`rows` walks through z_g, each between two prior draws in `columns` steps (one row each)."""
    glob = model.global_prior.generate(rows * columns, _walk_noise(rows, columns, generator))
    return grid(model.decode(model.heads(glob.canvas).mode(), glob.z).image, nrow=columns)


@torch.no_grad()
def resample_structure(model: GNM, columns: int, generator: torch.Generator, images: Tensor | None = None,
                       n: int = 4) -> Tensor:
    """One row per z_g: the first column is the image z_g was inferred from (images [B, C, H, W]) or the
    mode-decoded prior scene (images None: n prior draws); then `columns` draws of z_s ~ p(z_s | z_g)."""
    if images is None:
        glob = model.global_prior.generate(n, generator_noise(generator))
        first = model.decode(model.heads(glob.canvas).mode(), glob.z).image
    else:
        glob = model.posterior_latents(images)[1]
        first = images
    params = model.heads(glob.canvas)
    draws = [model.decode(params.sample(generator), glob.z).image for _ in range(columns)]
    return grid(torch.stack([first, *draws], dim=1).flatten(0, 1), nrow=columns + 1)


@torch.no_grad()
def slots(model: Genesis, generator: torch.Generator, images: Tensor | None = None, n: int = 4) -> Tensor:
    """One row per scene: the scene (images [B, C, H, W], decomposed by the posterior) and its
    reconstruction, or n prior samples; then each slot's mask x component, in the slots' order."""
    scene = model.decompose(images) if images is not None else model.sample(n, generator)
    first = [images, scene.image] if images is not None else [scene.image]
    columns = torch.stack([*first, *(scene.masks * scene.components).unbind(1)], dim=1)  # [B, cols, C, H, W]
    return grid(columns.flatten(0, 1), nrow=columns.shape[1])
