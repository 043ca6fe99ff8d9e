"""Background branch (Arrow): q(z_bg | f_x), p(z_bg | z_g) and the background decoder (Table 8)."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from .config import ModelConfig
from .distributions import positive_std
from .layers import conv_stack, mlp


class Background(nn.Module):
    """Owns the three background networks; every method returns plain tensors."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.std_floor = cfg.std_floor
        self.posterior_net = mlp(cfg.num_cells * cfg.feature_channels, cfg.bg_enc_mlp, 2 * cfg.z_bg_dim)
        self.prior_net = mlp(cfg.z_g_dim, cfg.bg_prior_mlp, 2 * cfg.z_bg_dim)
        self.decoder = conv_stack(cfg.z_bg_dim, (*cfg.bg_channels, cfg.channels), cfg.bg_kernels,
                                  upscales=cfg.bg_upscales, final_norm_act=False)

    def _gaussian(self, raw: Tensor) -> tuple[Tensor, Tensor]:
        mu, std_raw = raw.float().chunk(2, dim=-1)
        return mu, positive_std(std_raw, self.std_floor)

    def posterior(self, f_x: Tensor) -> tuple[Tensor, Tensor]:
        """f_x [B, C_f, G, G] -> q(z_bg | f_x) mean, std [B, z_bg_dim]."""
        return self._gaussian(self.posterior_net(f_x.flatten(1)))

    def prior(self, z_g: Tensor) -> tuple[Tensor, Tensor]:
        """z_g [B, z_g_dim] -> p(z_bg | z_g) mean, std [B, z_bg_dim]."""
        return self._gaussian(self.prior_net(z_g))

    def decode(self, z_bg: Tensor) -> Tensor:
        """z_bg [B, z_bg_dim] -> background image [B, C, H, W] in (0, 1)."""
        return torch.sigmoid(self.decoder(z_bg[:, :, None, None]))
