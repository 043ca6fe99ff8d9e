"""Closed-form densities, KLs and reparameterised samplers used by GNM (all elementwise, float).

Distribution parameters are float32 even under autocast (the modules cast their raw outputs),
so every KL and likelihood is computed in float32.

Why own formulas instead of torch.distributions objects: the model evaluates a dozen KLs per
step and the Normal / Bernoulli closed forms are one line each; building distribution objects
would only add overhead. Tests check every formula against torch.distributions and Monte Carlo.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor

# A NoiseFn returns standard-normal noise shaped like its argument. It decides how the model
# draws z = mu + std * eps: a sample (torch.randn_like), the mode (torch.zeros_like), or a
# sample from a given torch.Generator (generator_noise).
NoiseFn = Callable[[Tensor], Tensor]

# Uniform noise for the relaxed Bernoulli is kept inside [eps, 1 - eps] so its logistic
# transform stays finite.
_UNIFORM_EPS = 1e-6
_LOG_2PI = math.log(2.0 * math.pi)


def generator_noise(generator: torch.Generator | None) -> NoiseFn:
    """NoiseFn drawing from `generator` (global RNG if None), created on the generator's device."""

    def noise(like: Tensor) -> Tensor:
        device = generator.device if generator is not None else like.device
        eps = torch.randn(like.shape, generator=generator, device=device, dtype=like.dtype)
        return eps.to(like.device)

    return noise


def positive_std(raw: Tensor, floor: float) -> Tensor:
    """std = softplus(raw) + floor: positive, never below `floor`, finite for any finite raw."""
    return F.softplus(raw) + floor


def normal_kl(mu_q: Tensor, std_q: Tensor, mu_p: Tensor | float, std_p: Tensor | float) -> Tensor:
    """KL(N(mu_q, std_q^2) || N(mu_p, std_p^2)) elementwise (broadcasting)."""
    mu_p = torch.as_tensor(mu_p, dtype=mu_q.dtype, device=mu_q.device)
    std_p = torch.as_tensor(std_p, dtype=mu_q.dtype, device=mu_q.device)
    var_ratio = (std_q / std_p) ** 2
    mean_term = ((mu_q - mu_p) / std_p) ** 2
    return 0.5 * (var_ratio + mean_term - 1.0 - torch.log(var_ratio))


def bernoulli_kl_logits(logit_q: Tensor, logit_p: Tensor | float) -> Tensor:
    """KL(Bernoulli(sigmoid(logit_q)) || Bernoulli(sigmoid(logit_p))) elementwise, stable in logit space."""
    logit_p = torch.as_tensor(logit_p, dtype=logit_q.dtype, device=logit_q.device)
    q1 = torch.sigmoid(logit_q)
    return (q1 * (F.logsigmoid(logit_q) - F.logsigmoid(logit_p))
            + (1.0 - q1) * (F.logsigmoid(-logit_q) - F.logsigmoid(-logit_p)))


def normal_log_prob(x: Tensor, mu: Tensor | float, std: Tensor | float) -> Tensor:
    """log N(x | mu, std^2) elementwise (broadcasting)."""
    std = torch.as_tensor(std, dtype=x.dtype, device=x.device)
    return -0.5 * ((x - mu) / std) ** 2 - torch.log(std) - 0.5 * _LOG_2PI


def bernoulli_log_prob_logits(value: Tensor, logit: Tensor) -> Tensor:
    """log Bernoulli(value | sigmoid(logit)) elementwise for value in {0, 1}, stable in logit space."""
    return value * F.logsigmoid(logit) + (1.0 - value) * F.logsigmoid(-logit)


def prob_to_logit(p: float) -> float:
    """logit(p) for a probability strictly inside (0, 1)."""
    if not 0.0 < p < 1.0:
        raise ValueError(f"probability must lie in (0, 1), got {p}")
    return math.log(p) - math.log1p(-p)


def relaxed_bernoulli_rsample(logits: Tensor, tau: float) -> Tensor:
    """Reparameterised Concrete / relaxed Bernoulli sample in [0, 1] at temperature tau.

    sigmoid((logits + log u - log(1 - u)) / tau), u ~ U(0, 1): the logistic-noise form of
    torch.distributions.RelaxedBernoulli. P(sample > 1/2) = sigmoid(logits) for every tau.
    """
    u = torch.rand_like(logits).clamp_(_UNIFORM_EPS, 1.0 - _UNIFORM_EPS)
    return torch.sigmoid((logits + torch.log(u) - torch.log1p(-u)) / tau)


def gaussian_log_likelihood(x: Tensor, mean: Tensor, sigma: float) -> Tensor:
    """log N(x | mean, sigma^2) summed over all but the batch dimension -> [B], in float32."""
    sq = ((x.float() - mean.float()) / sigma) ** 2
    per_pixel_const = math.log(sigma) + 0.5 * _LOG_2PI
    return -0.5 * sq.flatten(1).sum(1) - per_pixel_const * x[0].numel()
