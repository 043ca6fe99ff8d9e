"""Run configs: recipes with `base:`, typed key=value overrides, clear errors, the saved copy."""

from __future__ import annotations

from pathlib import Path

import pytest

from gnm.config import (
    RUN_CONFIG_NAME,
    apply_overrides,
    config_for_run,
    load_run_config,
    resolve_run_config,
    save_run_config,
)
from gnm.model import GNM, ModelConfig, count_parameters
from gnm.train.schedules import ScheduleEntry
from scenegen.errors import UserError

RECIPES = Path(__file__).resolve().parents[1] / "recipes"
MNIST4 = RECIPES / "gnm-mnist4.yaml"


@pytest.mark.parametrize("recipe", sorted(RECIPES.glob("*.yaml")), ids=lambda p: p.stem)
def test_every_recipe_resolves(recipe):
    cfg = resolve_run_config(recipe)
    assert cfg.dataset in ("mnist4", "mnist10", "mnist4-10", "arrow-room")


def test_release_recipes_hold_the_paper_settings():
    mnist, arrow = resolve_run_config(MNIST4), resolve_run_config(RECIPES / "gnm-arrow.yaml")
    assert (mnist.train.batch_size, mnist.train.optimizer, mnist.train.lr, mnist.train.grad_clip) == (32, "rmsprop", 1e-4, 1.0)
    assert mnist.model == ModelConfig() and arrow.model == ModelConfig.arrow()
    assert count_parameters(GNM(mnist.model))["total"] == pytest.approx(2.9e6, rel=0.02)
    assert arrow.schedule["beta_b"] == ScheduleEntry(50.0, 1.0, 0, 50000)
    assert resolve_run_config(RECIPES / "gnm8-mnist4-10.yaml").model.draw_steps == 8
    assert resolve_run_config(RECIPES / "gnm-nomlp-arrow.yaml").model.use_interaction_mlp is False


def test_base_chain_merges_key_by_key():
    cfg = resolve_run_config(RECIPES / "gnm8-beta2-mnist4-10.yaml")
    assert cfg.dataset == "mnist4-10" and cfg.model.draw_steps == 8
    assert cfg.schedule["beta_g"].end_value == 2.0 and cfg.schedule["rho"] == ScheduleEntry(0.1, 1e-3, 0, 4000)


def test_overrides_are_parsed_to_the_field_types():
    cfg = resolve_run_config(MNIST4, [
        "train.batch_size=16", "train.lr=3e-4", "train.amp=false", "model.draw_steps=8",
        "model.interaction_mlp=[256,256]", "schedule.tau.end_step=5000", "schedule.rho=[0.2,0.01,0,100]",
        "dataset=mnist10",
    ])
    assert cfg.train.batch_size == 16 and cfg.train.lr == 3e-4 and cfg.train.amp is False
    assert cfg.model.draw_steps == 8 and cfg.model.interaction_mlp == (256, 256)
    assert cfg.schedule["tau"] == ScheduleEntry(1.0, 0.5, 1000, 5000)
    assert cfg.schedule["rho"] == ScheduleEntry(0.2, 0.01, 0, 100)
    assert cfg.dataset == "mnist10"


@pytest.mark.parametrize("override, message", [
    ("train.batchsize=3", "unknown config key 'train.batchsize'"),
    ("nothing=1", "unknown config key 'nothing'"),
    ("train.lr.x=1", "train.lr is a value, not a section"),
    ("schedule.gamma.end_step=3", "unknown config key 'schedule.gamma.end_step'"),
    ("train.batch_size=many", "train.batch_size: expected int"),
    ("train.batch_size=2.5", "train.batch_size: expected int"),
    ("train.amp=maybe", "train.amp: expected true or false"),
    ("train.optimizer=sgd", "train.optimizer: expected one of"),
    ("model.enc_channels=[8,x]", "model.enc_channels[1]: expected int"),
    ("model.global_prior=vae", "invalid ModelConfig"),
    ("schedule.tau.end_step=10", "start_step <= end_step"),
    ("train.batch_size", "is not key=value"),
])
def test_bad_overrides_name_the_problem(override, message):
    with pytest.raises(UserError) as err:
        resolve_run_config(MNIST4, [override])
    assert message in str(err.value) and "\n" not in str(err.value)


def test_recipe_errors(tmp_path):
    (tmp_path / "loop-a.yaml").write_text("base: loop-b\n")
    (tmp_path / "loop-b.yaml").write_text("base: loop-a\n")
    (tmp_path / "typo.yaml").write_text("dataset: mnist4\ntrian: {steps: 3}\n")
    (tmp_path / "noschedule.yaml").write_text("dataset: mnist4\n")
    (tmp_path / "badcoeff.yaml").write_text(f"base: {MNIST4}\nschedule: {{gamma: [1, 1, 0, 0]}}\n")
    cases = {
        "missing.yaml": "not found",
        "loop-a.yaml": "loops",
        "typo.yaml": "unknown config key trian",
        "noschedule.yaml": "schedule lacks",
        "badcoeff.yaml": "'gamma' is no model coefficient",
    }
    for name, message in cases.items():
        with pytest.raises(UserError) as err:
            resolve_run_config(tmp_path / name)
        assert message in str(err.value)


def test_saved_config_round_trips_and_wins_on_resume(tmp_path):
    cfg = resolve_run_config(RECIPES / "gnm-arrow.yaml", ["train.steps=7"])
    save_run_config(cfg, tmp_path / RUN_CONFIG_NAME)
    assert load_run_config(tmp_path / RUN_CONFIG_NAME) == cfg
    resumed, resuming = config_for_run(tmp_path, MNIST4, ["train.steps=9"])
    assert resuming and resumed == apply_overrides(cfg, ["train.steps=9"])
    fresh, resuming = config_for_run(tmp_path / "new", MNIST4)
    assert not resuming and fresh == resolve_run_config(MNIST4)
    with pytest.raises(UserError, match="no run to resume"):
        config_for_run(tmp_path / "new", None)
