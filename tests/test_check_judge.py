"""The checker end to end with a fitted recogniser: detection, the API, the CLI, calibration targets.

The recogniser is fitted once for this module (the default fit, into a temporary cache unless
$SCENEGEN_CACHE points at one that holds it already).
"""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from scenegen.check import RuleChecker, summarize
from scenegen.check.augment import gaussian_blur
from scenegen.check.calibrate import REAL_MIN, VIOLATION_MAX, calibrate
from scenegen.cli import app
from scenegen.datasets import get_spec
from scenegen.datasets.mnist_common import MNIST_FAMILY
from scenegen.errors import UserError
from scenegen.seeds import shard_rng

CALIBRATION_N = int(os.environ.get("SCENEGEN_TEST_CALIBRATION_N", "200"))


@pytest.fixture(scope="module")
def cache(tmp_path_factory) -> Path:
    env = os.environ.get("SCENEGEN_CACHE")
    return Path(env) if env else tmp_path_factory.mktemp("checkers")


@pytest.fixture(scope="module")
def checker(cache: Path) -> RuleChecker:
    return RuleChecker.for_dataset("mnist10", cache=cache, digits="bundled", progress=False)


def real_scenes(dataset: str, n: int, seed: int = 3) -> tuple[np.ndarray, list]:
    spec = get_spec(dataset)
    cfg = spec.config_type()
    scenes = spec.make_shard(cfg, "test", shard_rng(seed, "test", 0), n, spec.prepare(cfg, "test", {"digits": "bundled"}))
    return np.stack([s.image[:, :, 0] for s in scenes]), scenes


def test_boxes_match_ground_truth_on_clean_scenes(checker: RuleChecker) -> None:
    """Centres within 1 px of the ground truth's for nearly every digit (ground-truth boxes also hold
    faint pixels below the ink threshold, which can move a centre by a few pixels)."""
    images, scenes = real_scenes("mnist10", 40)
    errors = []
    for reading, scene in zip(checker.recogniser.read(images.astype(np.float32) / 255), scenes):
        assert len(reading.boxes) == len(scene.boxes)
        found = (reading.boxes[:, :2] + reading.boxes[:, 2:]) / 2
        truth = (scene.boxes[:, :2] + scene.boxes[:, 2:]) / 2
        errors += list(np.abs(found[:, None] - truth[None]).max(axis=2).min(axis=1))
    assert np.mean(np.array(errors) <= 1) >= 0.98 and max(errors) <= 4


def test_check_accepts_every_layout_alike(checker: RuleChecker) -> None:
    images, _ = real_scenes("mnist10", 8)
    floats = torch.from_numpy(images).float() / 255
    reference = checker.check(floats[:, None])  # [N, 1, H, W] float, as gnm passes samples
    for other in (images, images[..., None], floats.numpy()):
        assert [v.ok for v in checker.check(other)] == [v.ok for v in reference]
    assert all(isinstance(o.label, int) and len(o.box) == 4 for v in reference for o in v.objects)


def test_wrong_image_size_is_a_clear_error(checker: RuleChecker) -> None:
    with pytest.raises(UserError, match="images are 64x64 but mnist10 scenes are 128x128"):
        checker.check(np.zeros((2, 64, 64), np.uint8))


def test_blank_and_blob_images_fail(checker: RuleChecker) -> None:
    images, _ = real_scenes("mnist10", 2)
    blob = images[1].copy()
    yy, xx = np.mgrid[:128, :128]
    blob[np.hypot(xx - 64, yy - 64) < 7] = 255  # a filled disc where no digit is
    verdicts = checker.check(np.stack([np.zeros_like(images[0]), blob]))
    assert verdicts[0].rule == "count"
    assert verdicts[1].rule in ("unrecognisable", "count")


def test_slightly_blurred_real_scenes_still_pass(checker: RuleChecker) -> None:
    images, _ = real_scenes("mnist10", 60)
    blurred = gaussian_blur(torch.from_numpy(images).float()[:, None] / 255, torch.full((60,), 0.8))
    assert summarize(checker.check(blurred)).s_acc >= 0.85


