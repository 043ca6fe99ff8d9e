"""Arrow Room: rules, layouts and violations (numpy only), then real renders with Blender.

The rendering tests need the render extra (bpy 4.2.0 + blenderproc 2.8.0). Without it they are
skipped, unless SCENEGEN_REQUIRE_RENDER=1 (set in CI), which turns the skip into a failure.
They render at 8 samples and start Blender about ten times (a few seconds each).
"""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest

from scenegen.datasets.arrow_room import (
    SPEC,
    VIOLATIONS,
    ArrowRoomConfig,
    ArrowRoomResources,
    make_scenes,
    prepare,
    render_scenes,
    sample_scene,
    violate,
)
from scenegen.datasets.arrow_room import blender_env
from scenegen.datasets.arrow_room import sampler as S
from scenegen.datasets.base import Layout
from scenegen.errors import UserError
from scenegen.manifest import index, load_manifest, verify
from scenegen.runner import MakeRequest, make_split
from scenegen.shards import read_arrays, shard_attrs

REPO = Path(__file__).resolve().parents[1]
RULE_NAMES = [name for name, _ in SPEC.rules]
FAST = ArrowRoomConfig(samples=8)


def _render_available() -> str | None:
    try:
        blender_env.check_installed()
    except blender_env.RenderSetupError as exc:
        return str(exc)
    return None


_MISSING = _render_available()
if _MISSING and os.environ.get("SCENEGEN_REQUIRE_RENDER") == "1":
    raise RuntimeError(f"SCENEGEN_REQUIRE_RENDER=1 but {_MISSING}")
needs_blender = pytest.mark.skipif(_MISSING is not None, reason=f"render extra missing: {_MISSING}")


def leftover_temp() -> set[str]:
    """Our workers' temporary folders and Blender's session folders (blender_XXXXXX) in the temp dir."""
    tmp = Path(tempfile.gettempdir())
    return {p.name for pattern in ("scenegen-arrow-room-*", "scenegen-assets-*", "blender_*") for p in tmp.glob(pattern)}


# ---------------------------------------------------------------------------------------------
# Config, layouts, rules, violations (no Blender)
# ---------------------------------------------------------------------------------------------


def test_config_round_trip_and_validation():
    cfg = ArrowRoomConfig(samples=16)
    again = ArrowRoomConfig.from_dict(json.loads(cfg.to_json()))
    assert again == cfg and again.config_hash() == cfg.config_hash() and isinstance(again.shapes, tuple)
    assert cfg.to_dict()["shapes"] == ["arrow", "cube", "sphere", "cylinder"]  # plain JSON values
    assert ArrowRoomConfig(samples=32).config_hash() != cfg.config_hash()
    for bad in ({"shapes": ("cube", "arrow", "sphere")}, {"samples": 0}, {"materials": ("wood",)},
                {"color_values": ((300, 0, 0),) * 8}, {"front_zone": (1.0, 0.0, 0.0, 1.0)}):
        with pytest.raises(ValueError):
            ArrowRoomConfig(**bad)


def test_sampled_layouts_obey_every_rule_and_the_generation_margins():
    cfg = ArrowRoomConfig()
    rng = np.random.default_rng(0)
    for _ in range(200):
        scene = sample_scene(cfg, rng)
        layout = scene.layout(cfg)
        assert SPEC.first_violation(layout, cfg) is None
        labels = scene.shapes
        arrow = int(np.flatnonzero(labels == 0)[0])
        d = np.linalg.norm(scene.positions - np.asarray(scene.camera.location), axis=1)
        assert d[arrow] + cfg.nearest_margin <= np.delete(d, arrow).min()  # arrow nearest, with margin
        _, angles = S.pointing_angles(layout, cfg)
        unique = [i for i in range(4) if i != arrow and (labels == labels[i]).sum() == 1][0]
        assert angles[unique] <= cfg.pointing_jitter_deg + 1e-6
        assert all(angles[k] >= cfg.pointing_separation_deg for k in range(4) if k not in (arrow, unique))
        assert len(set(scene.materials.tolist())) == 1
        names = [cfg.shapes[s] for s in labels]
        assert S._apart(cfg, names, scene.positions, scene.headings, scene.scales)  # no interpenetration
        boxes = scene.projected_boxes(cfg)
        assert (boxes[:, :2] >= 0).all() and (boxes[:, 2:] <= cfg.image_size).all()
        assert np.allclose(scene.positions[:, 2], [S.object_height(cfg, n, s) / 2 for n, s in zip(names, scene.scales)])
    a = [sample_scene(cfg, np.random.default_rng(7)).to_render(cfg) for _ in range(2)]
    assert a[0] == a[1]  # same rng state, same scene


