"""Image encoder (paper Table 6): x [B, C, 128, 128] -> f_x [B, C_f, 4, 4]."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from .config import ModelConfig
from .layers import conv_stack


class Encoder(nn.Module):
    """Strided conv stack, each conv followed by CELU and GroupNorm(1, C) (the last one too, as released)."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.net = conv_stack(cfg.channels, cfg.enc_channels, cfg.enc_kernels, strides=cfg.enc_strides)

    def forward(self, x: Tensor) -> Tensor:
        """x [B, C, H, W] -> f_x [B, feature_channels, grid, grid]."""
        return self.net(x.contiguous(memory_format=torch.channels_last))
