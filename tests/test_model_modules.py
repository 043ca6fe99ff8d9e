"""Shapes and properties of every GNM module, for the paper presets and the ablations."""

from __future__ import annotations

import pytest
import torch

from gnm.model import PRESETS, ModelConfig
from gnm.model.background import Background
from gnm.model.distributions import normal_kl
from gnm.model.encoder import Encoder
from gnm.model.glimpse import GlimpseDecoder
from gnm.model.layers import CELU
from gnm.model.structdraw import GaussianGlobal, StructDRAW
from gnm.model.structure import StructureHeads

B = 2
VARIANTS = {
    "structdraw": {},
    "gaussian": {"global_prior": "gaussian"},
    "nomlp": {"use_interaction_mlp": False},
    "draw8": {"draw_steps": 8},
}


@pytest.mark.parametrize("preset", ["mnist", "arrow"])
def test_encoder_shape(preset: str) -> None:
    cfg = PRESETS[preset]
    f_x = Encoder(cfg)(torch.rand(B, cfg.channels, 128, 128))
    assert f_x.shape == (B, cfg.feature_channels, 4, 4)


@pytest.mark.parametrize("preset", ["mnist", "arrow"])
def test_heads_shapes_and_bounds(preset: str) -> None:
    cfg = PRESETS[preset]
    heads = StructureHeads(cfg)
    p = heads(100 * torch.randn(B, cfg.feature_channels, 4, 4))
    n, d = cfg.num_cells, cfg.z_what_dim
    assert p.pres_logit.shape == (B, n) and p.where_mu.shape == (B, n, 4) and p.where_std.shape == (B, n, 4)
    assert p.depth_mu.shape == (B, n) and p.depth_std.shape == (B, n)
    assert p.what_mu.shape == (B, n, d) and p.what_std.shape == (B, n, d)
    assert p.pres_logit.abs().max() <= cfg.pres_logit_scale
    assert min(p.where_std.min(), p.depth_std.min(), p.what_std.min()) >= cfg.std_floor
    mode = p.mode()
    assert set(mode.pres.unique().tolist()) <= {0.0, 1.0} and torch.equal(mode.what, p.what_mu)
    sample = p.rsample(tau=0.5)
    assert sample.what.shape == (B, n, d) and ((sample.pres >= 0) & (sample.pres <= 1)).all()


def test_prior_and_posterior_share_one_network() -> None:
    cfg = PRESETS["mnist"]
    heads = StructureHeads(cfg)
    canvas, f_x = torch.randn(B, 64, 4, 4), torch.randn(B, 64, 4, 4)
    prior, post = heads.prior_and_posterior(canvas, f_x)
    torch.testing.assert_close(prior.what_mu, heads(canvas).what_mu)
    torch.testing.assert_close(post.where_std, heads(f_x).where_std)


def test_heads_start_with_release_box_scale() -> None:
    cfg = PRESETS["mnist"]
    p = StructureHeads(cfg)(torch.randn(B, 64, 4, 4))
    # near-input-independent initial boxes: scale logit init_scale_logit, no shift
    assert (p.where_mu[..., 0] - cfg.init_scale_logit).abs().max() < 0.5
    assert p.where_mu[..., 2:].abs().max() < 0.5


@pytest.mark.parametrize("preset, variant", [("arrow", "structdraw"), *[("mnist", v) for v in VARIANTS]])
def test_global_latent_shapes(preset: str, variant: str) -> None:
    cfg = PRESETS[preset].replace(**VARIANTS[variant])
    prior = {"structdraw": StructDRAW, "gaussian": GaussianGlobal}[cfg.global_prior](cfg)
    f_x = torch.randn(B, cfg.feature_channels, 4, 4)
    inferred = prior.infer(f_x, torch.randn_like)
    z_dim = cfg.draw_steps * cfg.z_g_step_dim
    assert inferred.z.shape == inferred.p_mu.shape == inferred.q_std.shape == (B, z_dim)
    assert inferred.canvas.shape == (B, cfg.feature_channels, 4, 4)
    generated = prior.generate(3, torch.randn_like)
    assert generated.z.shape == (3, z_dim) and generated.q_mu is None
    assert generated.canvas.shape == (3, cfg.feature_channels, 4, 4)


