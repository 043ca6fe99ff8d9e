"""`gnm eval` on a real tiny run trained one step: every metric at tiny settings, the n/a path
for a model without boxes, and bad input answered with one line and exit code 1."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch
from PIL import Image
from typer.testing import CliRunner

import scenegen.check
from conftest import make
from gnm.cli import app
from gnm.eval.ap import AP_KEYS
from gnm.eval.run import METRICS, EvalOptions, evaluate
from gnm.train.checkpoint import load_model
from scenegen.check import Verdict

ROOT = Path(__file__).resolve().parents[1]
TINY = str(ROOT / "recipes" / "gnm-mnist4-tiny.yaml")
CPU = torch.device("cpu")
runner = CliRunner()
# every costly part at its smallest: 4 prior samples, 3 posterior samples on 4 images, 2 D-Steps seeds of 2 steps
SMALL = ["--n-samples", "4", "--ll-k", "3", "--ll-images", "4", "--dsteps-seeds", "2", "--dsteps-max-steps", "2",
         "--batch-size", "8", "--device", "cpu"]


def gnm(*args: object):
    return runner.invoke(app, [str(a) for a in args])


class EveryOtherChecker:
    """Stands in for the rule checker (whose recogniser takes minutes to fit): passes images 0, 2, 4, ..."""

    @classmethod
    def for_dataset(cls, name: str, config: dict | None = None) -> EveryOtherChecker:
        return cls()

    def check(self, images: torch.Tensor) -> list[Verdict]:
        return [Verdict(i % 2 == 0, None, []) for i in range(len(images))]


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory) -> tuple[Path, Path]:
    """(run folder trained one step, test split with a `train` split next to it)."""
    root = tmp_path_factory.mktemp("eval")
    make("mnist4", root / "data" / "train", n=16)
    make("mnist4", root / "data" / "test", n=8, split="test")
    trained = gnm("train", "--data", root / "data" / "train", "--recipe", TINY, "--out", root / "run",
                  "--device", "cpu", "--steps", "1")
    assert trained.exit_code == 0, trained.output
    return root / "run", root / "data" / "test"


def finite(value: object) -> bool:
    return isinstance(value, float) and math.isfinite(value)


def test_every_metric_on_a_tiny_run(tiny_run, tmp_path, monkeypatch):
    monkeypatch.setattr(scenegen.check, "RuleChecker", EveryOtherChecker)
    run, test = tiny_run
    out = tmp_path / "eval" / "e.json"
    result = gnm("eval", "--run", run, "--data", test, "--json", out, *SMALL)
    assert result.exit_code == 0, result.output
    r = json.loads(out.read_text())
    assert r["step"] == 1 and r["n_images"] == 8 and "notes" not in r

    assert r["s_acc"] == 0.5 and r["s_acc_n"] == 4 and r["s_acc_ci95"][0] < 0.5 < r["s_acc_ci95"][1]
    assert Path(r["s_acc_grid"]) == out.with_name("e-samples-00000001.png") and Path(r["s_acc_grid"]).is_file()
    assert r["dsteps"] == 2.0 and r["dsteps_per_seed"] == [2, 2] and r["dsteps_censored"] == [True, True]
    assert r["dsteps_max_steps"] == 2 and Path(r["dsteps_curves"]) == out.with_name("e-dsteps.png")
    assert Image.open(r["dsteps_curves"]).size[0] > 100
    assert finite(r["ll"]) and finite(r["ll_sem"]) and r["ll_k"] == 3 and r["ll_n_images"] == 4
    assert all(finite(r[key]) and 0 <= r[key] <= 1 for key in AP_KEYS)
    assert finite(r["zwhat_acc"]) and 0 <= r["zwhat_acc"] <= 1
    assert r["zwhat_n_train"] > 0 and r["zwhat_n_test"] > 0
    assert "ap50_11pt" in result.stdout and "zwhat_acc" in result.stdout


class NoBoxes:
    """A baseline-like model: samples and log weights, but no `infer` (no boxes, no z_what)."""

    def __init__(self, model: torch.nn.Module) -> None:
        self.sample, self.log_weights = model.sample, model.log_weights


def test_metrics_a_model_cannot_have_are_null_with_a_note(tiny_run, tmp_path):
    run, test = tiny_run
    cfg, model, step = load_model(run, CPU)
    options = EvalOptions(out_dir=tmp_path, ll_k=2, ll_images=2, train_data=tmp_path / "absent")
    results = evaluate(NoBoxes(model), cfg, step, test, ["ll", "ap", "zwhat"], options, CPU)
    assert finite(results["ll"]) and results["ll_n_images"] == 2
    assert all(results[key] is None for key in (*AP_KEYS, "zwhat_acc"))  # n/a, not 0; no train split needed
    assert set(results["notes"]) == {"ap", "zwhat"} and "NoBoxes has no infer()" in results["notes"]["ap"]


class RowCounter(NoBoxes):
    """Records how many image-sample pairs each log_weights call scores."""

    def __init__(self, model: torch.nn.Module) -> None:
        super().__init__(model)
        self.rows: list[int] = []
        score = model.log_weights

        def counted(x: torch.Tensor, k: int) -> torch.Tensor:
            self.rows.append(len(x) * k)
            return score(x, k)

        self.log_weights = counted


@pytest.mark.parametrize("ll_rows", [1, 6, 100])
def test_ll_scores_at_most_ll_rows_pairs_per_call(tiny_run, tmp_path, ll_rows):
    run, test = tiny_run
    cfg, model, step = load_model(run, CPU)
    counter = RowCounter(model)
    options = EvalOptions(out_dir=tmp_path, ll_k=5, ll_images=4, batch_size=8, ll_rows=ll_rows)
    results = evaluate(counter, cfg, step, test, ["ll"], options, CPU)
    assert finite(results["ll"]) and results["ll_n_images"] == 4
    assert max(counter.rows) <= ll_rows and sum(counter.rows) == 4 * 5  # every image scored K times


def assert_one_line_error(result, message: str) -> None:
    assert result.exit_code == 1, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], result.stderr


def test_unknown_metric_is_one_line(tiny_run):
    run, test = tiny_run
    assert_one_line_error(gnm("eval", "--run", run, "--data", test, "--metrics", "ap,fid"),
                          f"unknown metric 'fid' in --metrics; choose from {','.join(METRICS)}")
    assert_one_line_error(gnm("eval", "--run", run, "--data", test, "--ll-k", "0"), "--ll-k 0: must be at least 1")


def test_zwhat_without_a_train_split_is_one_line(tiny_run, tmp_path):
    run, _ = tiny_run
    alone = tmp_path / "alone" / "test"
    make("mnist4", alone, n=2, split="test")
    assert_one_line_error(gnm("eval", "--run", run, "--data", alone, "--metrics", "zwhat", "--device", "cpu"),
                          f"zwhat trains its probe on train-split latents and {alone.parent / 'train'} does not exist: "
                          "pass --train-data")
