"""GNM.log_weights (the IWAE log weights) on tiny models: shape, finiteness, its mean equals the
ELBO within Monte Carlo error, and K = 50 gives a tighter bound than K = 1; the log densities it
uses against torch.distributions; the D-Steps curves PNG."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from PIL import Image
from torch.distributions import Bernoulli, Normal

from gnm.eval.dsteps import DStepsResult, plot_curves
from gnm.eval.ll import iwae_log_likelihood
from gnm.model import GNM, ModelConfig
from gnm.model.distributions import bernoulli_log_prob_logits, normal_log_prob

VARIANTS = {
    "structdraw": ModelConfig.tiny(),
    "background": ModelConfig.tiny(channels=3, glimpse_alpha=True, use_background=True),
    "gaussian": ModelConfig.tiny(global_prior="gaussian"),
}
# tau -> 0: the relaxed z_pres of forward() is {0, 1} with the same probabilities as the discrete one
ELBO_COEFFS = {"tau": 1e-4, "rho": 0.1, "beta_g": 1.0, "beta_b": 1.0, "alpha_force": -1.0}


def tiny_model(variant: str) -> tuple[GNM, torch.Tensor]:
    torch.manual_seed(0)
    cfg = VARIANTS[variant]
    return GNM(cfg).eval(), torch.rand(1, cfg.channels, cfg.image_size, cfg.image_size)


def test_log_densities_match_torch_distributions():
    g = torch.Generator().manual_seed(0)
    z, mu, std = torch.randn(3, 5, generator=g, dtype=torch.float64).unbind(0)
    std = std.abs() + 0.1
    torch.testing.assert_close(normal_log_prob(z, mu, std), Normal(mu, std).log_prob(z))
    torch.testing.assert_close(normal_log_prob(z, 0.0, 1.0), Normal(0.0, 1.0).log_prob(z))
    logit, value = mu * 5, (z > 0).double()
    torch.testing.assert_close(bernoulli_log_prob_logits(value, logit), Bernoulli(logits=logit).log_prob(value))


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_log_weights_shape_and_iwae_tightens_with_k(variant):
    model, x = tiny_model(variant)
    two = torch.cat([x, x.flip(-1)])
    weights = model.log_weights(two, 4)
    assert weights.shape == (4, 2) and torch.isfinite(weights).all()
    single = model.log_weights(x, 100)[:, 0]
    iwae = iwae_log_likelihood(model.log_weights, x, k=50, chunk=25)
    assert float(iwae) > float(single.mean())  # by ~70 nats here; Jensen's gap grows with k


@pytest.mark.parametrize("variant", ["structdraw", "background"])
def test_mean_log_weight_is_the_elbo(variant):
    # E_q[log w] = E_q[log p(x | z)] - KL(q || p) = ELBO: compare forward()'s ELBO (analytic KLs,
    # z_pres relaxed at tau -> 0) with the mean of 1,000 single-sample log weights.
    model, x = tiny_model(variant)
    weights = model.log_weights(x, 1000)[:, 0].double()
    with torch.no_grad():
        elbo = torch.stack([model(x.repeat(100, 1, 1, 1), ELBO_COEFFS).terms["elbo"] for _ in range(4)]).double()
    se = math.sqrt(weights.var() / len(weights) + elbo.var() / len(elbo))
    assert abs(float(weights.mean() - elbo.mean())) < 4 * se, (float(weights.mean()), float(elbo.mean()), se)


def test_curves_png_draws_every_seed(tmp_path):
    runs = [DStepsResult(100, False, [(50, 0.7), (100, 0.92)]), DStepsResult(100, True, [(50, 0.6), (100, 0.8)])]
    path = plot_curves(runs, 0.9, tmp_path / "curves.png")
    pixels = np.asarray(Image.open(path).convert("RGB"))
    assert pixels.shape == (400, 600, 3) and (pixels != 255).any(-1).sum() > 500  # lines, not a blank page
