"""The gnm CLI: a tiny run through train, sample, reconstruct, eval and info; and each kind of
bad input answered with one line and a non-zero exit code."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from typer.testing import CliRunner

from gnm.cli import app
from gnm.model import GNM, ModelConfig, count_parameters

ROOT = Path(__file__).resolve().parents[1]
TINY = str(ROOT / "recipes" / "gnm-mnist4-tiny.yaml")
runner = CliRunner()


def gnm(*args: str):
    return runner.invoke(app, [str(a) for a in args])


def test_train_sample_reconstruct_eval_info(mnist4_split, tmp_path):
    run = tmp_path / "run"
    trained = gnm("train", "--data", mnist4_split, "--recipe", TINY, "--out", run, "--device", "cpu", "--steps", "2")
    assert trained.exit_code == 0, trained.output
    assert "step 2, 0 skipped steps" in trained.stdout and (run / "ckpt-00000002.pt").is_file()
    resumed = gnm("train", "--data", mnist4_split, "--out", run, "--steps", "3")
    assert resumed.exit_code == 0 and "step 3" in resumed.stdout and (run / "ckpt-00000003.pt").is_file()

    assert gnm("sample", "--run", run, "--n", 5, "--out", tmp_path / "s.npy", "--device", "cpu").exit_code == 0
    samples = np.load(tmp_path / "s.npy")
    assert samples.shape == (5, 128, 128, 1) and samples.dtype == np.uint8
    assert gnm("sample", "--run", run, "--n", 4, "--out", tmp_path / "s.png", "--device", "cpu").exit_code == 0
    assert Image.open(tmp_path / "s.png").size[0] > 128

    recon = gnm("reconstruct", "--run", run, "--data", mnist4_split, "--out", tmp_path / "r.png", "--n", 3, "--device", "cpu")
    assert recon.exit_code == 0 and Image.open(tmp_path / "r.png").size == (2 + 3 * 130, 2 + 2 * 130)

    evaluated = gnm("eval", "--run", run, "--data", mnist4_split, "--json", tmp_path / "e.json", "--metrics", "ap", "--device", "cpu")
    assert evaluated.exit_code == 0, evaluated.output
    results = json.loads((tmp_path / "e.json").read_text())
    assert results["step"] == 3 and results["n_images"] == 60 and 0 <= results["ap50"] <= 1

    info = gnm("info", "--recipe", ROOT / "recipes" / "gnm-mnist4.yaml")
    assert info.exit_code == 0 and f"{count_parameters(GNM(ModelConfig()))['total']:,}" in info.stdout


@pytest.fixture(scope="module")
def empty_folder(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("empty")


@pytest.mark.parametrize("case, args, message", [
    ("folder without shards", ["--data", "{empty}", "--recipe", TINY], "holds no shards"),
    ("recipe for another dataset", ["--data", "{data}", "--recipe", str(ROOT / "recipes" / "gnm-mnist10.yaml")],
     "holds dataset 'mnist4' but the recipe is for 'mnist10'"),
    ("unknown override key", ["--data", "{data}", "--recipe", TINY, "train.batchsize=3"], "unknown config key 'train.batchsize'"),
    ("badly typed override", ["--data", "{data}", "--recipe", TINY, "train.steps=ten"], "train.steps: expected int"),
    ("missing recipe", ["--data", "{data}", "--recipe", "recipes/none.yaml"], "not found"),
    ("no recipe for a new run", ["--data", "{data}", "--out", "{empty}/new"], "pass --recipe"),
    ("model for other images", ["--data", "{data}", "--recipe", TINY, "model.channels=3"],
     "holds 1-channel 128px images but the model takes 3-channel"),
])
def test_bad_train_input_is_one_line(case, args, message, mnist4_split, empty_folder, tmp_path):
    filled = [a.format(empty=empty_folder, data=mnist4_split) for a in args]
    out = [] if "--out" in filled else ["--out", tmp_path / "run"]
    assert_one_line_error(gnm("train", *filled, *out, "--device", "cpu"), message)
    assert not (tmp_path / "run").exists()


def test_unknown_device_is_one_line(mnist4_split, tmp_path):
    result = gnm("train", "--data", mnist4_split, "--recipe", TINY, "--out", tmp_path / "run", "--device", "tpu")
    assert_one_line_error(result, "unknown device 'tpu'")


@pytest.mark.skipif(torch.cuda.is_available(), reason="CUDA is available here")
def test_unavailable_cuda_is_one_line(mnist4_split, tmp_path):
    result = gnm("train", "--data", mnist4_split, "--recipe", TINY, "--out", tmp_path / "run", "--device", "cuda")
    assert_one_line_error(result, "no CUDA GPU is available")
    assert_one_line_error(gnm("sample", "--run", tmp_path, "--device", "cuda"), "no CUDA GPU is available")


def test_missing_run_and_bad_sample_name_are_one_line(tmp_path):
    assert_one_line_error(gnm("sample", "--run", tmp_path / "nothing", "--device", "cpu"), "not found")
    assert_one_line_error(gnm("eval", "--run", tmp_path, "--data", tmp_path, "--device", "cpu"), "no latest checkpoint")


def assert_one_line_error(result, message: str) -> None:
    assert result.exit_code == 1, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], result.stderr
    assert "Traceback" not in result.output
