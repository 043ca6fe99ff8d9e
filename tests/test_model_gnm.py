"""The GNM module end to end: forward terms and loss, learning, sampling, inference, robustness."""

from __future__ import annotations

import pytest
import torch

from gnm.model import GNM, PRESETS, GNMOutput, ModelConfig
from gnm.model.gnm import ELBO_TERMS, LOSS_WEIGHTS
from gnm.model.structure import box_pixels, where_to_box

COEFFS = {"tau": 1.0, "rho": 0.1, "beta_g": 0.5, "beta_b": 50.0, "alpha_force": -1.0}
TERMS = {"nll", "kl_zg", "kl_zs_pres", "kl_zs_where", "kl_zs_what", "kl_zs_depth", "kl_bg",
         "aux_pres", "aux_where", "aux_what", "aux_depth", "aux_bg", "elbo"}
TINY_ARROW = ModelConfig.tiny(channels=3, glimpse_alpha=True, use_background=True)
CONFIGS = {
    "mnist": PRESETS["mnist"],
    "arrow": PRESETS["arrow"],
    "tiny-gaussian": ModelConfig.tiny(global_prior="gaussian"),
    "tiny-nomlp": ModelConfig.tiny(use_interaction_mlp=False),
    "tiny-draw8": ModelConfig.tiny(draw_steps=8),
    "tiny-arrow": TINY_ARROW,
}