def test_structdraw_follows_algorithm_1() -> None:
    cfg = PRESETS["tiny"]
    draw = StructDRAW(cfg)
    f_x = torch.randn(4, cfg.feature_channels, 4, 4)
    out = draw.infer(f_x, torch.zeros_like)
    step = cfg.z_g_step_dim
    # step 1's prior comes from h_dec,0 = 0: the same for every image
    assert torch.allclose(out.p_mu[:, :step], out.p_mu[:1, :step].expand(4, step))
    # later priors depend on z_<l, posteriors on the image
    assert not torch.allclose(out.p_mu[0, step:], out.p_mu[1, step:])
    assert not torch.allclose(out.q_mu[0, :step], out.q_mu[1, :step])
    # with zero noise z is the posterior mean, and the whole pass is deterministic
    torch.testing.assert_close(out.z, out.q_mu)
    torch.testing.assert_close(draw.infer(f_x, torch.zeros_like).canvas, out.canvas)
    # generation with zero noise follows the prior means
    gen = draw.generate(2, torch.zeros_like)
    torch.testing.assert_close(gen.z, gen.p_mu)


def test_structdraw_kl_matches_monte_carlo_over_the_autoregression() -> None:
    """sum_l KL(q_l || p_l(z_<l)) averaged over z_<l ~ q equals E_q[log q(z) - log p(z)]."""
    torch.manual_seed(0)
    cfg = PRESETS["tiny"]
    draw = StructDRAW(cfg)
    with torch.no_grad():
        out = draw.infer(torch.randn(1, cfg.feature_channels, 4, 4).expand(5_000, -1, -1, -1), torch.randn_like)
    normal = torch.distributions.Normal
    log_ratio = (normal(out.q_mu, out.q_std).log_prob(out.z) - normal(out.p_mu, out.p_std).log_prob(out.z)).sum(-1)
    analytic = normal_kl(out.q_mu, out.q_std, out.p_mu, out.p_std).sum(-1)
    err = log_ratio.std() / len(log_ratio) ** 0.5
    assert abs(analytic.mean() - log_ratio.mean()) < 5 * err


@pytest.mark.parametrize("preset", ["mnist", "arrow"])
def test_glimpse_decoder_shape(preset: str) -> None:
    cfg = PRESETS[preset]
    out = GlimpseDecoder(cfg)(torch.randn(B, cfg.num_cells, cfg.z_what_dim))
    assert out.shape == (B, cfg.num_cells, cfg.glimpse_out_channels, cfg.glimpse_size, cfg.glimpse_size)
    assert ((out > 0) & (out < 1)).all()


def test_background_shapes() -> None:
    cfg = PRESETS["arrow"]
    bg = Background(cfg)
    mu, std = bg.posterior(torch.randn(B, 128, 4, 4))
    p_mu, p_std = bg.prior(torch.randn(B, cfg.z_g_dim))
    assert mu.shape == std.shape == p_mu.shape == p_std.shape == (B, cfg.z_bg_dim)
    image = bg.decode(mu)
    assert image.shape == (B, 3, 128, 128) and ((image > 0) & (image < 1)).all()


def test_celu_matches_torch_with_gradients() -> None:
    x = torch.linspace(-30, 30, 1001, dtype=torch.float64, requires_grad=True)
    torch.testing.assert_close(CELU()(x), torch.nn.functional.celu(x))
    assert torch.autograd.gradcheck(CELU(), (torch.randn(50, dtype=torch.float64, requires_grad=True),))


def test_tiny_preset_is_a_valid_miniature() -> None:
    cfg = ModelConfig.tiny()
    assert cfg.image_size == 32 and cfg.grid == 4