# Real test scenes: the target is 0.99 (REAL_MIN). MNIST-4 meets it. On MNIST-10 and MNIST-4-10 the bundled
# digits' recogniser still rules out the right class of one or two odd test 2s (a looped 2 read as a 9),
# and every MNIST-10 scene shows one of the 100 test 2s (docs/checker.md, Calibration); these floors
# guard what is reached there.
REAL_FLOOR = {"mnist4": REAL_MIN, "mnist10": 0.95, "mnist4-10": 0.97}
BELOW_TARGET = pytest.mark.xfail(reason="bundled digits: see REAL_FLOOR and docs/checker.md", strict=False)


@pytest.fixture(scope="module")
def calibration(cache: Path) -> dict[str, dict[str, dict]]:
    tables = {}
    for dataset in MNIST_FAMILY:
        result = calibrate(dataset, n=CALIBRATION_N, digits="bundled", cache=cache, progress=False)
        tables[dataset] = {r["scenes"]: r for r in result["rows"]}
    return tables


@pytest.mark.parametrize("dataset", MNIST_FAMILY)
def test_calibration_every_violation_fails(dataset: str, calibration) -> None:
    for name, row in calibration[dataset].items():
        if name != "real":
            assert row["pass_rate"] <= VIOLATION_MAX, row


@pytest.mark.parametrize("dataset", MNIST_FAMILY)
def test_calibration_real_scenes_pass(dataset: str, calibration) -> None:
    assert calibration[dataset]["real"]["pass_rate"] >= REAL_FLOOR[dataset], calibration[dataset]["real"]


@pytest.mark.parametrize("dataset", [d if REAL_FLOOR[d] >= REAL_MIN else pytest.param(d, marks=BELOW_TARGET) for d in MNIST_FAMILY])
def test_calibration_real_target(dataset: str, calibration) -> None:
    assert calibration[dataset]["real"]["pass_rate"] >= REAL_MIN, calibration[dataset]["real"]


def test_check_cli_on_a_generated_split(tmp_path: Path, cache: Path) -> None:
    runner = CliRunner()
    made = runner.invoke(app, ["make", "mnist4", "--split", "test", "--n", "40", "--out", str(tmp_path), "--digits", "bundled", "--workers", "1"])
    assert made.exit_code == 0, made.output
    report, grid = tmp_path / "report.json", tmp_path / "verdicts.png"
    result = runner.invoke(app, ["check", str(tmp_path / "test"), "--json", str(report), "--grid", str(grid),
                                 "--cache", str(cache), "--digits", "bundled"])
    assert result.exit_code == 0, result.output
    assert result.output.startswith("mnist4: S-Acc ") and "95% Wilson CI" in result.output
    data = json.loads(report.read_text())
    assert data["dataset"] == "mnist4" and data["n"] == 40 and len(data["verdicts"]) == 40
    assert data["s_acc"] >= 0.9 and grid.stat().st_size > 0


def test_calibrate_cli_writes_the_table(tmp_path: Path, cache: Path) -> None:
    out = tmp_path / "cal.json"
    result = CliRunner().invoke(app, ["calibrate", "--dataset", "mnist4", "--n", "30", "--json", str(out), "--cache", str(cache),
                                      "--digits", "bundled"])
    assert "real" in result.output and "class_order" in result.output
    data = json.loads(out.read_text())
    assert [r["scenes"] for r in data["rows"]][:2] == ["real", "missing_digit"] and data["n"] == 30


def test_shared_swap_config_is_judged_by_its_own_rules(cache: Path) -> None:
    shared = RuleChecker.for_dataset("mnist10", {"swap_mode": "shared"}, cache=cache, digits="bundled", progress=False)
    spec, cfg = shared.spec, shared.cfg
    res = dataclasses.replace(spec.prepare(cfg, "test", {"digits": "bundled"}), violate="unshared_swap")
    scenes = spec.make_shard(cfg, "test", shard_rng(0, "test", 1), 20, res)
    verdicts = shared.check(np.stack([s.image[:, :, 0] for s in scenes]))
    assert sum(v.ok for v in verdicts) <= 1