def images(cfg: ModelConfig, batch: int = 2, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.rand(batch, cfg.channels, cfg.image_size, cfg.image_size, generator=g)


def check_sample_shapes(sample, cfg: ModelConfig, batch: int) -> None:
    n, g = cfg.num_cells, cfg.glimpse_size
    assert sample.image.shape == (batch, cfg.channels, cfg.image_size, cfg.image_size)
    assert sample.image.min() >= 0 and sample.image.max() <= 1
    assert sample.pres.shape == (batch, n) and sample.depth.shape == (batch, n)
    assert sample.boxes.shape == (batch, n, 4) and sample.what.shape == (batch, n, cfg.z_what_dim)
    assert sample.glimpses.shape == (batch, n, cfg.glimpse_out_channels, g, g)
    assert sample.z_g.shape == (batch, cfg.z_g_dim)


@pytest.mark.parametrize("name", list(CONFIGS))
def test_forward_terms_and_shapes(name: str) -> None:
    cfg = CONFIGS[name]
    torch.manual_seed(0)
    out = GNM(cfg)(images(cfg), COEFFS)
    assert isinstance(out, GNMOutput) and set(out.terms) == TERMS
    assert out.loss.dim() == 0 and all(v.dim() == 0 and torch.isfinite(v) for v in out.terms.values())
    assert out.recon.shape == (2, cfg.channels, cfg.image_size, cfg.image_size)
    check_sample_shapes(out.sample, cfg, 2)
    kls = [v for k, v in out.terms.items() if k.startswith(("kl", "aux"))]
    assert all(v >= -1e-4 for v in kls)
    expected_loss = sum(out.terms[k] * (COEFFS.get(w, 1.0) if w else 1.0) for k, w in LOSS_WEIGHTS.items())
    torch.testing.assert_close(out.loss, expected_loss)
    torch.testing.assert_close(out.terms["elbo"], -sum(out.terms[k] for k in ELBO_TERMS))
    if not cfg.use_background:
        assert out.terms["kl_bg"] == 0 and out.terms["aux_bg"] == 0


def test_coefficients_weight_their_terms() -> None:
    cfg, x = TINY_ARROW, images(TINY_ARROW)
    model = GNM(cfg)

    def run(**changes: float) -> GNMOutput:
        torch.manual_seed(1)
        return model(x, {**COEFFS, **changes})

    base, more_g, more_b = run(), run(beta_g=1.5), run(beta_b=10.0)
    close = dict(rtol=1e-4, atol=1e-2)  # differences of float32 losses of a few thousand
    torch.testing.assert_close(more_g.loss - base.loss, 1.0 * base.terms["kl_zg"], **close)
    torch.testing.assert_close(more_b.loss - base.loss, -40.0 * base.terms["aux_bg"], **close)
    optional = run(beta_aux_where=3.0)
    torch.testing.assert_close(optional.loss - base.loss, 2.0 * base.terms["aux_where"], **close)
    lower_rho = run(rho=1e-3)
    assert lower_rho.terms["aux_pres"] != base.terms["aux_pres"]
    with pytest.raises(KeyError, match="tau"):
        model(x, {k: v for k, v in COEFFS.items() if k != "tau"})


def test_alpha_force_changes_the_reconstruction() -> None:
    cfg, x = TINY_ARROW, images(TINY_ARROW)
    model = GNM(cfg)
    torch.manual_seed(2)
    free = model(x, COEFFS).recon
    torch.manual_seed(2)
    forced = model(x, {**COEFFS, "alpha_force": 0.9}).recon
    assert not torch.allclose(free, forced)


def squares(cfg: ModelConfig, batch: int) -> torch.Tensor:
    """Images with two bright squares on black: structure the model can learn in a few steps."""
    x = torch.zeros(batch, cfg.channels, cfg.image_size, cfg.image_size)
    side = cfg.image_size // 6
    for i in range(batch):
        for top, left in [(2 + i, 3 + 2 * i), (cfg.image_size // 2 + i, cfg.image_size // 2 - i)]:
            x[i, :, top:top + side, left:left + side] = 1.0
    return x


@pytest.mark.parametrize("name, lr, steps", [("mnist", 1e-4, 4), ("tiny-arrow", 1e-3, 25)])
def test_rmsprop_steps_lower_the_loss_on_a_fixed_batch(name: str, lr: float, steps: int) -> None:
    cfg = CONFIGS[name]
    torch.manual_seed(0)
    model = GNM(cfg)
    x = squares(cfg, batch=2)
    opt = torch.optim.RMSprop(model.parameters(), lr=lr)

    def evaluate() -> float:
        torch.manual_seed(123)
        with torch.no_grad():
            return model(x, COEFFS).loss.item()

    before = evaluate()
    for _ in range(steps):
        opt.zero_grad()
        model(x, COEFFS).loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
    after = evaluate()
    print(f"{name}: loss {before:.1f} -> {after:.1f}")
    assert after < 0.8 * before, (before, after)


@pytest.mark.parametrize("name", ["mnist", "arrow", "tiny-gaussian", "tiny-nomlp"])
def test_sample_from_the_prior(name: str) -> None:
    cfg = CONFIGS[name]
    model = GNM(cfg)
    a = model.sample(3, generator=torch.Generator().manual_seed(7))
    b = model.sample(3, generator=torch.Generator().manual_seed(7))
    c = model.sample(3, generator=torch.Generator().manual_seed(8))
    check_sample_shapes(a, cfg, 3)
    assert set(a.pres.unique().tolist()) <= {0.0, 1.0}
    assert torch.equal(a.image, b.image) and torch.equal(a.z_g, b.z_g)
    assert not torch.equal(a.z_g, c.z_g)


def test_infer_returns_posterior_modes_and_matching_boxes() -> None:
    cfg = PRESETS["mnist"]
    model = GNM(cfg)
    x = images(cfg)
    inferred = model.infer(x)
    check_sample_shapes(inferred, cfg, 2)
    params = model.heads(model.encoder(x))
    assert torch.equal(inferred.pres, (params.pres_logit > 0).float())
    torch.testing.assert_close(inferred.pres_prob, torch.sigmoid(params.pres_logit))
    torch.testing.assert_close(inferred.boxes, box_pixels(*where_to_box(params.where_mu, cfg.grid), cfg.image_size))
    torch.testing.assert_close(model.infer(x).image, inferred.image)  # deterministic


@pytest.mark.parametrize("name", ["mnist", "tiny-arrow"])
def test_no_nan_for_extreme_inputs(name: str) -> None:
    cfg = CONFIGS[name]
    model = GNM(cfg)
    shape = (2, cfg.channels, cfg.image_size, cfg.image_size)
    harsh = {**COEFFS, "tau": 0.05, "rho": 1e-6, "beta_b": 1.0, "alpha_force": 0.9}
    cases = {"zeros": (torch.zeros(shape), COEFFS), "ones": (torch.ones(shape), harsh),
             "huge": (torch.full(shape, 1e4), harsh), "binary noise": ((torch.rand(shape) > 0.5).float(), COEFFS)}
    for label, (x, coeffs) in cases.items():
        model.zero_grad()
        out = model(x, coeffs)
        out.loss.backward()
        assert torch.isfinite(out.loss), label
        assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None), label
        assert torch.isfinite(model.infer(x).image).all(), label



def test_objects_survive_the_first_steps_on_real_scenes():
    """Dark glimpses at init: the first steps on MNIST-4 scenes must not switch every z_pres off
    (with glimpse_init_bias=0 the mean presence probability falls from 0.21 to 0.0002 in 20 steps)."""
    import numpy as np

    from scenegen.datasets import get_spec

    spec = get_spec("mnist4")
    cfg = spec.config_type()
    scenes = spec.make_shard(cfg, "train", np.random.default_rng(0), 8, spec.prepare(cfg, "train", {"digits": "bundled"}))
    x = torch.from_numpy(np.stack([s.image for s in scenes])).permute(0, 3, 1, 2).float() / 255
    torch.manual_seed(0)
    model = GNM(ModelConfig())
    optimiser = torch.optim.Adam(model.parameters(), lr=3e-4)
    coeffs = {"tau": 1.0, "rho": 0.1, "beta_g": 0.0, "beta_b": 1.0, "alpha_force": -1.0,
              "beta_aux_pres": 0.0, "beta_aux_where": 0.0, "beta_aux_what": 0.0, "beta_aux_depth": 0.0}

    def presence() -> float:
        with torch.no_grad():
            return torch.sigmoid(model.heads(model.encoder(x)).pres_logit).mean().item()

    before = presence()
    for _ in range(20):
        optimiser.zero_grad()
        model(x, coeffs).loss.backward()
        optimiser.step()
    assert presence() > 0.5 * before
