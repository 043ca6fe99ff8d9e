"""Image grids with boxes and labels drawn (torchvision's drawing utilities), saved as PNG."""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Sequence

import torch
import torch.nn.functional as F
from PIL import Image
from torchvision.utils import draw_bounding_boxes, make_grid

from scenegen.data import ShardDataset
from scenegen.errors import UserError

BOX_COLOR = "lime"


def annotate(
    image: torch.Tensor, boxes: torch.Tensor, labels: Sequence[str] | None = None,
    color: str | tuple[int, int, int] | Sequence[str] = BOX_COLOR, scale: int = 2,
) -> torch.Tensor:
    """One image float [C, H, W] in [0, 1] with boxes float [n, 4] (pixel xyxy) and labels drawn.

    Returns uint8 [3, scale*H, scale*W] (upscaled, nearest, so that labels stay readable).
    """
    big = F.interpolate(image[None].float().clamp(0, 1), scale_factor=scale, mode="nearest")[0]
    rgb = (big[:3].expand(3, -1, -1) * 255).round().to(torch.uint8)
    if len(boxes) == 0:
        return rgb
    return draw_bounding_boxes(rgb, boxes.float() * scale, labels=None if labels is None else list(labels), colors=color, width=1)


def save_grid(path: str | Path, images: Sequence[torch.Tensor], nrow: int | None = None) -> Path:
    """Save uint8 [3, H, W] images as one PNG grid, written atomically."""
    if not images:
        raise UserError("nothing to draw: no images")
    grid = make_grid(torch.stack(list(images)), nrow=nrow or math.ceil(math.sqrt(len(images))), padding=2, pad_value=128)
    return save_png(path, grid)


def save_png(path: str | Path, image: torch.Tensor) -> Path:
    """Write one uint8 image [C, H, W] (C = 1 or 3) as PNG, atomically (temp file, then rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    pixels = image.detach().cpu().permute(1, 2, 0).numpy()
    tmp = path.with_name(f".{path.stem}.tmp-{os.getpid()}.png")
    Image.fromarray(pixels[..., 0] if pixels.shape[-1] == 1 else pixels).save(tmp, format="PNG")
    os.replace(tmp, path)
    return path


def preview(folder: str | Path, out: str | Path, n: int = 64) -> Path:
    """The first n scenes of a split folder with their ground-truth boxes and classes drawn."""
    ds = ShardDataset(folder)
    tiles = []
    for i in range(min(n, len(ds))):
        image, target = ds[i]
        k = target["num_objects"]
        tiles.append(annotate(image, target["boxes"][:k], [str(int(c)) for c in target["labels"][:k]]))
    return save_grid(out, tiles)
