"""GENESIS baseline (Engelcke et al., ICLR 2020; GNM paper appendix D.2, Tables 1 and 3): a
pixel-wise Gaussian mixture of K components whose masks and appearances come from per-slot latents,
written from the GENESIS paper's description (not from its code).

Inference, q(z | x) = prod_k q(z^m_k | x, z^m_<k) q(z^c_k | x, m_k), with z^m_0 = 0:
  e       = MLP(Encoder(x))                          GNM's image encoder (Table 6), flattened; one layer
  z^m_k   ~ N(Linear(LSTM_q(CAT[e, z^m_{k-1}])))
  a_k     = MaskDecoder(z^m_k), k < K                Table 10's decoder without its sigmoid: logits
  m_k     = s_{k-1} sigmoid(a_k), s_k = s_{k-1} sigmoid(-a_k), s_0 = 1; m_K = s_{K-1} (stick-breaking)
  z^c_k   ~ N(MLP(Encoder_c(CAT[x, log m_k])))        the encoder's layout over image + log mask
  mu_k    = SpatialBroadcastDecoder(z^c_k)            [C, H, W] in (0, 1)
Prior, p(z) = prod_k p(z^m_k | z^m_<k) p(z^c_k | z^m_k):
  z^m_k   ~ N(Linear(LSTM_p(z^m_{k-1})))              z^c_k ~ N(MLP(z^m_k))
So z^m_K shapes no mask (the last slot takes the rest of the scope); it conditions p(z^c_K | z^m_K).
Likelihood: p(x | z) = prod_pixels sum_k m_k N(x | mu_k, obs_sigma^2 I) (GNM's sigma 0.2, not learned).

Objective per image, then averaged over the batch:
  loss = nll + beta * kl,   elbo = -(nll + kl),   kl = kl_mask + kl_comp
  kl_mask = sum_k KL(q(z^m_k | x, z^m_<k) || p(z^m_k | z^m_<k))
  kl_comp = sum_k KL(q(z^c_k | x, m_k) || p(z^c_k | z^m_k))
both analytic given the sampled z^m_<k. GNM's changes to GENESIS: this beta-ELBO instead of GECO, a
learning rate that drops after a few thousand steps (train.lr_scale) and a 3-layer broadcast decoder.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..config import ModelConfig
from ..distributions import NoiseFn, generator_noise, normal_kl, normal_log_prob, positive_std
from ..encoder import Encoder
from ..layers import conv_stack, mlp
from .decoders import image_decoder
from .image_vae import ImageOutput, ImageSample

# count_parameters key -> attribute
COMPONENTS = {"encoder": "encoder", "mask_latent": "mask_latent", "mask_decoder": "mask_decoder",
              "component": "component_vae"}
# The component encoder sees log m_k clamped at log 1e-4 (our choice): bounded inputs where a mask is ~0.
LOG_MASK_FLOOR = math.log(1e-4)


@dataclass
class GenesisSample(ImageSample):
    """A scene and its mixture: image = sum_k masks_k * components_k."""

    masks: Tensor       # [B, K, 1, H, W], >= 0, summing to 1 over K
    components: Tensor  # [B, K, C, H, W] component means in (0, 1)


@dataclass
class SlotLatent:
    """Per-slot Gaussian latents with their prior's and posterior's parameters (all [B, K, D])."""

    z: Tensor
    p_mu: Tensor
    p_std: Tensor
    q_mu: Tensor | None = None  # None when drawn from the prior
    q_std: Tensor | None = None

    def kl(self) -> Tensor:
        """KL(q || p) summed over slots and dimensions -> [B]."""
        return normal_kl(self.q_mu, self.q_std, self.p_mu, self.p_std).sum((1, 2))

    def log_ratio(self) -> Tensor:
        """log p(z) - log q(z) summed over slots and dimensions -> [B]."""
        log_p = normal_log_prob(self.z, self.p_mu, self.p_std)
        return (log_p - normal_log_prob(self.z, self.q_mu, self.q_std)).sum((1, 2))


def gaussian_params(raw: Tensor, std_floor: float) -> tuple[Tensor, Tensor]:
    """[..., 2 D] network output -> mean and std [..., D] in float32."""
    mu, raw_std = raw.float().chunk(2, dim=-1)
    return mu, positive_std(raw_std, std_floor)


def stick_breaking(logits: Tensor) -> Tensor:
    """Mask logits a [B, K - 1, 1, H, W] -> log masks [B, K, 1, H, W]: m_k = s_{k-1} sigmoid(a_k) with
    scope s_k = s_{k-1} sigmoid(-a_k), s_0 = 1, and m_K = s_{K-1}, so that sum_k m_k = 1."""
    log_scope = torch.cumsum(F.logsigmoid(-logits), dim=1)  # log s_1 .. log s_{K-1}
    log_scope_before = torch.cat([torch.zeros_like(log_scope[:, :1]), log_scope[:, :-1]], dim=1)
    return torch.cat([log_scope_before + F.logsigmoid(logits), log_scope[:, -1:]], dim=1)


def mixture_log_likelihood(x: Tensor, log_masks: Tensor, means: Tensor, sigma: float) -> Tensor:
    """log sum_k m_k N(x | mu_k, sigma^2 I) per pixel, summed over pixels -> [B], in float32.
    x [B, C, H, W], log_masks [B, K, 1, H, W], means [B, K, C, H, W]."""
    log_components = normal_log_prob(x[:, None].float(), means.float(), sigma).sum(2, keepdim=True)
    return torch.logsumexp(log_masks.float() + log_components, dim=1).flatten(1).sum(1)


def render(log_masks: Tensor, means: Tensor) -> GenesisSample:
    """The mixture's mean image sum_k m_k mu_k [B, C, H, W] with its masks [B, K, 1, H, W] and components."""
    masks = log_masks.exp()
    return GenesisSample((masks * means.float()).sum(1), masks, means)


