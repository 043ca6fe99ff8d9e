"""Pictures of what the model does: image grids and images with their inferred boxes."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torchvision.utils import make_grid

from scenegen.preview import annotate, save_png

BOX_COLOR = (255, 64, 64)


def to_uint8(images: torch.Tensor) -> torch.Tensor:
    """Float images [N, C, H, W] in [0, 1] -> uint8 [N, C, H, W] on the CPU."""
    return (images.detach().float().clamp(0, 1) * 255).round().to(torch.uint8).cpu()


def rgb(images: torch.Tensor) -> torch.Tensor:
    """uint8 [N, C, H, W] with C = 1 or 3 -> uint8 [N, 3, H, W]."""
    return images.expand(-1, 3, -1, -1) if images.shape[1] == 1 else images[:, :3]


def with_boxes(images: torch.Tensor, boxes: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
    """Draw each image's kept boxes.

    images: float [N, C, H, W] in [0, 1]; boxes: [N, K, 4] pixel xyxy; keep: bool [N, K].
    Returns uint8 [N, 3, H, W].
    """
    drawn = [
        annotate(image, image_boxes[image_keep], color=BOX_COLOR, scale=1)
        for image, image_boxes, image_keep in zip(images.detach().float().cpu(), boxes.detach().float().cpu(), keep.cpu())
    ]
    return torch.stack(drawn)


def grid(images: torch.Tensor, nrow: int | None = None) -> torch.Tensor:
    """Images [N, C, H, W] (uint8, or float in [0, 1]) -> one uint8 grid [3, H', W'],
    nrow images per row (default: a roughly square grid)."""
    as_uint8 = images if images.dtype == torch.uint8 else to_uint8(images)
    nrow = nrow or max(1, math.ceil(math.sqrt(len(images))))
    return make_grid(as_uint8, nrow=nrow, padding=2, pad_value=128)


def new_figure(width: float, height: float) -> tuple[Any, Any]:
    """A matplotlib (figure, axes) of the given size in inches, drawn off-screen (Agg)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt.subplots(figsize=(width, height))


def save_figure(fig: Any, path: Path, dpi: int = 100) -> Path:
    """Render a matplotlib figure and write it as PNG atomically (scenegen.preview.save_png); closes it."""
    import matplotlib.pyplot as plt

    fig.set_dpi(dpi)
    fig.canvas.draw()
    pixels = np.array(fig.canvas.buffer_rgba())[..., :3]  # a copy: the canvas goes with the figure
    plt.close(fig)
    return save_png(path, torch.from_numpy(pixels).permute(2, 0, 1))