@pytest.mark.parametrize("kind", list(VIOLATIONS))
def test_each_violation_breaks_its_rule_first(kind):
    cfg = ArrowRoomConfig()
    rng = np.random.default_rng(1)
    rule = VIOLATIONS[kind]
    for _ in range(25):
        scene = violate(cfg, kind, rng)
        layout = scene.layout(cfg)
        reason = SPEC.first_violation(layout, cfg)
        assert reason is not None and reason.startswith(rule + ":"), (kind, reason)
        if rule in ("one_material", "arrow_nearest"):  # later rules are well defined: they must hold
            later = [name for name, r in SPEC.rules[RULE_NAMES.index(rule) + 1:] if r(layout, cfg) is not None]
            assert later == []
    by_rule = violate(cfg, rule, rng)  # a rule name picks one of its kinds
    assert SPEC.first_violation(by_rule.layout(cfg), cfg).startswith(rule + ":")
    with pytest.raises(ValueError, match="unknown violation"):
        violate(cfg, "purple_arrow", rng)


def test_rules_read_recognised_layouts():
    """The checker hands the rules what it recognised: shape ids plus materials/positions/headings."""
    cfg = ArrowRoomConfig()
    cam = np.asarray(cfg.camera_location)
    positions = np.array([[0.0, -1.0, 0.1], [-1.5, 0.8, 0.5], [0.0, 0.8, 0.5], [1.5, 0.8, 0.5]])
    to_target = positions[1, :2] - positions[0, :2]
    base = dict(boxes=np.zeros((4, 4), np.float32), labels=np.array([0, 2, 1, 1]))
    objects = {"materials": np.zeros(4, int), "positions": positions,
               "headings": np.array([np.arctan2(to_target[1], to_target[0]), 0, 0, 0])}
    assert SPEC.first_violation(Layout(objects=objects, **base), cfg) is None
    wrong_way = {**objects, "headings": objects["headings"] + np.radians(40)}
    assert SPEC.first_violation(Layout(objects=wrong_way, **base), cfg).startswith("arrow_points_at_unique:")
    far_arrow = {**objects, "positions": positions + [[0, 3.0, 0], [0, 0, 0], [0, 0, 0], [0, 0, 0]]}
    assert np.linalg.norm(far_arrow["positions"][0] - cam) > np.linalg.norm(positions[2] - cam)
    assert SPEC.first_violation(Layout(objects=far_arrow, **base), cfg).startswith("arrow_nearest:")
    mixed = {**objects, "materials": np.array([0, 1, 0, 0])}
    assert "rubber, metal" in SPEC.first_violation(Layout(objects=mixed, **base), cfg)
    assert SPEC.first_violation(Layout(np.zeros((4, 4)), np.array([0, 1, 1, 1]), objects), cfg).startswith("pair_and_unique:")
    assert SPEC.first_violation(Layout(np.zeros((3, 4)), np.array([0, 1, 2]), objects), cfg).startswith("count:")


def test_prepare_refuses_a_missing_render_extra(monkeypatch):
    monkeypatch.setattr(blender_env, "installed_versions", lambda: {"bpy": None, "blenderproc": "2.9.0"})
    with pytest.raises(UserError) as err:
        prepare(ArrowRoomConfig(), "train", {})
    message = str(err.value)
    assert "bpy missing" in message and "blenderproc 2.9.0 (need 2.8.0)" in message and ".[render]" in message
    assert len(message.splitlines()) == 1


def test_render_threads_follow_the_runner_workers(monkeypatch):
    from scenegen.datasets.arrow_room import render_threads

    monkeypatch.delenv("SCENEGEN_RENDER_THREADS", raising=False)
    cores = len(os.sched_getaffinity(0))
    assert render_threads({"workers": cores}) == 1
    assert render_threads({"workers": 1}) == cores
    assert render_threads({"threads": 3, "workers": 1}) == 3
    monkeypatch.setenv("SCENEGEN_RENDER_THREADS", "5")
    assert render_threads({"workers": 2}) == 5