class MaskLatent(nn.Module):
    """z^m_{1:K}: the posterior LSTM_q reads the image embedding and the previous z^m, the prior
    LSTM_p the previous z^m alone (GENESIS's autoregressive prior); a linear head on each gives
    the mean and std."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.slots, self.z_dim, self.std_floor = cfg.genesis_slots, cfg.genesis_z_mask_dim, cfg.std_floor
        hidden = cfg.genesis_hidden
        self.embed = mlp(cfg.feature_channels * cfg.num_cells, (), hidden, final_norm_act=True)
        self.posterior_rnn = nn.LSTMCell(hidden + self.z_dim, hidden)
        self.posterior_head = nn.Linear(hidden, 2 * self.z_dim)
        self.prior_rnn = nn.LSTMCell(self.z_dim, hidden)
        self.prior_head = nn.Linear(hidden, 2 * self.z_dim)

    def infer(self, f_x: Tensor, noise: NoiseFn) -> SlotLatent:
        """f_x [B, C_f, G, G] -> z^m ~ q(z^m | x) [B, K, D_m] with q's and p's parameters."""
        return self._unroll(f_x.shape[0], noise, self.embed(f_x.flatten(1)))

    def generate(self, n: int, noise: NoiseFn) -> SlotLatent:
        """z^m ~ p(z^m) [n, K, D_m], slot after slot."""
        return self._unroll(n, noise, None)

    def _unroll(self, n: int, noise: NoiseFn, embedding: Tensor | None) -> SlotLatent:
        """K steps; each samples z^m_k from q (given an embedding [n, hidden]) or else from p."""
        z = self.prior_head.weight.new_zeros(n, self.z_dim)
        prior_state = posterior_state = None
        steps = []
        for _ in range(self.slots):
            prior_state = self.prior_rnn(z, prior_state)
            prior = gaussian_params(self.prior_head(prior_state[0]), self.std_floor)
            posterior: tuple[Tensor, ...] = ()
            if embedding is not None:
                posterior_state = self.posterior_rnn(torch.cat([embedding, z], dim=1), posterior_state)
                posterior = gaussian_params(self.posterior_head(posterior_state[0]), self.std_floor)
            mu, std = posterior or prior
            z = mu + std * noise(mu)
            steps.append((z, *prior, *posterior))
        return SlotLatent(*(torch.stack(values, dim=1) for values in zip(*steps)))


class SpatialBroadcastDecoder(nn.Module):
    """z [N, D] tiled over the H x W image with two coordinate channels (y, x in [-1, 1]) ->
    3x3 convs (genesis_sbd_channels, ReLU + layer norm) -> 1x1 conv to `channels` -> sigmoid."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.size = cfg.image_size
        n = len(cfg.genesis_sbd_channels)
        convs = conv_stack(cfg.genesis_z_comp_dim + 2, (*cfg.genesis_sbd_channels, cfg.channels), (3,) * n + (1,),
                           final_norm_act=False, act=nn.ReLU)
        self.net = nn.Sequential(*convs, nn.Sigmoid())

    def forward(self, z: Tensor) -> Tensor:
        """z [N, D] -> [N, channels, H, W] in (0, 1)."""
        line = torch.linspace(-1.0, 1.0, self.size, device=z.device, dtype=z.dtype)
        coords = torch.stack(torch.meshgrid(line, line, indexing="ij")).expand(z.shape[0], -1, -1, -1)
        tiled = z[:, :, None, None].expand(-1, -1, self.size, self.size)
        return self.net(torch.cat([tiled, coords], dim=1).contiguous(memory_format=torch.channels_last))


