"""What the MNIST-family datasets share: config fields, digit placement and rendering, layout geometry.

Generation is two steps so that `--violate` can edit a valid scene before drawing it:
a *plan* (which pool digit goes where: `Placement`s) and `render`, which draws a plan into a Scene.
Positions are ink-box centres: a digit "sits at" the centre of its tight ink box.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Callable, ClassVar

import numpy as np

from scenegen.config import DatasetConfig
from scenegen.datasets.base import DatasetSpec, Layout
from scenegen.digits import DigitPool, DigitSource, load_pool, pool_part
from scenegen.scene import Scene

# Quadrants clockwise from top-left: 0 TL, 1 TR, 2 BR, 3 BL; (column, row) of each in a 2x2 grid.
QUADRANT_CELLS = ((0, 0), (1, 0), (1, 1), (0, 1))
QUADRANT_NAMES = ("top-left", "top-right", "bottom-right", "bottom-left")
MNIST_FAMILY = ("mnist4", "mnist10", "mnist4-10")  # the datasets with a rule checker and `--violate`


@dataclass(frozen=True)
class MnistConfig(DatasetConfig):
    """Values shared by the MNIST family.

    digit_size: side in pixels of the resized 28x28 MNIST frame (ink is ~70% of it).
    margin: minimum distance in pixels between ink and its quadrant's border.
    position_tolerance: pixels two positions may differ by and still count as equal (symmetry,
        shared layout); the generator itself is exact to 0.5 px, the rest is for recognised boxes.
    """

    dataset: ClassVar[str] = ""
    digit_size: int = 20
    margin: int = 2
    position_tolerance: float = 3.0


@dataclass(frozen=True)
class Placement:
    """One digit of a plan: pool index, class, and the top-left pixel of its ink box."""

    index: int
    label: int
    x: int
    y: int


def pick_digit(pool: DigitPool, label: int, rng: np.random.Generator) -> int:
    """A random pool index of the given class."""
    members = pool.by_class[label]
    return members[int(rng.integers(len(members)))]


def ink_size(pool: DigitPool, index: int) -> tuple[int, int]:
    """(width, height) of a pool digit's ink box."""
    return pool.sizes[index]


def place_at_centre(pool: DigitPool, index: int, cx: float, cy: float) -> Placement:
    """Place a digit so that its ink-box centre is (cx, cy), rounded to whole pixels."""
    w, h = pool.sizes[index]
    return Placement(index, label_of(pool, index), round(cx - w / 2), round(cy - h / 2))


def label_of(pool: DigitPool, index: int) -> int:
    return int(pool.labels[index])


def quadrant_origin(quadrant: int, image_size: int) -> tuple[int, int]:
    col, row = QUADRANT_CELLS[quadrant]
    half = image_size // 2
    return col * half, row * half


def render(pool: DigitPool, plan: list[Placement], params: dict[str, int | float], image_size: int) -> Scene:
    """Draw a plan: digits composited with max() onto black; boxes are the ink boxes.

    Returns a Scene with image uint8 [S, S, 1], boxes float32 [n, 4], labels int16 [n], and
    objects["frames"] float32 [n, 4]: the whole resized digit frame (digit_size square) around
    each digit, the object extent a glimpse-based model such as GNM infers (used for box AP).
    """
    image = np.zeros((image_size, image_size), dtype=np.uint8)
    boxes = np.zeros((len(plan), 4), dtype=np.float32)
    frames = np.zeros((len(plan), 4), dtype=np.float32)
    side = pool.images.shape[1]
    for i, p in enumerate(plan):
        w, h = pool.sizes[p.index]
        _paste_max(image, pool.crops[p.index], p.x, p.y)
        boxes[i] = (p.x, p.y, p.x + w, p.y + h)
        fx, fy = p.x - int(pool.ink[p.index, 0]), p.y - int(pool.ink[p.index, 1])
        frames[i] = (fx, fy, fx + side, fy + side)
    labels = np.array([p.label for p in plan], dtype=np.int16)
    return Scene(image=image[:, :, None], boxes=boxes, labels=labels, objects={"frames": frames}, params=dict(params))


def _paste_max(image: np.ndarray, patch: np.ndarray, x: int, y: int) -> None:
    """image[y:y+h, x:x+w] = max(image, patch), clipped to the image."""
    h, w = patch.shape
    size = image.shape[0]
    if 0 <= x and 0 <= y and x + w <= size and y + h <= size:  # the usual case: fully inside
        region = image[y : y + h, x : x + w]
        np.maximum(region, patch, out=region)
        return
    x0, y0, x1, y1 = max(x, 0), max(y, 0), min(x + w, size), min(y + h, size)
    if x1 > x0 and y1 > y0:
        region = image[y0:y1, x0:x1]
        np.maximum(region, patch[y0 - y : y1 - y, x0 - x : x1 - x], out=region)


def scatter_in_quadrant(
    pool: DigitPool, indices: list[int], quadrant: int, cfg: MnistConfig, rng: np.random.Generator, gap: int
) -> list[Placement]:
    """Place digits at random in one quadrant, ink boxes at least `gap` pixels apart (rejection sampling)."""
    ox, oy = quadrant_origin(quadrant, cfg.image_size)
    half = cfg.image_size // 2
    while True:
        placed: list[Placement] = []
        for index in indices:
            w, h = ink_size(pool, index)
            for _ in range(100):
                x = ox + int(rng.integers(cfg.margin, half - cfg.margin - w + 1))
                y = oy + int(rng.integers(cfg.margin, half - cfg.margin - h + 1))
                candidate = Placement(index, label_of(pool, index), x, y)
                if all(not too_close(pool, candidate, other, gap) for other in placed):
                    placed.append(candidate)
                    break
            else:
                break  # could not fit this digit: start the quadrant again
        if len(placed) == len(indices):
            return placed


