"""VAE baseline (paper appendix D.2, Table 10): one Gaussian latent z ~ N(0, I) decoded to the image."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ..config import ModelConfig
from ..distributions import NoiseFn, positive_std
from ..layers import conv_stack
from ..structdraw import GlobalLatent
from .decoders import image_decoder
from .image_vae import ImageVAE

# count_parameters key -> attribute
COMPONENTS = {"encoder": "encoder", "latent": "latent", "decoder": "decoder"}


class GaussianLatent(nn.Module):
    """q(z | f_x) = N(CNN(f_x)): a 3x3 conv (vae_hidden) and a grid x grid conv to [B, 2 * vae_z_dim, 1, 1];
    p(z) = N(0, I). The decoder input ("canvas") is z as a 1 x 1 map."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.std_floor, self.z_dim = cfg.std_floor, cfg.vae_z_dim
        self.posterior_net = nn.Sequential(
            *conv_stack(cfg.feature_channels, (cfg.vae_hidden,), (3,)),
            nn.Conv2d(cfg.vae_hidden, 2 * cfg.vae_z_dim, cfg.grid),
        )

    def infer(self, f_x: Tensor, noise: NoiseFn) -> GlobalLatent:
        """f_x [B, C_f, G, G] -> z ~ q(z | f_x) [B, vae_z_dim] with q's parameters."""
        mu, raw = self.posterior_net(f_x).flatten(1).float().chunk(2, dim=-1)
        std = positive_std(raw, self.std_floor)
        return self._latent(mu + std * noise(mu), mu, std)

    def generate(self, n: int, noise: NoiseFn) -> GlobalLatent:
        """z ~ N(0, I) [n, vae_z_dim]."""
        return self._latent(noise(self.posterior_net[-1].bias.new_zeros(n, self.z_dim)))

    @staticmethod
    def _latent(z: Tensor, q_mu: Tensor | None = None, q_std: Tensor | None = None) -> GlobalLatent:
        return GlobalLatent(z, z[:, :, None, None], torch.zeros_like(z), torch.ones_like(z), q_mu, q_std)


class VAE(ImageVAE):
    """Encoder (Table 6) -> q(z | x) -> z -> decoder (Table 10) -> image."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__(cfg, GaussianLatent(cfg), image_decoder(cfg, cfg.vae_z_dim, from_vector=True))
