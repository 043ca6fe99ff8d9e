"""MNIST-4: one digit per quadrant, classes c..c+3 clockwise from top-left, mirror-symmetric positions."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from scenegen.datasets.base import Layout
from scenegen.datasets.mnist_common import (
    MnistConfig,
    Placement,
    centres,
    count_rule,
    mnist_spec,
    ink_size,
    pick_digit,
    place_at_centre,
    quadrants,
)
from scenegen.digits import DigitPool

MAX_FIRST_CLASS = 6  # c + 3 must still be a digit


@dataclass(frozen=True)
class Mnist4Config(MnistConfig):
    dataset: ClassVar[str] = "mnist4"


def plan(cfg: MnistConfig, pool: DigitPool, rng: np.random.Generator) -> tuple[list[Placement], dict[str, int]]:
    """Digits for quadrants TL, TR, BR, BL (classes c..c+3) at mirrored ink-box centres."""
    first = int(rng.integers(0, MAX_FIRST_CLASS + 1))
    indices = [pick_digit(pool, first + k, rng) for k in range(4)]
    sizes = np.array([ink_size(pool, i) for i in indices], dtype=np.float64)
    half, size = cfg.image_size // 2, cfg.image_size
    reach_x, reach_y = sizes[:, 0].max() / 2 + cfg.margin, sizes[:, 1].max() / 2 + cfg.margin
    cx, cy = rng.uniform(reach_x, half - reach_x), rng.uniform(reach_y, half - reach_y)
    mirrored = [(cx, cy), (size - cx, cy), (size - cx, size - cy), (cx, size - cy)]
    return [place_at_centre(pool, i, x, y) for i, (x, y) in zip(indices, mirrored)], {"first_class": first}


# ---- rules (ground truth and recognised layouts alike) ----


def by_quadrant(layout: Layout, cfg: MnistConfig) -> np.ndarray:
    """Object indices ordered TL, TR, BR, BL (assumes one object per quadrant)."""
    return np.argsort(quadrants(layout, cfg.image_size), kind="stable")


def one_per_quadrant(layout: Layout, cfg: MnistConfig) -> str | None:
    counts = np.bincount(quadrants(layout, cfg.image_size), minlength=4)
    if (counts == 1).all():
        return None
    return "digits per quadrant (TL, TR, BR, BL) are " + ", ".join(str(int(c)) for c in counts) + ", expected 1 each"


def class_order(layout: Layout, cfg: MnistConfig) -> str | None:
    labels = [int(v) for v in np.asarray(layout.labels)[by_quadrant(layout, cfg)]]
    first = labels[0]
    if first <= MAX_FIRST_CLASS and labels == [first + k for k in range(4)]:
        return None
    return f"classes clockwise from top-left are {labels}, expected c, c+1, c+2, c+3 with c <= {MAX_FIRST_CLASS}"


def mirror_symmetry(layout: Layout, cfg: MnistConfig) -> str | None:
    c = centres(layout)[by_quadrant(layout, cfg)]
    size = cfg.image_size
    x, y = c[0]
    expected = np.array([(x, y), (size - x, y), (size - x, size - y), (x, size - y)])
    error = float(np.abs(c - expected).max())
    if error <= cfg.position_tolerance:
        return None
    return f"positions are off mirror symmetry by {error:.1f} px (tolerance {cfg.position_tolerance:g})"


RULES = (
    ("count", count_rule(4)),
    ("quadrants", one_per_quadrant),
    ("class_order", class_order),
    ("symmetry", mirror_symmetry),
)

SPEC = mnist_spec("mnist4", Mnist4Config, 4, plan, RULES)
