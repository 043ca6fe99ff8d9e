"""gnm experiment: the scaled configs, and a real micro table (real recipes, real training steps,
real evaluation) that is written, then skipped and reused on the second call."""

from __future__ import annotations

import csv
import dataclasses
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from gnm.cli import app
from gnm.experiment.run import run_table, scaled_config
from gnm.experiment.scales import SCALES
from gnm.experiment.tables import GENERATION, GENERATION_EVAL, TABLES, Row, Table, recipe_name

RECIPES = Path(__file__).resolve().parents[1] / "recipes"
QUICK = SCALES["quick"]


def test_quick_scale_moves_every_warm_up_into_the_run_and_keeps_the_recipe_values():
    gnm = scaled_config(RECIPES / "gnm-mnist4.yaml", "mnist4", QUICK, "cpu")
    assert gnm.train.steps == 1500 and gnm.train.batch_size == 8 and gnm.train.optimizer == "adam"
    s = gnm.schedule
    assert (s["rho"].start_value, s["rho"].end_value, s["rho"].end_step) == (0.1, 1e-3, 500)
    assert (s["beta_g"].end_value, s["beta_g"].end_step) == (1.0, 1500)
    assert (s["tau"].start_step, s["tau"].end_step) == (105, 1005)
    for aux in ("beta_aux_pres", "beta_aux_where", "beta_aux_what", "beta_aux_depth"):  # added: warm-up from 0
        assert (s[aux].start_value, s[aux].end_value, s[aux].end_step) == (0.0, 1.0, 500)
    arrow = scaled_config(RECIPES / "gnm-arrow.yaml", "arrow-room", QUICK, "cpu").schedule
    assert (arrow["beta_aux_where"].start_value, arrow["beta_aux_where"].end_step) == (10.0, 83)  # annealed: kept, moved
    assert arrow["alpha_force"].start_step == arrow["alpha_force"].end_step == 75
    convdraw = scaled_config(RECIPES / "convdraw4-beta10-mnist10.yaml", "mnist10", QUICK, "cpu").schedule
    assert set(convdraw) == {"beta"} and (convdraw["beta"].end_value, convdraw["beta"].end_step) == (10.0, 1500)
    genesis = scaled_config(RECIPES / "genesis-mnist4.yaml", "mnist4", QUICK, "cpu")
    assert genesis.train.steps == 75  # a twentieth of 1,500: a GENESIS step costs 15-25 GNM steps
    assert (genesis.train.lr_scale.start_value, genesis.train.lr_scale.end_step) == (5.0, 25)  # high lr for the first third
    paper = scaled_config(RECIPES / "gnm-mnist4.yaml", "mnist4", SCALES["paper"], "cpu")
    assert paper.train.steps == 1_100_000 and paper.schedule["beta_g"].end_step == 100_000


def test_every_table_row_names_its_recipes():
    for table in TABLES.values():
        for row in table.rows:
            for dataset in table.datasets:
                assert (RECIPES / f"{recipe_name(row.model, dataset)}.yaml").is_file(), (row, dataset)


def test_micro_table_is_written_then_skipped_and_reused(tmp_path):
    table = Table("micro", "Micro table", ("mnist4",), (Row("GNM", "gnm"), Row("VAE", "vae"), Row("X", "no-such-model")),
                  GENERATION, GENERATION_EVAL)
    scale = dataclasses.replace(QUICK, train_scenes={"mnist4": 24}, test_scenes={"mnist4": 12}, steps={"mnist4": 2},
                                train={**QUICK.train, "batch_size": 2, "num_workers": 0},
                                eval={"n_samples": 0, "ll_k": 2, "ll_images": 2, "dsteps_seeds": 1,
                                      "dsteps_max_steps": 50})
    said: list[str] = []
    written = run_table(table, ("mnist4",), scale, tmp_path, RECIPES, "cpu", said.append)
    assert {p.name for p in written} == {"micro.md", "micro.csv", "micro-dsteps-mnist4.png"}
    rows = list(csv.reader((tmp_path / "micro.csv").open()))
    assert rows[0] == ["Model", "mnist4 S-Acc", "mnist4 D-Steps", "mnist4 LL"]
    by_model = {r[0]: r[1:] for r in rows[1:]}
    assert by_model["X"] == ["n/i"] * 3  # no recipe: not implemented
    for model in ("GNM", "VAE"):
        s_acc, d_steps, ll = by_model[model]
        assert s_acc == "n/a"  # --n-samples 0: not computed, not zero
        assert d_steps.lstrip(">=").isdigit() and int(d_steps.lstrip(">=")) <= 50
        assert float(ll) == pytest.approx(json.loads((tmp_path / "evals" / f"{model.lower()}-mnist4.json").read_text())["ll"], abs=1)
    evaluated = json.loads((tmp_path / "evals" / "gnm-mnist4.json").read_text())
    assert evaluated["step"] == 2 and evaluated["metrics_done"] == ["sacc", "dsteps", "ll"]
    assert (tmp_path / "samples" / "vae-mnist4.png").is_file()
    seconds = json.loads((tmp_path / "timing.json").read_text())["seconds"]
    assert seconds["train/gnm-mnist4"] > 0 and seconds["eval/vae-mnist4"] > 0 and seconds["data/mnist4"] > 0
    markdown = (tmp_path / "micro.md").read_text()
    assert "n/i: model not implemented" in markdown and "n/a: metric not applicable" in markdown
    time_row = next(line for line in markdown.splitlines() if line.startswith("| mnist4 |"))
    assert time_row.split(" | ")[-2] == "n/i" and "torch threads" in markdown  # X has no recipe; the hardware is named

    said.clear()
    run_table(table, ("mnist4",), scale, tmp_path, RECIPES, "cpu", said.append)
    assert any("gnm-mnist4: trained (2 steps), skipped" in m for m in said)
    assert not any("evaluating" in m or "training" in m for m in said)


@pytest.mark.parametrize("args, message", [
    (["table9"], "unknown table 'table9'"),
    (["table1", "--scale", "huge"], "unknown scale 'huge'"),
    (["table1", "--datasets", "mnist7"], "unknown dataset 'mnist7'"),
    (["table1", "--recipes", "/nonexistent"], "recipe folder /nonexistent not found"),
])
def test_bad_experiment_arguments_get_one_line(args, message):
    result = CliRunner().invoke(app, ["experiment", *args])
    assert result.exit_code == 1 and message in result.output and "Traceback" not in result.output