class ComponentVAE(nn.Module):
    """z^c_{1:K}: q(z^c_k | x, m_k) from the image encoder's layout over CAT[x, log m_k] and an MLP,
    p(z^c_k | z^m_k) from an MLP, and the broadcast decoder of the component means."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.std_floor = cfg.std_floor
        hidden, z_dim = cfg.genesis_hidden, cfg.genesis_z_comp_dim
        self.encoder = Encoder(cfg.replace(channels=cfg.channels + 1))
        self.posterior_net = mlp(cfg.feature_channels * cfg.num_cells, (hidden,), 2 * z_dim)
        self.prior_net = mlp(cfg.genesis_z_mask_dim, (hidden, hidden), 2 * z_dim)
        self.decoder = SpatialBroadcastDecoder(cfg)

    def infer(self, x: Tensor, log_masks: Tensor, z_mask: Tensor, noise: NoiseFn) -> SlotLatent:
        """x [B, C, H, W], log_masks [B, K, 1, H, W], z^m [B, K, D_m] -> z^c ~ q [B, K, D_c]."""
        b, k = log_masks.shape[:2]
        log_masks = log_masks.clamp(min=LOG_MASK_FLOOR).to(x.dtype)
        inputs = torch.cat([x[:, None].expand(-1, k, -1, -1, -1), log_masks], dim=2).flatten(0, 1)
        q_mu, q_std = gaussian_params(self.posterior_net(self.encoder(inputs).flatten(1)), self.std_floor)
        return self._sample(z_mask, noise, q_mu.view(b, k, -1), q_std.view(b, k, -1))

    def generate(self, z_mask: Tensor, noise: NoiseFn) -> SlotLatent:
        """z^c ~ p(z^c | z^m) [B, K, D_c] for z^m [B, K, D_m]."""
        return self._sample(z_mask, noise)

    def _sample(self, z_mask: Tensor, noise: NoiseFn, q_mu: Tensor | None = None,
                q_std: Tensor | None = None) -> SlotLatent:
        """z^c [B, K, D_c] from q (given its parameters) or else from p(z^c | z^m), with p's parameters."""
        p_mu, p_std = gaussian_params(self.prior_net(z_mask), self.std_floor)
        mu, std = (p_mu, p_std) if q_mu is None else (q_mu, q_std)
        return SlotLatent(mu + std * noise(mu), p_mu, p_std, q_mu, q_std)

    def decode(self, z: Tensor) -> Tensor:
        """z^c [B, K, D_c] -> component means [B, K, C, H, W]."""
        means = self.decoder(z.flatten(0, 1))
        return means.view(*z.shape[:2], *means.shape[1:])


@dataclass
class Posterior:
    """One draw from q(z | x) and what it decodes to."""

    z_mask: SlotLatent
    z_comp: SlotLatent
    log_masks: Tensor  # [B, K, 1, H, W]
    means: Tensor      # [B, K, C, H, W]


