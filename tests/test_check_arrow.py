"""The Arrow Room rule checker: image geometry, the rule mapping, fit + check on real renders, calibration, errors.

The rendering tests need the render extra (see tests/test_arrow_room.py); they render about 20 scenes at
8 samples and fit the recogniser for a few seconds, so they check the plumbing, not the accuracy
(benchmarks/bench_check_arrow.py measures that; docs/checker.md has the table).
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from typer.testing import CliRunner

from scenegen.check import RuleChecker
from scenegen.check.arrow.checker import ArrowChecker
from scenegen.check.arrow.fit import transformed
from scenegen.check.arrow.geometry import floor_pose, image_pose
from scenegen.check.arrow.recogniser import ObjectReading
from scenegen.check.inputs import load_images
from scenegen.check.report import report
from scenegen.cli import app
from scenegen.datasets.arrow_room import SPEC, VIOLATIONS, ArrowRoomConfig, ArrowScene, prepare, sample_scene
from scenegen.datasets.arrow_room import blender_env
from scenegen.datasets.arrow_room.sampler import nominal_camera
from scenegen.datasets.base import Layout
from scenegen.errors import UserError
from scenegen.runner import MakeRequest, make_split

CFG = ArrowRoomConfig()
FAST = ArrowRoomConfig(samples=8)
TINY_FIT = {"detect_epochs": 1, "object_epochs": 1, "image_batch": 4, "crop_batch": 16, "holdout": 0.25}

try:
    blender_env.check_installed()
    _MISSING = None
except blender_env.RenderSetupError as exc:
    _MISSING = str(exc)
if _MISSING and os.environ.get("SCENEGEN_REQUIRE_RENDER") == "1":
    raise RuntimeError(f"SCENEGEN_REQUIRE_RENDER=1 but {_MISSING}")
needs_blender = pytest.mark.skipif(_MISSING is not None, reason=f"render extra missing: {_MISSING}")


def reading_of(scene: ArrowScene, cfg: ArrowRoomConfig = CFG) -> ObjectReading:
    """What a perfect recogniser reads in a scene: its projected boxes, sure classes, exact image geometry."""
    centre, direction = image_pose(scene.camera, scene.positions, scene.headings)

    def sure(ids: np.ndarray, classes: int) -> np.ndarray:
        return np.eye(classes, dtype=np.float32)[ids]

    return ObjectReading(scene.projected_boxes(cfg), np.ones(scene.n, np.float32), sure(scene.shapes, len(cfg.shapes)),
                         sure(scene.colors, len(cfg.colors)), sure(scene.materials, len(cfg.materials)), centre, direction)


# ---------------------------------------------------------------------------------------------
# Geometry and the rule mapping (no Blender)
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["valid", *VIOLATIONS])
def test_perfect_readings_are_judged_like_the_ground_truth(kind):
    """Lifting the image geometry back onto the floor with the nominal camera keeps every rule's verdict,
    although each scene was drawn with a jittered camera."""
    checker = ArrowChecker(CFG, recogniser=None)
    rng = np.random.default_rng(3)
    for _ in range(40):
        scene = sample_scene(CFG, rng, kind)
        truth = SPEC.first_violation(scene.layout(CFG), CFG)
        verdict = checker.judge(reading_of(scene))
        assert verdict.ok == (truth is None), (kind, verdict.reason, truth)
        if truth is not None:
            assert verdict.rule == truth.split(":")[0]


def test_floor_pose_inverts_image_pose_on_the_nominal_camera():
    scene = dataclasses.replace(sample_scene(CFG, np.random.default_rng(0)), camera=nominal_camera(CFG))
    centre, direction = image_pose(scene.camera, scene.positions, scene.headings)
    positions, headings = floor_pose(CFG, scene.shapes, centre, direction)
    assert np.allclose(positions[:, 2], scene.positions[:, 2] / scene.scales)  # each shape's nominal half height
    assert np.allclose(positions[:, :2], scene.positions[:, :2], atol=0.1)  # off by the size jitter's height only
    assert np.allclose(np.cos(headings - scene.headings), 1)  # parallel planes: directions are exact


def test_hand_built_readings_pass_and_fail_each_rule():
    """Edits of one perfect reading break exactly the rule they aim at."""
    checker = ArrowChecker(CFG, recogniser=None)
    scene = sample_scene(CFG, np.random.default_rng(5))
    good = reading_of(scene)
    assert checker.judge(good).ok
    arrow = int(np.flatnonzero(scene.shapes == 0)[0])
    pair = [i for i in range(scene.n) if (scene.shapes == scene.shapes[i]).sum() == 2]
    unique = next(i for i in range(scene.n) if i != arrow and i not in pair)

    def edited(**changes) -> str | None:
        return checker.judge(ObjectReading(**{**good.__dict__, **changes})).rule

    drop = np.arange(scene.n) != pair[0]
    assert edited(**{k: v[drop] for k, v in good.__dict__.items()}) == "count"
    as_cube = good.shape.copy()
    as_cube[arrow] = np.eye(len(CFG.shapes))[1]
    assert edited(shape=as_cube) in ("one_arrow",)
    three = good.shape.copy()
    three[unique] = good.shape[pair[0]]
    assert edited(shape=three) == "pair_and_unique"
    mixed = good.material.copy()
    mixed[unique] = 1 - mixed[unique]
    assert edited(material=mixed) == "one_material"
    swapped = good.centre.copy()
    swapped[[arrow, unique]] = swapped[[unique, arrow]]
    assert edited(centre=swapped) == "arrow_nearest"
    turned = good.direction.copy()
    c, s = np.cos(np.radians(60)), np.sin(np.radians(60))
    turned[arrow] = turned[arrow] @ np.array([[c, s], [-s, c]])
    assert edited(direction=turned) == "arrow_points_at_unique"
    verdict = checker.judge(good)
    assert [o.shape for o in verdict.objects] == [CFG.shapes[k] for k in scene.shapes]
    assert sum(o.heading_deg is not None for o in verdict.objects) == 1
    written = report("arrow-room", [verdict])["verdicts"][0]["objects"][0]
    assert {"box", "label", "confidence", "shape", "color", "material", "position", "heading_deg"} == set(written)
    json.dumps(written)  # plain JSON values


def test_an_unsure_shape_gets_the_benefit_of_the_doubt():
    """A pair member read as 'cube 0.6, its true shape 0.4' passes; read 'cube 0.97, true 0.03' it fails."""
    checker = ArrowChecker(CFG, recogniser=None)
    scene = sample_scene(CFG, np.random.default_rng(5))
    good = reading_of(scene)
    member = next(i for i in range(scene.n) if (scene.shapes == scene.shapes[i]).sum() == 2)
    other = next(k for k in range(1, len(CFG.shapes)) if k not in scene.shapes)
    for sure, ok in ((0.6, True), (0.97, False)):
        shape = good.shape.copy()
        shape[member] = 0
        shape[member, other], shape[member, scene.shapes[member]] = sure, 1 - sure
        verdict = checker.judge(ObjectReading(**{**good.__dict__, "shape": shape}))
        assert verdict.ok == ok and (ok or verdict.rule == "pair_and_unique")


@pytest.mark.parametrize("flip,degrees", [(False, 0.0), (False, 30.0), (True, -50.0), (True, 170.0)])
def test_crop_augmentation_moves_targets_with_the_pixels(flip, degrees):
    """A bright dot at a target's offset lands where the transformed target says (so turned crops teach the
    true drawn direction and centre)."""
    crops = torch.zeros(1, 3, 48, 48)
    crops[0, :, 34, 29] = 1.0  # pixel centre (29.5, 34.5): offset (5.5, 10.5) from the crop centre
    offset = torch.tensor([[5.5, 10.5]]) / 48
    out, target = transformed(crops, {"centre": offset, "direction": offset}, torch.tensor([flip]), torch.tensor([math.radians(degrees)]))
    ys, xs = torch.meshgrid(torch.arange(48.0) + 0.5, torch.arange(48.0) + 0.5, indexing="ij")
    ink = out[0, 0]
    seen = torch.stack([(ink * xs).sum(), (ink * ys).sum()]) / ink.sum()
    assert torch.allclose((seen - 24) / 48, target["centre"][0], atol=0.004)
    assert torch.allclose(target["direction"], target["centre"])


def test_colour_pngs_load_as_rgb(tmp_path: Path):
    rgb = np.random.default_rng(0).integers(0, 256, (2, 8, 8, 3), dtype=np.uint8)
    for i, image in enumerate(rgb):
        Image.fromarray(image).save(tmp_path / f"{i}.png")
    loaded = load_images(tmp_path)
    np.testing.assert_allclose(loaded.rgb, rgb / 255, atol=1e-6)
    np.testing.assert_allclose(loaded.images, (rgb / 255).mean(-1), atol=1e-6)


def test_without_train_split_or_fitted_checker_one_clear_line(tmp_path: Path):
    np.save(tmp_path / "x.npy", np.zeros((2, 128, 128, 3), np.uint8))
    result = CliRunner().invoke(app, ["check", str(tmp_path / "x.npy"), "--dataset", "arrow-room", "--cache", str(tmp_path / "c")])
    assert result.exit_code != 0 and isinstance(result.exception, UserError)
    message = str(result.exception)
    assert "no fitted Arrow Room checker" in message and "--train DIR" in message and "\n" not in message
    with pytest.raises(UserError, match="holds no shards"):
        RuleChecker.for_dataset("arrow-room", train=tmp_path, cache=tmp_path / "c")


def test_make_violate_is_checked_and_recorded():
    with pytest.raises(UserError, match="choose a kind"):
        prepare(CFG, "test", {"violate": "purple_arrow"})
    assert prepare(CFG, "test", {"violate": "points_away"}).provenance()["violate"] == "points_away"


# ---------------------------------------------------------------------------------------------
# Real renders: fit, cache, check, calibrate
# ---------------------------------------------------------------------------------------------


def render(out: Path, n: int, split: str, violation: str | None = None) -> Path:
    options = {"threads": 2, **({"violate": violation} if violation else {})}
    make_split(MakeRequest("arrow-room", FAST, split, n, out / split, seed=0, shard_size=n, workers=1, options=options), progress=False)
    return out / split


@pytest.fixture(scope="module")
def rendered(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("arrow-check")
    render(root, 12, "train")
    render(root, 4, "test")
    render(root, 3, "points_at_pair", "points_at_pair")
    return root


@needs_blender
def test_violation_split_breaks_its_rule(rendered: Path):
    from scenegen.data import ShardDataset
    from scenegen.shards import read_arrays

    ds = ShardDataset(rendered / "points_at_pair")
    arrays = read_arrays(ds.files[0])
    for i in range(len(arrays["images"])):
        n = int(arrays["num_objects"][i])
        layout = Layout(arrays["boxes"][i, :n], arrays["labels"][i, :n],
                        {k: arrays[k][i, :n] for k in ("materials", "positions", "headings")})
        assert SPEC.first_violation(layout, FAST).startswith("arrow_points_at_unique:")


@needs_blender
def test_fit_cache_and_check_real_renders(rendered: Path, tmp_path: Path):
    cache = tmp_path / "cache"
    checker = RuleChecker.for_dataset("arrow-room", FAST.to_dict(), train=rendered / "train", cache=cache, progress=False, **TINY_FIT)
    assert isinstance(checker, ArrowChecker)
    [folder] = list(cache.glob("arrow-room-*"))
    meta = json.loads((folder / "meta.json").read_text())
    assert meta["scenes"] == 9 and meta["held_out"] == 3 and meta["held_out_measures"]["valid_scenes"] == 3
    images = load_images(rendered / "test").rgb
    verdicts = checker.check(images)
    assert len(verdicts) == 4 and all(v.ok == (v.reason is None) for v in verdicts)
    again = RuleChecker.for_dataset("arrow-room", FAST.to_dict(), cache=cache, progress=False)  # no train: the cached one
    assert [v.reason for v in again.check(images)] == [v.reason for v in verdicts]
    with pytest.raises(UserError, match="images are 64x64"):
        checker.check(images[:, :64, :64])


@needs_blender
def test_check_and_calibrate_cli(rendered: Path, tmp_path: Path):
    cache, out = tmp_path / "cache", tmp_path / "cal.json"
    fit = ["--train", str(rendered / "train"), "--cache", str(cache)]
    result = CliRunner().invoke(app, ["check", str(rendered / "test"), "--json", str(tmp_path / "r.json"),
                                      "--grid", str(tmp_path / "g.png"), *fit])
    assert result.exit_code == 0, result.output
    assert "arrow-room: S-Acc " in result.output
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["dataset"] == "arrow-room" and report["n"] == 4 and (tmp_path / "g.png").stat().st_size > 0
    result = CliRunner().invoke(app, ["calibrate", "--dataset", "arrow-room", "--test", str(rendered), "--json", str(out), *fit])
    assert result.exit_code == 1, result.output  # missing violation kinds: not every target can be met
    data = json.loads(out.read_text())
    assert [r["scenes"] for r in data["rows"]] == ["real", "points_at_pair"]
    assert [r["n"] for r in data["rows"]] == [4, 3] and "five_objects" in data["missing"]
    assert "no scenes for: three_objects" in result.output
