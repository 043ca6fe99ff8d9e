"""The baselines' shared model: a VAE whose decoder draws the whole image, without objects.

x -> Encoder (GNM's, Table 6) -> f_x -> latent module -> z and a decoder input ("canvas") ->
image decoder -> recon. The latent module has StructDRAW's interface (`infer(f_x, noise)` and
`generate(n, noise)` returning a GlobalLatent with z, canvas and the Gaussian parameters of
p(z) and q(z | x)): a single Gaussian for the VAE, StructDRAW's loop for ConvDRAW.

Objective per image, then averaged over the batch (same likelihood as GNM):
  loss = nll + beta * kl,   elbo = -(nll + kl)
  nll   -log N(x | recon, obs_sigma^2), summed over pixels, constants included
  kl    KL(q(z | x) || p(z)), analytic (per drawing step for ConvDRAW, summed)
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from ..config import ModelConfig
from ..distributions import gaussian_log_likelihood, generator_noise, normal_kl, normal_log_prob
from ..encoder import Encoder

REQUIRED_COEFFS = ("beta",)


@dataclass
class ImageSample:
    """Images of a batch (a posterior reconstruction or prior samples)."""

    image: Tensor  # [B, C, H, W] in [0, 1]


@dataclass
class ImageOutput:
    loss: Tensor              # scalar: nll + beta * kl, batch mean
    terms: dict[str, Tensor]  # unweighted batch means: nll, kl, elbo
    recon: Tensor             # [B, C, H, W] decoder output in (0, 1)
    sample: ImageSample       # the reconstruction (detached)


class ImageVAE(nn.Module):
    """Encoder -> latent module -> image decoder; forward, sample and log_weights of the model protocol."""

    def __init__(self, cfg: ModelConfig, latent: nn.Module, decoder: nn.Module) -> None:
        super().__init__()
        self.cfg = cfg
        self.encoder = Encoder(cfg)
        self.latent = latent
        self.decoder = decoder
        self.to(memory_format=torch.channels_last)  # as GNM: faster convolutions on CPU

    def forward(self, x: Tensor, coeffs: Mapping[str, float]) -> ImageOutput:
        """x [B, C, H, W] in [0, 1] -> loss, terms, reconstruction; coeffs needs `beta`."""
        if "beta" not in coeffs:
            raise KeyError(f"{type(self).__name__}.forward coeffs lack ['beta']; required: {list(REQUIRED_COEFFS)}")
        lat = self.latent.infer(self.encoder(x), torch.randn_like)
        recon = self.decoder(lat.canvas)
        terms = {"nll": -gaussian_log_likelihood(x, recon, self.cfg.obs_sigma).mean(),
                 "kl": normal_kl(lat.q_mu, lat.q_std, lat.p_mu, lat.p_std).sum(-1).mean()}
        loss = terms["nll"] + float(coeffs["beta"]) * terms["kl"]
        terms["elbo"] = -(terms["nll"] + terms["kl"])
        return ImageOutput(loss=loss, terms=terms, recon=recon, sample=ImageSample(recon.detach().clamp(0.0, 1.0)))

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator | None = None) -> ImageSample:
        """n images [n, C, H, W] from the prior (z drawn with `generator`), decoded."""
        lat = self.latent.generate(n, generator_noise(generator))
        return ImageSample(self.decoder(lat.canvas).clamp(0.0, 1.0))

    @torch.no_grad()
    def log_weights(self, x: Tensor, k: int) -> Tensor:
        """IWAE log weights [k, B] of x [B, C, H, W]: log p(x | z) + log p(z) - log q(z | x), z ~ q(z | x).
        The k samples run as one batch of k * B images (sample-major)."""
        lat = self.latent.infer(self.encoder(x).repeat(k, 1, 1, 1), torch.randn_like)
        log_lik = gaussian_log_likelihood(x.repeat(k, 1, 1, 1), self.decoder(lat.canvas), self.cfg.obs_sigma)
        log_ratio = (normal_log_prob(lat.z, lat.p_mu, lat.p_std) - normal_log_prob(lat.z, lat.q_mu, lat.q_std)).sum(-1)
        return (log_lik + log_ratio).view(k, x.shape[0])
