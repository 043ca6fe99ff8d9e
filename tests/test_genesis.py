"""The GENESIS baseline (gnm/model/baselines/genesis.py): the model protocol, its masks, the IWAE
weights against the ELBO, training through the real trainer, checkpoints and recipes; and the
trainer's learning-rate schedule (train.lr_scale) that its recipes use."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from PIL import Image
from typer.testing import CliRunner

from gnm.cli import app
from gnm.config import TrainConfig, load_run_config, resolve_run_config, save_run_config
from gnm.eval.ll import iwae_log_likelihood
from gnm.model import GenerativeModel, ModelConfig, build_model, count_parameters
from gnm.model.baselines import Genesis, GenesisSample
from gnm.model.baselines.genesis import stick_breaking
from gnm.train.checkpoint import load_checkpoint, load_model
from gnm.train.loop import learning_rate, set_learning_rate, train
from gnm.train.schedules import ScheduleEntry, coefficients
from scenegen.data import ShardDataset
from test_baselines import images, one_thread  # noqa: F401 (one_thread: autouse fixture, torch on 1 thread)

RECIPES = Path(__file__).resolve().parents[1] / "recipes"
CFG = ModelConfig.tiny(kind="genesis", genesis_slots=3)  # 32 px, K = 3
COEFFS = {"beta": 2.0}
TERMS = {"nll", "kl_mask", "kl_comp", "kl", "elbo"}
# genesis-mnist4 with small widths, for runs on 128 px scenes
SMALL = ["model.enc_channels=[8,8,8,8,8,8,8,8,8]", "model.image_dec_channels=[8,8,8,8,8,8,8,8,8,8]",
         "model.genesis_slots=3", "model.genesis_hidden=16", "model.genesis_z_mask_dim=4", "model.genesis_z_comp_dim=4",
         "model.genesis_sbd_channels=[4,4,4]"]
STEPS = 8


def model(cfg: ModelConfig = CFG) -> Genesis:
    torch.manual_seed(0)
    built = build_model(cfg)
    assert isinstance(built, Genesis)
    return built


def test_protocol_shapes() -> None:
    net, x = model(), images(CFG)
    k, size = CFG.genesis_slots, CFG.image_size
    assert isinstance(net, GenerativeModel) and not hasattr(net, "infer")  # masks, not boxes: no box AP
    out = net(x, COEFFS)
    assert set(out.terms) == TERMS and all(v.dim() == 0 and torch.isfinite(v) for v in out.terms.values())
    assert out.terms["kl_mask"] > 0 and out.terms["kl_comp"] > 0
    torch.testing.assert_close(out.terms["kl"], out.terms["kl_mask"] + out.terms["kl_comp"])
    torch.testing.assert_close(out.loss, out.terms["nll"] + COEFFS["beta"] * out.terms["kl"])
    torch.testing.assert_close(out.terms["elbo"], -(out.terms["nll"] + out.terms["kl"]))
    assert out.recon.shape == out.sample.image.shape == (2, 1, size, size)
    assert out.sample.masks.shape == (2, k, 1, size, size) and out.sample.components.shape == (2, k, 1, size, size)
    sample = net.sample(3, generator=torch.Generator().manual_seed(1))
    assert isinstance(sample, GenesisSample) and sample.image.shape == (3, 1, size, size)
    assert 0 <= sample.image.min() and sample.image.max() <= 1
    weights = net.log_weights(x, 4)
    assert weights.shape == (4, 2) and torch.isfinite(weights).all()
    with pytest.raises(KeyError, match="beta"):
        net(x, {"tau": 1.0})


def test_masks_partition_every_pixel() -> None:
    net = model(CFG.replace(channels=3))
    out = net(images(net.cfg), COEFFS)
    for scene in (out.sample, net.sample(4, generator=torch.Generator().manual_seed(0))):
        assert scene.masks.min() >= 0
        torch.testing.assert_close(scene.masks.sum(1), torch.ones_like(scene.masks[:, 0]))
        torch.testing.assert_close(scene.image, (scene.masks * scene.components).sum(1).clamp(0, 1))
    # stick-breaking: m_1 = sigmoid(a_1), m_2 = (1 - m_1) sigmoid(a_2), m_3 takes the rest
    logits = torch.randn(5, 2, 1, 3, 3) * 4
    masks = stick_breaking(logits).exp()
    first, second = torch.sigmoid(logits[:, 0]), torch.sigmoid(logits[:, 1])
    torch.testing.assert_close(masks[:, 0], first)
    torch.testing.assert_close(masks[:, 1], (1 - first) * second)
    torch.testing.assert_close(masks[:, 2], (1 - first) * (1 - second))


def test_decompose_splits_each_scene_into_masked_components_at_the_posterior_means() -> None:
    net, x = model(), images(CFG)
    split = net.decompose(x)
    assert split.masks.shape == (2, CFG.genesis_slots, 1, CFG.image_size, CFG.image_size)
    torch.testing.assert_close(split.masks.sum(1), torch.ones_like(split.masks.sum(1)))
    torch.testing.assert_close(split.image, (split.masks * split.components).sum(1).clamp(0, 1))
    assert torch.equal(net.decompose(x).image, split.image)  # means, not draws


def test_log_weights_average_to_the_elbo_per_image() -> None:
    """E_q[log w] = ELBO for each image (the KLs are analytic given the sampled z^m_<k), within 5
    standard errors of n samples; the IWAE bound lies above it."""
    net, x, n = model(), images(CFG), 1000
    with torch.no_grad():
        weights = net.log_weights(x, n)  # [n, B]
        elbos = torch.stack([net(image[None].expand(n, -1, -1, -1), COEFFS).terms["elbo"] for image in x])
    assert ((weights.mean(0) - elbos).abs() < 5 * weights.std(0) / n ** 0.5).all(), (weights.mean(0), elbos)
    assert (iwae_log_likelihood(net.log_weights, x, k=50) > weights.mean(0)).all()


def test_samples_are_deterministic_for_a_seed() -> None:
    net = model()
    a, b, c = (net.sample(3, generator=torch.Generator().manual_seed(s)) for s in (7, 7, 8))
    assert torch.equal(a.image, b.image) and torch.equal(a.masks, b.masks)
    assert not torch.equal(a.image, c.image)


def fixed_noise_loss(net: torch.nn.Module, x: torch.Tensor, coeffs: dict[str, float]) -> float:
    """The loss of the batch x under the same posterior noise every time."""
    torch.manual_seed(123)
    with torch.no_grad():
        return net(x, coeffs).loss.item()


def test_trainer_lowers_the_loss_follows_the_lr_schedule_and_checkpoints(mnist4_split: Path, tmp_path: Path) -> None:
    # lr_scale [2, 1, 4, 4]: 4e-3 for steps 0..3, 2e-3 from step 4 on
    run = [f"train.steps={STEPS}", f"train.ckpt_every={STEPS}", "train.lr=2e-3", "train.lr_scale=[2,1,4,4]",
           "train.log_every=4", "train.batch_size=4", "train.n_check_samples=0", "train.num_workers=0",
           "train.device=cpu"]
    cfg = resolve_run_config(RECIPES / "genesis-mnist4.yaml", [*SMALL, *run])
    scenes = ShardDataset(mnist4_split)
    x, coeffs = torch.stack([scenes[i][0] for i in range(4)]), coefficients(cfg.schedule, 0)
    torch.manual_seed(cfg.train.seed)  # the trainer's initial weights
    before = fixed_noise_loss(build_model(cfg.model), x, coeffs)

    result = train(cfg, mnist4_split, tmp_path, say=lambda _msg: None)
    state = load_checkpoint(result.checkpoint)
    loaded_cfg, net, step = load_model(tmp_path, torch.device("cpu"))
    assert (step, result.step, loaded_cfg, type(net)) == (STEPS, STEPS, cfg, Genesis)
    assert all(torch.equal(p, state["model"][k]) for k, p in net.state_dict().items())
    after = fixed_noise_loss(net, x, coeffs)
    assert after < before - 0.05 * abs(before), (before, after)
    logged = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [(r["step"], r["lr"]) for r in logged if r["group"] == "train"] == [(4, 4e-3), (8, 2e-3)]
    assert {group["lr"] for group in state["optimizer"]["param_groups"]} == {2e-3}
    shown = CliRunner().invoke(app, ["reconstruct", "--run", str(tmp_path), "--data", str(mnist4_split), "--n", "2",
                                     "--out", str(tmp_path / "r.png"), "--device", "cpu"])
    assert shown.exit_code == 0, shown.output
    # gnm viz draws the slot figures (and only those) of a GENESIS run: scene, reconstruction, then K = 3 slots
    drawn = CliRunner().invoke(app, ["viz", "--run", str(tmp_path), "--data", str(mnist4_split), "--device", "cpu"])
    assert drawn.exit_code == 0, drawn.output
    assert sorted(p.name for p in (tmp_path / "figures").iterdir()) == ["slots-prior.png", "slots.png"]
    tile = 128 + 2
    assert Image.open(tmp_path / "figures" / "slots.png").size[0] == 2 + (2 + 3) * tile
    assert Image.open(tmp_path / "figures" / "slots-prior.png").size[0] == 2 + (1 + 3) * tile
    boxes = CliRunner().invoke(app, ["viz", "--run", str(tmp_path), "--figure", "componentwise", "--device", "cpu"])
    assert boxes.exit_code == 1 and "needs a model with infer(); a Genesis model draws slots-prior, slots" in boxes.output


def test_lr_scale_sets_the_learning_rate_of_each_step(tmp_path: Path) -> None:
    default = TrainConfig(lr=3e-4)
    assert all(learning_rate(default, s) == 3e-4 for s in (0, 1, 5000, 10 ** 7))  # default: lr unchanged
    drop = TrainConfig(lr=1e-4, lr_scale=ScheduleEntry(5.0, 1.0, 3000, 3000))
    assert [learning_rate(drop, s) for s in (0, 2999, 3000, 9999)] == pytest.approx([5e-4, 5e-4, 1e-4, 1e-4])
    warm_up = TrainConfig(lr=1e-3, lr_scale=ScheduleEntry(0.0, 1.0, 0, 100))
    assert [learning_rate(warm_up, s) for s in (0, 50, 100, 200)] == pytest.approx([0.0, 5e-4, 1e-3, 1e-3])
    optimizer = torch.optim.Adam([torch.nn.Parameter(torch.zeros(2)), torch.nn.Parameter(torch.zeros(3))], lr=1.0)
    set_learning_rate(optimizer, 0.25)
    assert [group["lr"] for group in optimizer.param_groups] == [0.25]
    # a recipe row, an override of one field, and the saved run config (a row again) read back
    cfg = resolve_run_config(RECIPES / "genesis-mnist4.yaml", ["train.lr_scale.end_step=6000"])
    assert cfg.train.lr_scale == ScheduleEntry(5.0, 1.0, 5000, 6000)
    save_run_config(cfg, tmp_path / "config.yaml")
    assert "lr_scale: [5.0, 1.0, 5000, 6000]" in (tmp_path / "config.yaml").read_text()
    assert load_run_config(tmp_path / "config.yaml") == cfg
    assert resolve_run_config(RECIPES / "vae-mnist4.yaml").train.lr_scale == TrainConfig().lr_scale


def test_genesis_recipes_and_info() -> None:
    def cfg(name: str):
        return resolve_run_config(RECIPES / f"genesis-{name}.yaml")

    slots = {"mnist4": 5, "mnist10": 11, "mnist4-10": 11, "arrow": 6}
    for name, k in slots.items():
        run = cfg(name)
        assert (run.model.kind, run.model.genesis_slots, set(run.schedule)) == ("genesis", k, {"beta"})
        assert run.train.lr_scale == ScheduleEntry(5.0, 1.0, 5000, 5000) and run.train.optimizer == "adam"
        beta = run.schedule["beta"]
        assert beta.start_value == beta.end_value == (15.0 if name == "arrow" else 10.0)
    assert cfg("arrow").dataset == "arrow-room" and cfg("arrow").model.channels == 3
    result = CliRunner().invoke(app, ["info", "--recipe", str(RECIPES / "genesis-mnist10.yaml")])
    assert result.exit_code == 0, result.output
    counts = count_parameters(build_model(cfg("mnist10").model))
    assert list(counts) == ["encoder", "mask_latent", "mask_decoder", "component", "total"]
    assert all(f"{name:>12}: {count:>10,}" in result.stdout for name, count in counts.items())