def too_close(pool: DigitPool, a: Placement, b: Placement, gap: int) -> bool:
    aw, ah = pool.sizes[a.index]
    bw, bh = pool.sizes[b.index]
    apart_x = a.x + aw + gap <= b.x or b.x + bw + gap <= a.x
    apart_y = a.y + ah + gap <= b.y or b.y + bh + gap <= a.y
    return not (apart_x or apart_y)


# ---- layout geometry used by the rules (works on ground truth and on recognised boxes) ----


def centres(layout: Layout) -> np.ndarray:
    """float [n, 2] (x, y) centres of the boxes."""
    b = np.asarray(layout.boxes, dtype=np.float64).reshape(-1, 4)
    return np.stack([(b[:, 0] + b[:, 2]) / 2, (b[:, 1] + b[:, 3]) / 2], axis=1)


def quadrants(layout: Layout, image_size: int) -> np.ndarray:
    """int [n] quadrant (0 TL, 1 TR, 2 BR, 3 BL) holding each box centre."""
    c = centres(layout)
    right, bottom = c[:, 0] >= image_size / 2, c[:, 1] >= image_size / 2
    table = np.array([[0, 1], [3, 2]])  # [bottom][right]
    return table[bottom.astype(int), right.astype(int)]


def within_quadrant(layout: Layout, image_size: int) -> np.ndarray:
    """float [n, 2] box centres relative to the top-left corner of their quadrant."""
    q = quadrants(layout, image_size)
    origins = np.array([quadrant_origin(int(k), image_size) for k in q], dtype=np.float64).reshape(-1, 2)
    return centres(layout) - origins


def count_rule(expected: int):
    """A rule: exactly `expected` objects."""

    def count(layout: Layout, cfg: DatasetConfig) -> str | None:
        n = len(layout.labels)
        return None if n == expected else f"{n} digits, expected {expected}"

    return count


def overlap_rule(layout: Layout, cfg: MnistConfig) -> str | None:
    """No two digits overlap (recognised boxes may touch by up to 1 px)."""
    b = np.asarray(layout.boxes, dtype=np.float64).reshape(-1, 4)
    w = np.minimum(b[:, None, 2], b[None, :, 2]) - np.maximum(b[:, None, 0], b[None, :, 0])
    h = np.minimum(b[:, None, 3], b[None, :, 3]) - np.maximum(b[:, None, 1], b[None, :, 1])
    overlapping = (w > 1) & (h > 1)
    np.fill_diagonal(overlapping, False)
    if overlapping.any():
        i, j = np.argwhere(overlapping)[0]
        return f"digits {int(layout.labels[i])} and {int(layout.labels[j])} overlap"
    return None


def with_params(scene: Scene, **params: int | float) -> Scene:
    """The scene with extra per-scene parameters recorded."""
    return replace(scene, params={**scene.params, **params})


@dataclass(frozen=True)
class MnistResources:
    """The resolved digit source a run draws from (picklable, sent to workers).

    violate: name of the rule-breaking edit every scene gets (`--violate`, see scenegen/check/violate.py).
    """

    source: DigitSource
    part: str
    digit_size: int
    violate: str | None = None

    def pool(self) -> DigitPool:
        return load_pool(self.source, self.part, self.digit_size)

    def provenance(self) -> dict[str, str]:
        described = {"digits": self.source.describe(), "digits_part": self.part, "digits_sha256": self.pool().sha256}
        return described if self.violate is None else {**described, "violate": self.violate}


def prepare(cfg: MnistConfig, split: str, options: dict) -> MnistResources:
    """Resolve `--digits` (auto | bundled | download | PATH) and check `--violate` once, in the parent process."""
    from scenegen.digits import resolve_source

    violate = options.get("violate")
    if violate is not None:
        from scenegen.check.violate import get_violation

        get_violation(cfg, violate)
    return MnistResources(resolve_source(str(options.get("digits", "auto"))), pool_part(split), cfg.digit_size, violate)


# plan(cfg, pool, rng) -> (placements, per-scene params): one valid scene, not yet drawn.
Planner = Callable[[Any, DigitPool, np.random.Generator], "tuple[list[Placement], dict[str, int]]"]


def make_scenes(plan: Planner, cfg: MnistConfig, rng: np.random.Generator, n: int, res: MnistResources) -> list[Scene]:
    """n scenes drawn from plan(), or with res.violate, n scenes breaking that one rule."""
    pool = res.pool()
    if res.violate is None:
        return [render(pool, *plan(cfg, pool, rng), image_size=cfg.image_size) for _ in range(n)]
    from scenegen.check.violate import violating_scene

    return [violating_scene(cfg, pool, rng, res.violate) for _ in range(n)]


def mnist_spec(name: str, config_type: type[MnistConfig], max_objects: int, plan: Planner, rules: tuple) -> DatasetSpec:
    """The DatasetSpec of an MNIST-family dataset: one-channel scenes drawn from `plan`."""

    def make_shard(cfg: MnistConfig, split: str, rng: np.random.Generator, n: int, res: MnistResources) -> list[Scene]:
        return make_scenes(plan, cfg, rng, n, res)

    return DatasetSpec(name=name, config_type=config_type, channels=1, max_objects=lambda cfg: max_objects,
                       prepare=prepare, make_shard=make_shard, rules=rules)