class Genesis(nn.Module):
    """Mask latents -> stick-breaking masks; component latents -> broadcast-decoded appearances;
    forward, sample and log_weights of the model protocol (no `infer`: masks, not boxes), and
    `decompose` for the slot figures of `gnm viz`."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.encoder = Encoder(cfg)
        self.mask_latent = MaskLatent(cfg)
        # Table 10's decoder to one channel, without its final sigmoid: mask logits
        self.mask_decoder = image_decoder(cfg.replace(channels=1), cfg.genesis_z_mask_dim, from_vector=True)[:-1]
        self.component_vae = ComponentVAE(cfg)
        self.to(memory_format=torch.channels_last)  # as GNM: faster convolutions on CPU

    def forward(self, x: Tensor, coeffs: Mapping[str, float]) -> ImageOutput:
        """x [B, C, H, W] in [0, 1] -> loss, terms (nll, kl_mask, kl_comp, kl, elbo), reconstruction;
        coeffs needs `beta`."""
        beta = float(coeffs["beta"])
        post = self._infer(x, torch.randn_like)
        kl_mask, kl_comp = post.z_mask.kl().mean(), post.z_comp.kl().mean()
        terms = {"nll": -mixture_log_likelihood(x, post.log_masks, post.means, self.cfg.obs_sigma).mean(),
                 "kl_mask": kl_mask, "kl_comp": kl_comp, "kl": kl_mask + kl_comp}
        loss = terms["nll"] + beta * terms["kl"]
        terms["elbo"] = -(terms["nll"] + terms["kl"])
        scene = render(post.log_masks, post.means)
        detached = GenesisSample(scene.image.detach().clamp(0.0, 1.0), scene.masks.detach(), scene.components.detach())
        return ImageOutput(loss=loss, terms=terms, recon=scene.image, sample=detached)

    @torch.no_grad()
    def decompose(self, x: Tensor) -> GenesisSample:
        """How the posterior splits x [B, C, H, W] into slots (every latent at its mean): the
        reconstruction, masks [B, K, 1, H, W] and component means [B, K, C, H, W]."""
        post = self._infer(x, torch.zeros_like)
        scene = render(post.log_masks, post.means)
        return GenesisSample(scene.image.clamp(0.0, 1.0), scene.masks, scene.components)

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator | None = None) -> GenesisSample:
        """n scenes from the prior (every latent drawn with `generator`): images [n, C, H, W] in [0, 1]."""
        noise = generator_noise(generator)
        z_mask = self.mask_latent.generate(n, noise)
        z_comp = self.component_vae.generate(z_mask.z, noise)
        scene = render(self._log_masks(z_mask.z), self.component_vae.decode(z_comp.z))
        return GenesisSample(scene.image.clamp(0.0, 1.0), scene.masks, scene.components)

    @torch.no_grad()
    def log_weights(self, x: Tensor, k: int) -> Tensor:
        """IWAE log weights [k, B] of x [B, C, H, W]: log p(x | z) + log p(z) - log q(z | x) over
        z = (z^m, z^c) ~ q(z | x); the k samples run as one batch of k * B images (sample-major)."""
        xs = x.repeat(k, 1, 1, 1)
        post = self._infer(xs, torch.randn_like)
        log_lik = mixture_log_likelihood(xs, post.log_masks, post.means, self.cfg.obs_sigma)
        return (log_lik + post.z_mask.log_ratio() + post.z_comp.log_ratio()).view(k, x.shape[0])

    def _infer(self, x: Tensor, noise: NoiseFn) -> Posterior:
        """x [B, C, H, W] -> z^m, then the masks, then z^c and the component means, all drawn with `noise`."""
        z_mask = self.mask_latent.infer(self.encoder(x), noise)
        log_masks = self._log_masks(z_mask.z)
        z_comp = self.component_vae.infer(x, log_masks, z_mask.z, noise)
        return Posterior(z_mask, z_comp, log_masks, self.component_vae.decode(z_comp.z))

    def _log_masks(self, z_mask: Tensor) -> Tensor:
        """z^m [B, K, D_m] -> log masks [B, K, 1, H, W]: the first K - 1 decoded to logits, then stick-breaking."""
        b, k, d = z_mask.shape
        logits = self.mask_decoder(z_mask[:, :-1].reshape(b * (k - 1), d, 1, 1)).float()
        return stick_breaking(logits.view(b, k - 1, *logits.shape[1:]))
