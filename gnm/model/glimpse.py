"""Glimpse decoder (paper Table 7): z_what -> object glimpse (appearance, plus alpha on Arrow)."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from .config import ModelConfig
from .layers import conv_stack


class GlimpseDecoder(nn.Module):
    """Sub-pixel conv stack from a 1x1 map of z_what to a g x g glimpse, then a sigmoid."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        channels = (*cfg.glimpse_channels, cfg.glimpse_out_channels)
        self.net = conv_stack(cfg.z_what_dim, channels, cfg.glimpse_kernels,
                              upscales=cfg.glimpse_upscales, final_norm_act=False)
        last_conv = [m for m in self.net if isinstance(m, nn.Conv2d)][-1]
        nn.init.constant_(last_conv.bias, cfg.glimpse_init_bias)

    def forward(self, what: Tensor) -> Tensor:
        """what [B, N, D] -> glimpses [B, N, C(+1 alpha), g, g] in (0, 1)."""
        b, n, d = what.shape
        out = self.net(what.reshape(b * n, d, 1, 1))
        return torch.sigmoid(out).view(b, n, *out.shape[1:])
