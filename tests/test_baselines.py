"""The paper's baselines (VAE, ConvDRAW, ConvDRAW-MLP) and the SPACE-style GNM: the model
protocol (forward, sample, log_weights; infer only with boxes), the real trainer on real
scenes, checkpoints, recipes and `gnm info`."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from PIL import Image
from typer.testing import CliRunner

from gnm.cli import app
from gnm.config import RunConfig, resolve_run_config, to_plain
from gnm.eval.ll import iwae_log_likelihood
from gnm.model import GNM, MODEL_KINDS, GenerativeModel, GNMSample, ModelConfig, build_model, count_parameters
from gnm.model import config as model_config
from gnm.model.baselines import ConvDRAW, ImageSample, VAE
from gnm.model.structdraw import StructDRAW
from gnm.train.checkpoint import load_checkpoint, load_model
from scenegen.manifest import write_torch_atomic
from gnm.train.loop import train
from gnm.train.schedules import coefficients
from scenegen.data import ShardDataset
from scenegen.errors import UserError

RECIPES = Path(__file__).resolve().parents[1] / "recipes"
GNM_COEFFS = {"tau": 1.0, "rho": 0.1, "beta_g": 1.0, "beta_b": 1.0, "alpha_force": -1.0}
# name -> (tiny 32 px config, coefficients)
KINDS = {
    "vae": (ModelConfig.tiny(kind="vae"), {"beta": 1.0}),
    "convdraw": (ModelConfig.tiny(kind="convdraw", use_interaction_mlp=False), {"beta": 1.0}),
    "convdraw-mlp": (ModelConfig.tiny(kind="convdraw"), {"beta": 1.0}),
    "space": (ModelConfig.tiny(global_prior="none", sample_z_s="draw"), GNM_COEFFS),
}
# name -> (recipe, overrides): the recipes with small widths for runs on 128 px scenes
SMALL = ["model.enc_channels=[8,8,8,8,8,8,8,8,8]", "model.image_dec_channels=[8,8,8,8,8,8,8,8,8,8]",
         "model.draw_hidden=8", "model.nomlp_hidden=8", "model.interaction_mlp=[16]", "model.dec_mlp=[16,64]",
         "model.vae_hidden=8", "model.vae_z_dim=8", "model.head_hidden=8", "model.glimpse_channels=[8,8,8,8,4]"]
RECIPE_RUNS = {
    "vae": ("vae-mnist4", []),
    "convdraw": ("convdraw4-mnist4", ["model.z_g_step_dim=32"]),
    "convdraw-mlp": ("convdraw-mlp-mnist10", ["dataset=mnist4"]),
    "space": ("space-mnist4", []),
}
STEPS = 8


@pytest.fixture(autouse=True)
def one_thread():
    """These models are tiny: on a shared CPU one thread runs them several times faster than two."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def images(cfg: ModelConfig, batch: int = 2, seed: int = 0) -> torch.Tensor:
    return torch.rand(batch, cfg.channels, cfg.image_size, cfg.image_size, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("name", list(KINDS))
def test_protocol_shapes(name: str) -> None:
    cfg, coeffs = KINDS[name]
    torch.manual_seed(0)
    model = build_model(cfg)
    x = images(cfg)
    shape = (2, cfg.channels, cfg.image_size, cfg.image_size)
    assert isinstance(model, GenerativeModel) and hasattr(model, "infer") == (name == "space")
    out = model(x, coeffs)
    assert out.loss.dim() == 0 and {"nll", "elbo"} <= out.terms.keys()
    assert all(v.dim() == 0 and torch.isfinite(v) for v in out.terms.values())
    assert out.recon.shape == shape and out.sample.image.shape == shape
    if cfg.kind != "gnm":
        terms = out.terms
        assert set(terms) == {"nll", "kl", "elbo"} and isinstance(out.sample, ImageSample) and terms["kl"] > 0
        torch.testing.assert_close(out.loss, terms["nll"] + terms["kl"])
        torch.testing.assert_close(terms["elbo"], -(terms["nll"] + terms["kl"]))
    sample = model.sample(3, generator=torch.Generator().manual_seed(1)).image
    assert sample.shape == (3, *shape[1:]) and 0 <= sample.min() and sample.max() <= 1
    weights = model.log_weights(x, 4)
    assert weights.shape == (4, 2) and torch.isfinite(weights).all()


@pytest.mark.parametrize("name", list(KINDS))
def test_samples_are_deterministic_for_a_seed(name: str) -> None:
    model = build_model(KINDS[name][0])
    a, b, c = (model.sample(3, generator=torch.Generator().manual_seed(s)).image for s in (7, 7, 8))
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_without_a_global_latent_only_drawing_z_s_makes_samples_differ() -> None:
    draw = build_model(KINDS["space"][0])
    mode = build_model(KINDS["space"][0].replace(sample_z_s="mode"))
    mode.load_state_dict(draw.state_dict())
    modes = [mode.sample(2, generator=torch.Generator().manual_seed(s)).image for s in (7, 8)]
    drawn = [draw.sample(2, generator=torch.Generator().manual_seed(s)).image for s in (7, 8)]
    assert torch.equal(modes[0], modes[1])  # the mode of p(z_s): one scene, whatever the seed
    assert not torch.equal(drawn[0], drawn[1]) and not torch.equal(drawn[0][0], drawn[0][1])


@pytest.mark.parametrize("name", ["vae", "convdraw"])
def test_log_weights_average_to_the_elbo(name: str) -> None:
    cfg, coeffs = KINDS[name]
    torch.manual_seed(0)
    model = build_model(cfg)
    x = images(cfg)
    n = 1000
    with torch.no_grad():
        weights = model.log_weights(x, n)  # [n, 2]: E_q[log w] = ELBO
        elbo = model(x.repeat(n, 1, 1, 1), coeffs).terms["elbo"]  # batch mean over n samples of each image
    error = weights.std() / n ** 0.5
    assert abs(weights.mean() - elbo) < 5 * error, (weights.mean(), elbo, error)
    iwae = iwae_log_likelihood(model.log_weights, x, k=50).mean()
    assert iwae > weights.mean()  # the IWAE bound is tighter than the ELBO


def test_space_style_gnm_has_no_global_latent() -> None:
    cfg = KINDS["space"][0]
    torch.manual_seed(0)
    model = build_model(cfg)
    assert isinstance(model, GNM) and count_parameters(model)["structdraw"] == cfg.feature_channels * cfg.num_cells
    out = model(images(cfg), GNM_COEFFS)
    assert out.terms["kl_zg"] == 0 and out.sample.z_g.shape == (2, 0) and cfg.z_g_dim == 0
    structure = ("kl_zs_pres", "kl_zs_where", "kl_zs_what", "kl_zs_depth", "aux_pres", "aux_where", "aux_what")
    assert all(out.terms[t] > 0 for t in structure)
    inferred = model.infer(images(cfg))
    assert isinstance(inferred, GNMSample) and inferred.boxes.shape == (2, cfg.num_cells, 4)
    with pytest.raises(ValueError, match="no use_background"):
        cfg.replace(channels=3, glimpse_alpha=True, use_background=True)


@pytest.mark.parametrize("name", list(RECIPE_RUNS))
def test_trainer_lowers_the_loss_and_checkpoints_round_trip(name: str, mnist4_split: Path, tmp_path: Path) -> None:
    recipe, extra = RECIPE_RUNS[name]
    cfg = resolve_run_config(RECIPES / f"{recipe}.yaml", [
        *SMALL, *extra, "train.device=cpu", f"train.steps={STEPS}", f"train.ckpt_every={STEPS}", "train.batch_size=4",
        "train.optimizer=adam", "train.lr=3e-3", "train.n_check_samples=0", "train.num_workers=0", "train.log_every=4",
    ])
    x = torch.stack([ShardDataset(mnist4_split)[i][0] for i in range(4)])  # a fixed batch of real scenes
    coeffs = coefficients(cfg.schedule, 0)

    def loss(model: torch.nn.Module) -> float:
        torch.manual_seed(123)
        with torch.no_grad():
            return model(x, coeffs).loss.item()

    torch.manual_seed(cfg.train.seed)  # the trainer's initial weights
    before = loss(build_model(cfg.model))
    result = train(cfg, mnist4_split, tmp_path, say=lambda _msg: None)
    loaded_cfg, model, step = load_model(tmp_path, torch.device("cpu"))
    assert step == result.step == STEPS and loaded_cfg == cfg and type(model) is MODEL_KINDS[cfg.model.kind].cls
    state = load_checkpoint(result.checkpoint)["model"]
    assert state.keys() == model.state_dict().keys()
    assert all(torch.equal(p, state[k]) for k, p in model.state_dict().items())
    after = loss(model)
    print(f"{name}: loss {before:.1f} -> {after:.1f}")
    assert after < before - 0.05 * abs(before), (before, after)
    # `gnm reconstruct` works for every kind: boxes for object models, the plain reconstruction otherwise
    shown = CliRunner().invoke(app, ["reconstruct", "--run", str(tmp_path), "--data", str(mnist4_split), "--n", "3",
                                     "--out", str(tmp_path / "r.png"), "--device", "cpu"])
    assert shown.exit_code == 0, shown.output
    assert Image.open(tmp_path / "r.png").size == (2 + 3 * 130, 2 + 2 * 130)


@pytest.mark.parametrize("recipe, kind, components", [
    ("vae-mnist4", "vae", ["encoder", "latent", "decoder"]),
    ("convdraw8-arrow", "convdraw", ["encoder", "draw", "decoder"]),
    ("space-mnist10", "gnm", ["encoder", "structdraw", "heads", "glimpse", "background"]),
])
def test_info_prints_each_kinds_components(recipe: str, kind: str, components: list[str]) -> None:
    result = CliRunner().invoke(app, ["info", "--recipe", str(RECIPES / f"{recipe}.yaml")])
    assert result.exit_code == 0, result.output
    counts = count_parameters(build_model(resolve_run_config(RECIPES / f"{recipe}.yaml").model))
    assert list(counts) == [*components, "total"] and f"model {kind}" in result.stdout
    assert all(f"{name:>12}: {count:>10,}" in result.stdout for name, count in counts.items())


def test_baseline_recipes() -> None:
    def cfg(name: str) -> RunConfig:
        return resolve_run_config(RECIPES / f"{name}.yaml")

    for name in ("vae-mnist4", "vae-arrow", "convdraw4-mnist10", "convdraw8-mnist4-10", "convdraw-mlp-arrow"):
        assert set(cfg(name).schedule) == {"beta"} and cfg(name).train == cfg("gnm-mnist4").train
    assert cfg("vae-arrow").model.channels == 3 and cfg("vae-arrow").model.kind == "vae"
    conv = cfg("convdraw4-mnist4").model
    assert (conv.kind, conv.draw_steps, conv.use_interaction_mlp, conv.z_g_step_dim, conv.nomlp_hidden) == (
        "convdraw", 4, False, 512, 128)
    assert cfg("convdraw8-arrow").model.draw_steps == 8 and cfg("convdraw8-arrow").dataset == "arrow-room"
    assert cfg("convdraw-mlp-mnist10").model.use_interaction_mlp and cfg("convdraw-mlp-mnist10").model.z_g_step_dim == 32
    assert cfg("convdraw8-beta10-mnist4-10").schedule["beta"].end_value == 10.0
    assert cfg("space-mnist4").model.global_prior == "none" and cfg("space-mnist4").schedule == cfg("gnm-mnist4").schedule
    # ConvDRAW-MLP draws with GNM's StructDRAW itself
    assert isinstance(build_model(cfg("convdraw-mlp-mnist10").model).latent, StructDRAW)


def test_coefficients_belong_to_the_model_kind(tmp_path: Path) -> None:
    assert tuple(MODEL_KINDS) == model_config.MODEL_KINDS
    vae = RECIPES / "vae-mnist4.yaml"
    (tmp_path / "extra.yaml").write_text(f"base: {vae}\nschedule: {{tau: [1, 1, 0, 0]}}\n")
    (tmp_path / "nobeta.yaml").write_text(f"base: {vae}\nschedule: {{beta: null}}\n")
    with pytest.raises(UserError, match="'tau' is no model coefficient of kind vae; known: beta"):
        resolve_run_config(tmp_path / "extra.yaml")
    with pytest.raises(UserError, match=r"schedule lacks \['beta'\]"):
        resolve_run_config(tmp_path / "nobeta.yaml")
    with pytest.raises(UserError, match="kind must be one of"):
        resolve_run_config(vae, ["model.kind=nope"])
    with pytest.raises(KeyError, match="beta"):
        VAE(KINDS["vae"][0])(images(KINDS["vae"][0]), GNM_COEFFS)
    with pytest.raises(ValueError, match="direct_write"):
        StructDRAW(KINDS["convdraw-mlp"][0], direct_write=True)
    assert isinstance(build_model(KINDS["convdraw"][0]), ConvDRAW)


def test_checkpoints_from_before_model_kinds_load_as_gnm(tmp_path: Path) -> None:
    cfg = resolve_run_config(RECIPES / "gnm-mnist4-tiny.yaml")
    plain = to_plain(cfg)
    new_fields = ("kind", "vae_z_dim", "vae_hidden", "image_dec_channels", "image_dec_kernels", "image_dec_upscales")
    plain["model"] = {k: v for k, v in plain["model"].items() if k not in new_fields}
    torch.manual_seed(0)
    weights = GNM(cfg.model).state_dict()
    write_torch_atomic(tmp_path / "old.pt", {"step": 3, "model": weights, "config": plain})
    loaded_cfg, model, step = load_model(tmp_path / "old.pt", torch.device("cpu"))
    assert loaded_cfg == cfg and type(model) is GNM and step == 3
    assert all(torch.equal(p, weights[k]) for k, p in model.state_dict().items())
