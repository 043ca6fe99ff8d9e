"""MNIST-10: each class once; {0,1}/{8,9} on one diagonal sharing a layout, {2,3,4}/{5,6,7} on the other.

Unswapped, clockwise from top-left: {0,1} TL, {2,3,4} TR, {8,9} BR, {5,6,7} BL. Each diagonal pair
of groups trades places on a coin flip; `swap_mode` says whether the two diagonals use independent
coins or one shared coin. Digit 0 sits in its quadrant where 8 sits in its quadrant, 1 where 9 sits.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Literal

import numpy as np

from scenegen.datasets.base import Layout
from scenegen.datasets.mnist_common import (
    MnistConfig,
    Placement,
    count_rule,
    mnist_spec,
    ink_size,
    overlap_rule,
    pick_digit,
    place_at_centre,
    quadrant_origin,
    quadrants,
    scatter_in_quadrant,
    too_close,
    within_quadrant,
)
from scenegen.digits import DigitPool

# Groups and their home quadrants (0 TL, 1 TR, 2 BR, 3 BL); swapping moves a group to home + 2.
GROUPS: dict[str, tuple[tuple[int, ...], int]] = {
    "01": ((0, 1), 0),
    "234": ((2, 3, 4), 1),
    "89": ((8, 9), 2),
    "567": ((5, 6, 7), 3),
}
SHARED_LAYOUT = ((0, 8), (1, 9))  # digit pairs at the same within-quadrant position


@dataclass(frozen=True)
class Mnist10Config(MnistConfig):
    """swap_mode: "independent" (one coin per diagonal) or "shared" (one coin for both).
    min_gap: pixels between the ink boxes of digits in one quadrant."""

    dataset: ClassVar[str] = "mnist10"
    swap_mode: Literal["independent", "shared"] = "independent"
    min_gap: int = 1

    def __post_init__(self) -> None:
        if self.swap_mode not in ("independent", "shared"):
            raise ValueError(f"swap_mode must be 'independent' or 'shared', not {self.swap_mode!r}")


def plan(cfg: Mnist10Config, pool: DigitPool, rng: np.random.Generator) -> tuple[list[Placement], dict[str, int]]:
    """All ten digits: the shared-layout diagonal first, then the scattered one."""
    swap_a = int(rng.integers(2))
    swap_b = swap_a if cfg.swap_mode == "shared" else int(rng.integers(2))
    home = {"01": 2 * swap_a, "89": 2 - 2 * swap_a, "234": 1 + 2 * swap_b, "567": 3 - 2 * swap_b}
    indices = {c: pick_digit(pool, c, rng) for c in range(10)}
    placements = _shared_layout(cfg, pool, indices, home["01"], home["89"], rng)
    for group in ("234", "567"):
        members = [indices[c] for c in GROUPS[group][0]]
        placements += scatter_in_quadrant(pool, members, home[group], cfg, rng, cfg.min_gap)
    return placements, {"swap_01_89": swap_a, "swap_234_567": swap_b}


def _shared_layout(
    cfg: Mnist10Config, pool: DigitPool, indices: dict[int, int], q01: int, q89: int, rng: np.random.Generator
) -> list[Placement]:
    """0 and 8 at one within-quadrant centre, 1 and 9 at another; no two digits of a quadrant too close."""
    half = cfg.image_size // 2
    (ax, ay), (bx, by) = quadrant_origin(q01, cfg.image_size), quadrant_origin(q89, cfg.image_size)
    while True:
        placements = []
        for pair in SHARED_LAYOUT:
            sizes = np.array([ink_size(pool, indices[c]) for c in pair], dtype=np.float64)
            reach_x, reach_y = sizes[:, 0].max() / 2 + cfg.margin, sizes[:, 1].max() / 2 + cfg.margin
            rx, ry = rng.uniform(reach_x, half - reach_x), rng.uniform(reach_y, half - reach_y)
            placements.append(place_at_centre(pool, indices[pair[0]], ax + rx, ay + ry))
            placements.append(place_at_centre(pool, indices[pair[1]], bx + rx, by + ry))
        zero, eight, one, nine = placements
        if not too_close(pool, zero, one, cfg.min_gap) and not too_close(pool, eight, nine, cfg.min_gap):
            return placements


# ---- rules (ground truth and recognised layouts alike) ----


def each_class_once(layout: Layout, cfg: Mnist10Config) -> str | None:
    counts = np.bincount(np.asarray(layout.labels, dtype=np.int64), minlength=10)[:10]
    if (counts == 1).all():
        return None
    missing = [c for c in range(10) if counts[c] == 0]
    repeated = [c for c in range(10) if counts[c] > 1]
    return f"missing classes {missing}, repeated classes {repeated}"


def group_quadrants(layout: Layout, cfg: Mnist10Config) -> dict[str, int] | str:
    """The quadrant of each group, or a reason why the groups are not each in one quadrant."""
    q = quadrants(layout, cfg.image_size)
    where = {int(label): int(quad) for label, quad in zip(layout.labels, q)}
    found = {}
    for group, (members, _) in GROUPS.items():
        places = {where[c] for c in members}
        if len(places) != 1:
            return f"digits {{{','.join(map(str, members))}}} are split across quadrants"
        found[group] = places.pop()
    return found


def quadrant_sets(layout: Layout, cfg: Mnist10Config) -> str | None:
    found = group_quadrants(layout, cfg)
    if isinstance(found, str):
        return found
    for group, (_, home) in GROUPS.items():
        if found[group] not in (home, (home + 2) % 4):
            return f"group {group} is in a quadrant of the wrong diagonal"
    if found["89"] != (found["01"] + 2) % 4 or found["567"] != (found["234"] + 2) % 4:
        return "a diagonal's two groups are not in opposite quadrants"
    return None


def swaps_allowed(layout: Layout, cfg: Mnist10Config) -> str | None:
    if cfg.swap_mode == "independent":
        return None
    found = group_quadrants(layout, cfg)
    assert isinstance(found, dict)  # quadrant_sets passed
    if (found["01"] == 2) == (found["234"] == 3):
        return None
    return "the two diagonals were swapped differently, but swap_mode is 'shared'"


def shared_layout(layout: Layout, cfg: Mnist10Config) -> str | None:
    rel = within_quadrant(layout, cfg.image_size)
    at = {int(label): rel[i] for i, label in enumerate(layout.labels)}
    for a, b in SHARED_LAYOUT:
        error = float(np.abs(at[a] - at[b]).max())
        if error > cfg.position_tolerance:
            return f"{a} and {b} differ by {error:.1f} px within their quadrants (tolerance {cfg.position_tolerance:g})"
    return None


RULES = (
    ("count", count_rule(10)),
    ("classes", each_class_once),
    ("quadrant_sets", quadrant_sets),
    ("swaps", swaps_allowed),
    ("shared_layout", shared_layout),
    ("overlap", overlap_rule),
)

SPEC = mnist_spec("mnist10", Mnist10Config, 10, plan, RULES)
