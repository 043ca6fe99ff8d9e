"""Figures across runs: prior samples of several models side by side, one labelled row each
(the paper's Figure 4, left: the effect of beta)."""

from __future__ import annotations

import numpy as np
import torch
from PIL import Image, ImageDraw
from torch import Tensor

from gnm.train.images import grid, rgb, to_uint8

LABEL_WIDTH = 120


def labelled_row(images: Tensor, label: str) -> Tensor:
    """images [n, C, H, W] in [0, 1] -> one uint8 row [3, H', LABEL_WIDTH + W'] with `label` on its left."""
    row = grid(rgb(to_uint8(images)), nrow=len(images))
    canvas = Image.new("RGB", (LABEL_WIDTH + row.shape[2], row.shape[1]), (255, 255, 255))
    canvas.paste(Image.fromarray(row.permute(1, 2, 0).numpy()), (LABEL_WIDTH, 0))
    ImageDraw.Draw(canvas).text((4, row.shape[1] // 2 - 6), label, fill=(0, 0, 0))
    return torch.from_numpy(np.asarray(canvas).copy()).permute(2, 0, 1)


def stack_rows(rows: list[Tensor]) -> Tensor:
    """uint8 rows [3, H_i, W_i] -> one image [3, sum H_i, max W_i], white where a row is narrower."""
    width = max(r.shape[2] for r in rows)
    padded = [torch.nn.functional.pad(r, (0, width - r.shape[2]), value=255) for r in rows]
    return torch.cat(padded, dim=1)