def test_bad_config_on_the_command_line_is_one_line():
    proc = subprocess.run([sys.executable, "-m", "scenegen", "make", "arrow-room", "--n", "2", "--set", "samples=0"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode != 0 and "samples must be at least 1" in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stderr and len(proc.stderr.strip().splitlines()) == 1


# ---------------------------------------------------------------------------------------------
# Real renders
# ---------------------------------------------------------------------------------------------


def make_arrow(out: Path, n: int = 6, shard_size: int = 3, **kw) -> dict:
    request = MakeRequest("arrow-room", FAST, "train", n, out, seed=0, shard_size=shard_size, workers=1,
                          options={"threads": 2}, **kw)
    return make_split(request, progress=False)


@pytest.fixture(scope="module")
def split(tmp_path_factory) -> Path:
    before = leftover_temp()
    folder = tmp_path_factory.mktemp("arrow") / "train"
    manifest = make_arrow(folder)
    assert manifest["complete"] and manifest["made"] == 6
    assert leftover_temp() <= before  # the workers' temporary folders are gone
    return folder


@needs_blender
def test_rendered_ground_truth_obeys_the_rules(split):
    cfg = FAST
    for path in sorted(split.glob("shard-*.h5")):
        a = read_arrays(path)
        attrs = shard_attrs(path)
        assert attrs["dataset"] == "arrow-room" and ArrowRoomConfig.from_dict(attrs["config"]) == cfg
        assert attrs["provenance"]["render_device"] == "cpu"
        n = len(a["images"])
        assert a["images"].shape == (n, 128, 128, 3) and a["images"].dtype == np.uint8
        assert a["masks"].shape == (n, 128, 128) and a["masks"].dtype == np.uint8
        for key, dtype, shape in (("colors", np.int16, (n, 5)), ("materials", np.int16, (n, 5)),
                                  ("positions", np.float32, (n, 5, 3)), ("headings", np.float32, (n, 5)),
                                  ("camera_x", np.float32, (n,)), ("render_seed", np.int32, (n,))):
            assert a[key].dtype == dtype and a[key].shape == shape, key
        assert (a["num_objects"] == 4).all() and (a["labels"][:, 4] == -1).all()  # K = 5, one padding slot
        for i in range(n):
            mask = a["masks"][i]
            assert set(np.unique(mask)) == {0, 1, 2, 3, 4}
            for k in range(4):
                ys, xs = np.nonzero(mask == k + 1)
                assert len(xs) >= cfg.min_visible_pixels
                assert a["boxes"][i, k].tolist() == [xs.min(), ys.min(), xs.max() + 1, ys.max() + 1]
                width = (xs.max() + 1 - xs.min()) / 128
                assert 0.08 <= width <= 0.45  # objects ~15-25% of the width (the arrow, nearer, larger)
            objects = {key: a[key][i, :4] for key in ("colors", "materials", "positions", "headings")}
            layout = Layout(a["boxes"][i, :4], a["labels"][i, :4], objects)
            assert SPEC.first_violation(layout, cfg) is None
            # Blender's camera is the sampler's: each object's centre projects inside its visible box.
            camera = S.Camera((float(a["camera_x"][i]), float(a["camera_y"][i]), float(a["camera_z"][i])),
                              cfg.camera_look_at, cfg.camera_lens_mm, cfg.camera_sensor_mm, cfg.image_size)
            uv, _ = camera.project(a["positions"][i, :4])
            box = a["boxes"][i, :4]
            assert ((uv >= box[:, :2] - 1) & (uv <= box[:, 2:] + 1)).all()
            # the floor is grey, lighter towards the top (background) than at the bottom
            image = a["images"][i].astype(int)
            floor = image[-6:][mask[-6:] == 0]
            assert image[:6].mean() > floor.mean()
            assert np.median(np.abs(floor - floor.mean(-1, keepdims=True)).max(-1)) < 4  # grey, not coloured


@needs_blender
def test_resume_keeps_shards_and_remakes_a_deleted_one_identically(split, tmp_path):
    copy = tmp_path / "train"
    shutil.copytree(split, copy)
    kept = (copy / "shard-00000.h5").stat().st_mtime_ns
    original = read_arrays(copy / "shard-00001.h5")
    (copy / "shard-00001.h5").unlink()
    manifest = make_arrow(copy)
    assert manifest["complete"] and verify(copy) == []
    assert (copy / "shard-00000.h5").stat().st_mtime_ns == kept
    again = read_arrays(copy / "shard-00001.h5")
    for key in original:
        if key == "images":  # OIDN: at most one grey level in a few pixels (see docs/arrow_room.md)
            diff = np.abs(original[key].astype(int) - again[key].astype(int))
            assert diff.max() <= 1 and (diff > 0).mean() < 1e-3
        else:
            assert np.array_equal(original[key], again[key]), key


@needs_blender
def test_two_cluster_jobs_then_index_equal_one_run(split, tmp_path):
    jobs = tmp_path / "train"
    for task in (0, 1):
        manifest = make_arrow(jobs, task_index=task, task_count=2)
        assert not manifest["complete"] or task == 1
    assert load_manifest(jobs) is None
    manifest = index(jobs)
    assert manifest["complete"] and manifest["made"] == 6 and verify(jobs) == []
    for name in ("shard-00000.h5", "shard-00001.h5"):
        one, two = read_arrays(split / name), read_arrays(jobs / name)
        for key in one:
            if key != "images":
                assert np.array_equal(one[key], two[key]), key
        assert np.abs(one["images"].astype(int) - two["images"].astype(int)).max() <= 1


@needs_blender
def test_without_denoiser_bytes_do_not_depend_on_threads_or_order_and_violations_render():
    cfg = dataclasses.replace(FAST, denoise=False)
    rng = np.random.default_rng(3)
    scenes = [sample_scene(cfg, rng), violate(cfg, "five_objects", rng), violate(cfg, "mixed_materials", rng),
              violate(cfg, "three_objects", rng)]
    before = leftover_temp()
    one = render_scenes(cfg, scenes, ArrowRoomResources(threads=1))
    two = render_scenes(cfg, scenes[::-1], ArrowRoomResources(threads=2))[::-1]
    for a, b in zip(one, two):
        assert np.array_equal(a.image, b.image) and np.array_equal(a.images_extra["masks"], b.images_extra["masks"])
    assert [len(np.unique(s.images_extra["masks"])) - 1 for s in one] == [4, 5, 4, 3]
    assert leftover_temp() <= before


@needs_blender
def test_metal_and_rubber_look_different():
    cfg = FAST
    scene = sample_scene(cfg, np.random.default_rng(11))
    rubber = dataclasses.replace(scene, materials=np.zeros(4, int))
    metal = dataclasses.replace(scene, materials=np.ones(4, int))
    a, b = render_scenes(cfg, [rubber, metal])
    inside = a.images_extra["masks"] > 0
    assert np.array_equal(a.images_extra["masks"], b.images_extra["masks"])
    diff = np.abs(a.image.astype(int) - b.image.astype(int)).mean(-1)
    assert diff[inside].mean() > 15  # by eye: metal reflects and highlights, rubber is matte
    spread = [img.image.astype(int).mean(-1)[inside].std() for img in (a, b)]
    assert spread[1] > spread[0]  # metal: sharper highlights and darker reflections


@needs_blender
def test_gpu_without_a_gpu_is_one_clear_line():
    before = leftover_temp()
    with pytest.raises(UserError) as err:
        prepare(FAST, "train", {"gpu": True})
    assert "no CUDA or OptiX GPU" in str(err.value) and "drop --gpu" in str(err.value)
    assert len(str(err.value).splitlines()) == 1
    assert leftover_temp() <= before


@needs_blender
def test_a_failing_worker_is_reported_and_cleaned_up():
    from scenegen.datasets.arrow_room.client import RenderError, RenderWorker

    before = leftover_temp()
    bad = sample_scene(FAST, np.random.default_rng(0)).to_render(FAST)
    bad["objects"][0]["shape"] = "pyramid"
    with RenderWorker(FAST, threads=1) as worker:
        with pytest.raises(RenderError, match="pyramid"):
            worker.render([bad])
    assert leftover_temp() <= before
    assert make_scenes(FAST, np.random.default_rng(0), 0) == []  # nothing asked, nothing rendered


@needs_blender
def test_committed_asset_summary_matches_what_the_code_builds(tmp_path):
    before = leftover_temp()
    proc = subprocess.run([sys.executable, str(REPO / "blender_assets" / "build.py"), "--out", str(tmp_path / "a.blend"),
                           "--json", str(tmp_path / "a.json")], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    built = json.loads((tmp_path / "a.json").read_text())
    committed = json.loads((REPO / "blender_assets" / "arrow_room_assets.json").read_text())
    assert built["meshes"] == committed["meshes"], "re-run python blender_assets/build.py and commit its outputs"
    assert (tmp_path / "a.blend").stat().st_size < 5_000_000
    assert leftover_temp() <= before


@needs_blender
def test_the_benchmarks_naive_way_is_a_blenderproc_run_drawing_what_the_workers_draw(tmp_path):
    """benchmarks/bench_arrow_render.py times one `blenderproc run` per scene against the workers:
    that comparison only holds if both draw the same image."""
    spec = importlib.util.spec_from_file_location("bench_arrow_render", REPO / "benchmarks" / "bench_arrow_render.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    cfg = dataclasses.replace(FAST, denoise=False)  # the byte-exact mode
    (written,) = bench.naive(cfg, 1, 1, 1, tmp_path)  # scene of seed 0, one at a time, one thread
    with np.load(written) as naive:
        image, mask = naive["image"], naive["mask"]
    (worker,) = render_scenes(cfg, [sample_scene(cfg, np.random.default_rng(0))], ArrowRoomResources(threads=1))
    assert np.array_equal(image, worker.image) and np.array_equal(mask, worker.images_extra["masks"])
    assert len(np.unique(mask)) == 5
    assert not list(tmp_path.glob("blender_proc_*"))  # BlenderProc's launcher removed its temp folder
