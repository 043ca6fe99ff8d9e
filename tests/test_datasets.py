"""Every generated scene obeys its dataset's rules by its own ground truth, and the ink lies in the boxes."""

from __future__ import annotations

import numpy as np
import pytest

from scenegen.datasets import get_spec
from scenegen.datasets.base import Layout
from scenegen.datasets.mnist4_10 import Mnist4_10Config
from scenegen.datasets.mnist10 import Mnist10Config
from scenegen.digits import DigitSource, load_raw, resolve_source
from scenegen.errors import UserError

MNIST = ["mnist4", "mnist10", "mnist4-10"]


def scenes(dataset: str, n: int, split: str = "train", seed: int = 0, **kw):
    spec = get_spec(dataset)
    cfg = spec.config_type(**kw)
    return spec, cfg, spec.make_shard(cfg, split, np.random.default_rng(seed), n, spec.prepare(cfg, split, {"digits": "bundled"}))


@pytest.mark.parametrize("dataset", MNIST)
@pytest.mark.parametrize("split", ["train", "test"])
def test_every_scene_obeys_its_rules(dataset, split):
    spec, cfg, made = scenes(dataset, 300, split)
    for scene in made:
        assert spec.first_violation(Layout.of(scene), cfg) is None


@pytest.mark.parametrize("dataset", MNIST)
def test_ink_lies_inside_tight_boxes(dataset):
    _, cfg, made = scenes(dataset, 100)
    for scene in made:
        image = scene.image[:, :, 0]
        assert image.shape == (cfg.image_size, cfg.image_size) and scene.image.dtype == np.uint8
        covered = np.zeros_like(image, dtype=bool)
        for x0, y0, x1, y1 in scene.boxes.astype(int):
            covered[y0:y1, x0:x1] = True
            crop = image[y0:y1, x0:x1]
            # tight: every edge row/column of the box holds ink
            assert crop[0].any() and crop[-1].any() and crop[:, 0].any() and crop[:, -1].any()
            assert 0 <= x0 < x1 <= cfg.image_size and 0 <= y0 < y1 <= cfg.image_size
        assert not image[~covered].any(), "ink outside every box"
        frames = scene.objects["frames"]  # the whole digit frame: a digit_size square around the ink
        assert (frames[:, :2] <= scene.boxes[:, :2]).all() and (frames[:, 2:] >= scene.boxes[:, 2:]).all()
        assert ((frames[:, 2:] - frames[:, :2]) == cfg.digit_size).all()


def test_mnist4_classes_run_clockwise_and_positions_mirror():
    _, cfg, made = scenes("mnist4", 200)
    firsts = set()
    for scene in made:
        centres = (scene.boxes[:, :2] + scene.boxes[:, 2:]) / 2
        tl, tr, br, bl = centres
        assert np.allclose(tr, (128 - tl[0], tl[1]), atol=1.0)
        assert np.allclose(br, (128 - tl[0], 128 - tl[1]), atol=1.0)
        assert np.allclose(bl, (tl[0], 128 - tl[1]), atol=1.0)
        c = int(scene.labels[0])
        assert list(scene.labels) == [c, c + 1, c + 2, c + 3]
        firsts.add(c)
    assert firsts == set(range(7))


@pytest.mark.parametrize("mode,combos", [("independent", {(0, 0), (0, 1), (1, 0), (1, 1)}), ("shared", {(0, 0), (1, 1)})])
def test_mnist10_swap_modes(mode, combos):
    _, _, made = scenes("mnist10", 200, swap_mode=mode)
    seen = {(s.params["swap_01_89"], s.params["swap_234_567"]) for s in made}
    assert seen == combos


def test_mnist10_shared_layout_breaks_under_a_shift():
    spec, cfg, made = scenes("mnist10", 1)
    scene = made[0]
    boxes = scene.boxes.copy()
    eight = int(np.flatnonzero(scene.labels == 8)[0])
    boxes[eight] += [6, 0, 6, 0]  # well beyond the 3 px tolerance, still inside its quadrant or not: either rule fires
    reason = spec.first_violation(Layout(boxes, scene.labels, {}), cfg)
    assert reason is not None and reason.split(":")[0] in ("shared_layout", "quadrant_sets", "overlap")


def test_mnist4_10_mix_ratio():
    _, _, made = scenes("mnist4-10", 400)
    fours = sum(s.params["variant"] == 4 for s in made)
    assert 150 <= fours <= 250  # 1:1 mix; binomial(400, 0.5) lies here with probability > 0.9999
    assert all(s.num_objects == s.params["variant"] for s in made)
    _, _, only_four = scenes("mnist4-10", 50, p_mnist4=1.0)
    assert all(s.num_objects == 4 for s in only_four)


def test_same_rng_same_scenes():
    _, _, a = scenes("mnist10", 20, seed=3)
    _, _, b = scenes("mnist10", 20, seed=3)
    _, _, c = scenes("mnist10", 20, seed=4)
    assert all(np.array_equal(x.image, y.image) and np.array_equal(x.boxes, y.boxes) for x, y in zip(a, b))
    assert not all(np.array_equal(x.image, y.image) for x, y in zip(a, c))


def test_train_and_test_digits_are_disjoint():
    train, _ = load_raw(DigitSource("bundled"), "train")
    test, test_labels = load_raw(DigitSource("bundled"), "test")
    assert len(train) == 4000 and len(test) == 1000
    assert np.bincount(test_labels).tolist() == [100] * 10
    assert not {d.tobytes() for d in train} & {d.tobytes() for d in test}


def test_idx_folder_source(tmp_path):
    """A folder of the four standard (gzipped) IDX files is read with torchvision's reader."""
    import gzip
    import struct

    images, labels = load_raw(DigitSource("bundled"), "train")
    for part, count in (("train", 300), ("t10k", 100)):
        with gzip.open(tmp_path / f"{part}-images-idx3-ubyte.gz", "wb") as f:
            f.write(struct.pack(">IIII", 2051, count, 28, 28) + images[:count].tobytes())
        with gzip.open(tmp_path / f"{part}-labels-idx1-ubyte.gz", "wb") as f:
            f.write(struct.pack(">II", 2049, count) + labels[:count].astype(np.uint8).tobytes())
    source = resolve_source(str(tmp_path))
    assert source.kind == "idx"
    got, got_labels = load_raw(source, "test")
    assert np.array_equal(got, images[:100]) and np.array_equal(got_labels, labels[:100])


def test_digits_path_without_mnist_is_a_user_error(tmp_path):
    with pytest.raises(UserError, match="no MNIST files"):
        resolve_source(str(tmp_path))


def test_config_rejects_bad_values():
    with pytest.raises(ValueError):
        Mnist10Config(swap_mode="sometimes")
    with pytest.raises(ValueError):
        Mnist4_10Config(p_mnist4=1.5)
    cfg = Mnist10Config(swap_mode="shared")
    assert Mnist10Config.from_dict(cfg.to_dict()) == cfg
    assert cfg.config_hash() != Mnist10Config().config_hash()
