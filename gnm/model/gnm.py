"""The GNM module: inference, the training objective as named terms, generation.

Objective (paper eq. 4-9, appendix C), per image, then averaged over the batch:
  loss = nll + beta_g * kl_zg + kl_zs_pres + kl_zs_where + kl_zs_what + kl_zs_depth + kl_bg
         + aux_pres + aux_where + aux_what + aux_depth + beta_b * aux_bg
  elbo = -(nll + kl_zg + kl_zs_pres + kl_zs_where + kl_zs_what + kl_zs_depth + kl_bg)
Terms (all unweighted, summed over pixels / cells / latent dimensions):
  nll          -log N(x | recon, obs_sigma^2), constants included
  kl_zg        KL(q(z_g | x) || p(z_g)), analytic per StructDRAW step (or vs N(0, I) for GNM-Gaussian)
  kl_zs_pres   KL(Bernoulli q || Bernoulli p(z_pres | z_g)), analytic (see below)
  kl_zs_where/what/depth   KL(q || p(. | z_g)) of the per-cell Gaussians, every cell
  kl_bg        KL(q(z_bg | x) || p(z_bg | z_g)) (0 without background)
  aux_pres     KL(q(z_pres) || Bernoulli(rho))
  aux_where    KL(q(z_where) || N([scale_mean, 0, 0, 0], where_prior_std^2)) * z_pres
  aux_what, aux_depth   KL(q || N(0, 1)) * z_pres
  aux_bg       KL(q(z_bg | x) || N(0, 1)) (0 without background)
z_pres KL: the discrete Bernoulli KL is computed exactly (closed form, zero variance); the
relaxed (Concrete) sample is only the reparameterisation that carries likelihood gradients.
The alternative, a single-sample log-density difference of LogitRelaxedBernoulli, estimates a
different quantity (the KL between the relaxed distributions) with high variance at low
temperature. The release also uses the analytic Bernoulli KL, and weights only the auxiliary
where/what/depth KLs by z_pres; the conditional KLs are over every cell, as eq. 2 factorises.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from .background import Background
from .config import ModelConfig
from .distributions import (
    bernoulli_kl_logits,
    bernoulli_log_prob_logits,
    gaussian_log_likelihood,
    generator_noise,
    normal_kl,
    normal_log_prob,
    prob_to_logit,
)
from .encoder import Encoder
from .glimpse import GlimpseDecoder
from .render import Renderer
from .structdraw import GLOBAL_PRIORS, GlobalLatent
from .structure import CellLatents, CellParams, StructureHeads, box_pixels, where_to_box

REQUIRED_COEFFS = ("tau", "rho", "beta_g", "beta_b", "alpha_force")
# Optional weights on the auxiliary KLs (the release anneals aux_where 10 -> 1 over 500 steps on Arrow).
OPTIONAL_COEFFS = {"beta_aux_pres": 1.0, "beta_aux_where": 1.0, "beta_aux_what": 1.0, "beta_aux_depth": 1.0}
# term -> coefficient name weighting it in the loss (None: weight 1)
LOSS_WEIGHTS: dict[str, str | None] = {
    "nll": None, "kl_zg": "beta_g",
    "kl_zs_pres": None, "kl_zs_where": None, "kl_zs_what": None, "kl_zs_depth": None, "kl_bg": None,
    "aux_pres": "beta_aux_pres", "aux_where": "beta_aux_where", "aux_what": "beta_aux_what",
    "aux_depth": "beta_aux_depth", "aux_bg": "beta_b",
}
ELBO_TERMS = ("nll", "kl_zg", "kl_zs_pres", "kl_zs_where", "kl_zs_what", "kl_zs_depth", "kl_bg")
# count_parameters key -> GNM attribute
COMPONENTS = {"encoder": "encoder", "structdraw": "global_prior", "heads": "heads",
              "glimpse": "glimpse", "background": "background"}


@dataclass
class GNMSample:
    """Latents and image of a batch of scenes (posterior sample, posterior mode, or prior sample)."""

    image: Tensor          # [B, C, H, W] in [0, 1] (clamped for display)
    pres: Tensor           # [B, N] z_pres: {0, 1} (mode) or relaxed value
    boxes: Tensor          # [B, N, 4] pixel boxes (x_min, y_min, x_max, y_max)
    what: Tensor           # [B, N, z_what_dim]
    depth: Tensor          # [B, N]
    glimpses: Tensor       # [B, N, C (+1 alpha), g, g]
    z_g: Tensor | None     # [B, draw_steps * z_g_step_dim]
    pres_prob: Tensor | None = None  # [B, N] probability of z_pres (set by infer, for scoring boxes)


@dataclass
class GNMOutput:
    loss: Tensor               # scalar: weighted objective, batch mean
    terms: dict[str, Tensor]   # unweighted batch-mean scalars (module docstring), plus "elbo"
    recon: Tensor              # [B, C, H, W] reconstruction (unclamped, as used by the likelihood)
    sample: GNMSample          # the posterior sample used


def read_coeffs(coeffs: Mapping[str, float]) -> dict[str, float]:
    """Required coefficients plus optional ones with their defaults; a missing key is an error."""
    missing = [k for k in REQUIRED_COEFFS if k not in coeffs]
    if missing:
        raise KeyError(f"GNM.forward coeffs lack {missing}; required: {list(REQUIRED_COEFFS)}")
    return {**OPTIONAL_COEFFS, **{k: float(v) for k, v in coeffs.items()}}


class GNM(nn.Module):
    """Generative Neurosymbolic Machine: z_g -> feature map f -> per-cell z_s (+ z_bg) -> image."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.encoder = Encoder(cfg)
        self.global_prior = GLOBAL_PRIORS[cfg.global_prior](cfg)
        self.heads = StructureHeads(cfg)
        self.glimpse = GlimpseDecoder(cfg)
        self.background = Background(cfg) if cfg.use_background else None
        self.render = Renderer(cfg)
        self.register_buffer("where_prior_mu", torch.tensor([cfg.scale_mean, 0.0, 0.0, 0.0]), persistent=False)
        self.register_buffer("where_prior_std", torch.tensor(cfg.where_prior_std), persistent=False)
        # NHWC conv weights: 1.5-3x faster convolutions on CPU (oneDNN), neutral or better on CUDA.
        self.to(memory_format=torch.channels_last)

    def forward(self, x: Tensor, coeffs: Mapping[str, float]) -> GNMOutput:
        """x [B, C, H, W] in [0, 1] -> loss, named terms, reconstruction and the posterior sample."""
        c = read_coeffs(coeffs)
        f_x = self.encoder(x)
        glob = self.global_prior.infer(f_x, torch.randn_like)
        prior, post = self.heads.prior_and_posterior(glob.canvas, f_x)
        cells = post.rsample(c["tau"])
        z_bg, bg_terms = self._background_posterior(f_x, glob.z)
        recon, sample = self._decode(cells, z_bg, glob.z, c["alpha_force"])

        terms = {"nll": -gaussian_log_likelihood(x, recon, self.cfg.obs_sigma),
                 **self._structure_terms(glob, prior, post, cells, c["rho"]), **bg_terms}
        terms = {name: value.mean() for name, value in terms.items()}
        loss = sum(terms[name] * (c[w] if w else 1.0) for name, w in LOSS_WEIGHTS.items())
        terms["elbo"] = -sum(terms[name] for name in ELBO_TERMS)
        return GNMOutput(loss=loss, terms=terms, recon=recon, sample=sample)

    @torch.no_grad()
    def infer(self, x: Tensor) -> GNMSample:
        """Posterior means / modes (z_g means step by step, z_pres = [logit > 0]) and their rendering."""
        params, glob, z_bg = self.posterior_latents(x)
        sample = self.decode(params.mode(), glob.z, z_bg)
        sample.pres_prob = torch.sigmoid(params.pres_logit)
        return sample

    @torch.no_grad()
    def posterior_latents(self, x: Tensor) -> tuple[CellParams, GlobalLatent, Tensor | None]:
        """x [B, C, H, W] -> q(z_s | x) parameters, z_g at its step-by-step posterior means, mean z_bg [B, D] (or None)."""
        f_x = self.encoder(x)
        glob = self.global_prior.infer(f_x, torch.zeros_like)
        z_bg = self.background.posterior(f_x)[0] if self.background is not None else None
        return self.heads(f_x), glob, z_bg

    @torch.no_grad()
    def decode(self, cells: CellLatents, z_g: Tensor, z_bg: Tensor | None = None) -> GNMSample:
        """Render given latents: cells of B scenes, z_g [B, L * step_dim], z_bg [B, D] (None: the mean of p(z_bg | z_g))."""
        if z_bg is None and self.background is not None:
            z_bg = self.background.prior(z_g)[0]
        return self._decode(cells, z_bg, z_g, alpha_force=-1.0)[1]

    @torch.no_grad()
    def log_weights(self, x: Tensor, k: int) -> Tensor:
        """IWAE log weights [k, B] of x [B, C, H, W]: log p(x | z) + log p(z) - log q(z | x), z ~ q(z | x).

        z = (z_g per StructDRAW step, z_pres / z_where / z_what / z_depth of every cell, z_bg).
        z_pres is drawn from the discrete Bernoulli q and decoded as {0, 1} (a valid bound needs the
        discrete variable, not its relaxation); the conditional prior p(z_s | z_g) covers every
        cell (eq. 2). The k samples run as one batch of k * B images: call with a chunk of k
        (gnm.eval.ll streams over chunks) to bound memory.
        """
        f_x = self.encoder(x).repeat(k, 1, 1, 1)  # sample-major: row s * B + b is sample s of image b
        glob = self.global_prior.infer(f_x, torch.randn_like)
        prior, post = self.heads.prior_and_posterior(glob.canvas, f_x)
        cells = post.rsample(tau=1.0)
        cells.pres = torch.bernoulli(torch.sigmoid(post.pres_logit))  # discrete, replacing the relaxed draw
        z_bg, bg_log_ratio = self._background_log_ratio(f_x, glob.z)
        recon = self._decode(cells, z_bg, glob.z, alpha_force=-1.0)[0]
        log_lik = gaussian_log_likelihood(x.repeat(k, 1, 1, 1), recon, self.cfg.obs_sigma)
        log_w = log_lik + self._structure_log_ratio(glob, prior, post, cells) + bg_log_ratio
        return log_w.view(k, x.shape[0])

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator | None = None) -> GNMSample:
        """Generate n scenes: z_g from the prior (using `generator`), then z_s ~ p(z_s | z_g) as
        cfg.sample_z_s says (its mode, as the release, or a draw from `generator`)."""
        glob = self.global_prior.generate(n, generator_noise(generator))
        params = self.heads(glob.canvas)
        cells = params.sample(generator) if self.cfg.sample_z_s == "draw" else params.mode()
        return self.decode(cells, glob.z)

    def _decode(self, cells: CellLatents, z_bg: Tensor | None, z_g: Tensor,
                alpha_force: float) -> tuple[Tensor, GNMSample]:
        """Glimpses, boxes and composite image for the given latents -> (raw image, GNMSample)."""
        glimpses = self.glimpse(cells.what)
        centre, size = where_to_box(cells.where, self.cfg.grid)
        bg = self.background.decode(z_bg) if z_bg is not None else None
        image = self.render(glimpses, cells.pres, cells.depth, centre, size, bg, alpha_force)
        sample = GNMSample(image=image.clamp(0.0, 1.0), pres=cells.pres,
                           boxes=box_pixels(centre, size, self.cfg.image_size),
                           what=cells.what, depth=cells.depth, glimpses=glimpses, z_g=z_g)
        return image, sample

    def _structure_terms(self, glob: GlobalLatent, prior: CellParams, post: CellParams,
                         cells: CellLatents, rho: float) -> dict[str, Tensor]:
        """Per-image [B] KL terms of z_g and z_s (conditional and auxiliary)."""
        pres = cells.pres
        return {
            "kl_zg": normal_kl(glob.q_mu, glob.q_std, glob.p_mu, glob.p_std).sum(-1),
            "kl_zs_pres": bernoulli_kl_logits(post.pres_logit, prior.pres_logit).sum(-1),
            "kl_zs_where": normal_kl(post.where_mu, post.where_std, prior.where_mu, prior.where_std).sum((-1, -2)),
            "kl_zs_what": normal_kl(post.what_mu, post.what_std, prior.what_mu, prior.what_std).sum((-1, -2)),
            "kl_zs_depth": normal_kl(post.depth_mu, post.depth_std, prior.depth_mu, prior.depth_std).sum(-1),
            "aux_pres": bernoulli_kl_logits(post.pres_logit, prob_to_logit(rho)).sum(-1),
            "aux_where": (normal_kl(post.where_mu, post.where_std, self.where_prior_mu, self.where_prior_std)
                          .sum(-1) * pres).sum(-1),
            "aux_what": (normal_kl(post.what_mu, post.what_std, 0.0, 1.0).sum(-1) * pres).sum(-1),
            "aux_depth": (normal_kl(post.depth_mu, post.depth_std, 0.0, 1.0) * pres).sum(-1),
        }

    @staticmethod
    def _structure_log_ratio(glob: GlobalLatent, prior: CellParams, post: CellParams, cells: CellLatents) -> Tensor:
        """log p(z_g, z_s) - log q(z_g, z_s | x) per image [B] at the sampled values (discrete z_pres)."""
        return (_gaussian_log_ratio(glob.z, (glob.p_mu, glob.p_std), (glob.q_mu, glob.q_std))
                + (bernoulli_log_prob_logits(cells.pres, prior.pres_logit)
                   - bernoulli_log_prob_logits(cells.pres, post.pres_logit)).sum(-1)
                + _gaussian_log_ratio(cells.where, (prior.where_mu, prior.where_std), (post.where_mu, post.where_std))
                + _gaussian_log_ratio(cells.what, (prior.what_mu, prior.what_std), (post.what_mu, post.what_std))
                + _gaussian_log_ratio(cells.depth, (prior.depth_mu, prior.depth_std), (post.depth_mu, post.depth_std)))

    def _background_log_ratio(self, f_x: Tensor, z_g: Tensor) -> tuple[Tensor | None, Tensor]:
        """Sample z_bg ~ q(z_bg | f_x) and log p(z_bg | z_g) - log q(z_bg | f_x) [B] (zeros without a background)."""
        if self.background is None:
            return None, f_x.new_zeros(f_x.shape[0])
        posterior = self.background.posterior(f_x)
        z_bg = posterior[0] + posterior[1] * torch.randn_like(posterior[0])
        return z_bg, _gaussian_log_ratio(z_bg, self.background.prior(z_g), posterior)

    def _background_posterior(self, f_x: Tensor, z_g: Tensor) -> tuple[Tensor | None, dict[str, Tensor]]:
        """Sample z_bg ~ q(z_bg | f_x) and its [B] KL terms (zeros without a background)."""
        if self.background is None:
            zero = f_x.new_zeros(f_x.shape[0])
            return None, {"kl_bg": zero, "aux_bg": zero}
        mu, std = self.background.posterior(f_x)
        p_mu, p_std = self.background.prior(z_g)
        z_bg = mu + std * torch.randn_like(mu)
        return z_bg, {"kl_bg": normal_kl(mu, std, p_mu, p_std).sum(-1),
                      "aux_bg": normal_kl(mu, std, 0.0, 1.0).sum(-1)}


def _gaussian_log_ratio(z: Tensor, prior: tuple[Tensor, Tensor], posterior: tuple[Tensor, Tensor]) -> Tensor:
    """log N(z | prior) - log N(z | posterior) of diagonal Gaussians (mean, std), summed per image: [B, ...] -> [B]."""
    return (normal_log_prob(z, *prior) - normal_log_prob(z, *posterior)).flatten(1).sum(1)
