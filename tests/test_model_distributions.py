"""Closed-form KLs, likelihood and samplers against torch.distributions and Monte Carlo."""

from __future__ import annotations

import math

import pytest
import torch
from torch.distributions import Bernoulli, Normal, kl_divergence

from gnm.model.distributions import (
    bernoulli_kl_logits,
    gaussian_log_likelihood,
    generator_noise,
    normal_kl,
    positive_std,
    prob_to_logit,
    relaxed_bernoulli_rsample,
)

MC_SAMPLES = 200_000


def test_normal_kl_matches_torch_and_monte_carlo() -> None:
    g = torch.Generator().manual_seed(0)
    mu_q, mu_p = torch.randn(6, generator=g, dtype=torch.float64), torch.randn(6, generator=g, dtype=torch.float64)
    std_q = torch.rand(6, generator=g, dtype=torch.float64) + 0.2
    std_p = torch.rand(6, generator=g, dtype=torch.float64) + 0.5
    analytic = normal_kl(mu_q, std_q, mu_p, std_p)
    torch.testing.assert_close(analytic, kl_divergence(Normal(mu_q, std_q), Normal(mu_p, std_p)))
    z = mu_q + std_q * torch.randn(MC_SAMPLES, 6, generator=g, dtype=torch.float64)
    mc = (Normal(mu_q, std_q).log_prob(z) - Normal(mu_p, std_p).log_prob(z)).mean(0)
    mc_err = (Normal(mu_q, std_q).log_prob(z) - Normal(mu_p, std_p).log_prob(z)).std(0) / math.sqrt(MC_SAMPLES)
    assert torch.all((analytic - mc).abs() < 5 * mc_err + 1e-6)


def test_normal_kl_against_fixed_prior_scalars() -> None:
    mu, std = torch.tensor([0.0, 1.0]), torch.tensor([1.0, 0.5])
    expected = 0.5 * (std**2 + mu**2 - 1 - torch.log(std**2))
    torch.testing.assert_close(normal_kl(mu, std, 0.0, 1.0), expected)
    assert normal_kl(mu, std, mu, std).abs().max() < 1e-7


def test_bernoulli_kl_matches_torch_and_monte_carlo() -> None:
    logit_q = torch.tensor([-8.8, -2.0, 0.0, 1.5, 8.8], dtype=torch.float64)
    logit_p = torch.tensor([0.5, -1.0, 3.0, -4.0, 8.0], dtype=torch.float64)
    analytic = bernoulli_kl_logits(logit_q, logit_p)
    torch.testing.assert_close(analytic, kl_divergence(Bernoulli(logits=logit_q), Bernoulli(logits=logit_p)))
    g = torch.Generator().manual_seed(1)
    z = (torch.rand(MC_SAMPLES, 5, generator=g, dtype=torch.float64) < torch.sigmoid(logit_q)).double()
    log_ratio = Bernoulli(logits=logit_q).log_prob(z) - Bernoulli(logits=logit_p).log_prob(z)
    err = log_ratio.std(0) / math.sqrt(MC_SAMPLES)
    assert torch.all((analytic - log_ratio.mean(0)).abs() < 5 * err + 1e-6)
    assert torch.all(analytic >= 0)


def test_bernoulli_kl_against_rho_prior() -> None:
    rho = 1e-3
    q = torch.tensor([0.0, -3.0])
    expected = kl_divergence(Bernoulli(logits=q), Bernoulli(probs=torch.full_like(q, rho)))
    torch.testing.assert_close(bernoulli_kl_logits(q, prob_to_logit(rho)), expected)
    with pytest.raises(ValueError):
        prob_to_logit(0.0)


@pytest.mark.parametrize("tau", [0.5, 1.0])
def test_relaxed_bernoulli_keeps_the_bernoulli_probability(tau: float) -> None:
    torch.manual_seed(2)
    logits = torch.tensor([-3.0, -0.5, 0.0, 2.0]).expand(MC_SAMPLES, 4)
    z = relaxed_bernoulli_rsample(logits, tau)
    assert torch.all((z >= 0) & (z <= 1))  # float32 saturates at the ends for small tau
    torch.testing.assert_close((z > 0.5).float().mean(0), torch.sigmoid(logits[0]), atol=5e-3, rtol=0)


def test_relaxed_bernoulli_is_reparameterised_and_finite_at_the_bounds() -> None:
    logits = torch.tensor([-8.8, 0.0, 8.8], requires_grad=True)
    z = relaxed_bernoulli_rsample(logits.expand(1000, 3), 0.05)
    z.sum().backward()
    assert torch.isfinite(z).all() and torch.isfinite(logits.grad).all() and logits.grad.abs().sum() > 0


def test_gaussian_log_likelihood_matches_torch() -> None:
    x, mean = torch.rand(3, 1, 4, 4), torch.rand(3, 1, 4, 4)
    expected = Normal(mean, 0.2).log_prob(x).flatten(1).sum(1)
    torch.testing.assert_close(gaussian_log_likelihood(x, mean, 0.2), expected)


def test_positive_std_has_a_floor() -> None:
    std = positive_std(torch.tensor([-1e4, 0.0, 1e4]), 1e-4)
    assert std[0] == pytest.approx(1e-4) and std[1] == pytest.approx(math.log(2) + 1e-4)
    assert std[2] == pytest.approx(1e4)


def test_generator_noise_is_reproducible() -> None:
    like = torch.zeros(5)
    a = generator_noise(torch.Generator().manual_seed(3))(like)
    b = generator_noise(torch.Generator().manual_seed(3))(like)
    assert torch.equal(a, b) and a.std() > 0
