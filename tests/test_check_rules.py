"""Every MNIST rule function on hand-built layouts, passing and failing (the rules the checker applies)."""

from __future__ import annotations

import numpy as np
import pytest

from scenegen.datasets import mnist4, mnist10, mnist4_10
from scenegen.datasets.base import Layout
from scenegen.datasets.mnist10 import Mnist10Config
from scenegen.datasets.mnist4 import Mnist4Config
from scenegen.datasets.mnist4_10 import Mnist4_10Config


def layout(items: list[tuple[int, float, float]]) -> Layout:
    """Objects (label, centre x, centre y), each with a 12 x 16 box."""
    boxes = np.array([(x - 6, y - 8, x + 6, y + 8) for _, x, y in items], dtype=np.float64).reshape(-1, 4)
    return Layout(boxes, np.array([label for label, _, _ in items]), {})


def moved(items: list[tuple[int, float, float]], label: int, dx: float, dy: float) -> list[tuple[int, float, float]]:
    return [(c, x + dx, y + dy) if c == label else (c, x, y) for c, x, y in items]


def relabelled(items: list[tuple[int, float, float]], old: int, new: int) -> list[tuple[int, float, float]]:
    return [(new if c == old else c, x, y) for c, x, y in items]


# ---- MNIST-4 ----

FOUR = [(3, 20, 30), (4, 108, 30), (5, 108, 98), (6, 20, 98)]  # TL, TR, BR, BL mirrored about 64


def rule4(name: str):
    return dict(mnist4.RULES)[name]


def test_mnist4_valid_layout_passes_every_rule() -> None:
    assert mnist4.SPEC.first_violation(layout(FOUR), Mnist4Config()) is None


@pytest.mark.parametrize("items", [FOUR[:3], FOUR + [(7, 40, 40)]])
def test_mnist4_count(items) -> None:
    assert rule4("count")(layout(items), Mnist4Config()) is not None
    assert mnist4.SPEC.first_violation(layout(items), Mnist4Config()).startswith("count:")


def test_mnist4_quadrants() -> None:
    crowded = [FOUR[0], (4, 40, 40), FOUR[2], FOUR[3]]  # TR's digit in TL
    assert rule4("quadrants")(layout(FOUR), Mnist4Config()) is None
    assert "2, 0, 1, 1" in rule4("quadrants")(layout(crowded), Mnist4Config())


@pytest.mark.parametrize("labels", [(3, 5, 4, 6), (4, 3, 5, 6), (7, 8, 9, 0), (0, 1, 2, 2)])
def test_mnist4_class_order_fails(labels) -> None:
    items = [(c, x, y) for c, (_, x, y) in zip(labels, FOUR)]
    assert rule4("class_order")(layout(items), Mnist4Config()) is not None


@pytest.mark.parametrize("first", range(7))
def test_mnist4_class_order_passes_for_every_first_class(first) -> None:
    items = [(first + k, x, y) for k, (_, x, y) in enumerate(FOUR)]
    assert rule4("class_order")(layout(items), Mnist4Config()) is None


def test_mnist4_symmetry_tolerance_is_a_parameter() -> None:
    off_by_5 = layout(moved(FOUR, 4, 5, 0))
    assert rule4("symmetry")(layout(moved(FOUR, 4, 2, -2)), Mnist4Config()) is None
    assert "5.0 px" in rule4("symmetry")(off_by_5, Mnist4Config())
    assert rule4("symmetry")(off_by_5, Mnist4Config(position_tolerance=6)) is None


# ---- MNIST-10 ----

# 01 top-left, 234 top-right, 89 bottom-right, 567 bottom-left; 0/8 and 1/9 at equal spots in their quadrants
TEN = [(0, 15, 15), (1, 40, 40), (2, 80, 20), (3, 100, 20), (4, 90, 45),
       (8, 79, 79), (9, 104, 104), (5, 15, 80), (6, 40, 80), (7, 25, 110)]


def rule10(name: str):
    return dict(mnist10.RULES)[name]


def test_mnist10_valid_layout_passes_every_rule() -> None:
    assert mnist10.SPEC.first_violation(layout(TEN), Mnist10Config()) is None


def test_mnist10_count() -> None:
    assert rule10("count")(layout(TEN[:-1]), Mnist10Config()) == "9 digits, expected 10"


def test_mnist10_each_class_once() -> None:
    reason = rule10("classes")(layout(relabelled(TEN, 3, 2)), Mnist10Config())
    assert reason == "missing classes [3], repeated classes [2]"


def test_mnist10_quadrant_sets() -> None:
    cfg = Mnist10Config()
    assert "split across" in rule10("quadrant_sets")(layout(moved(TEN, 2, -64, 60)), cfg)
    groups_01_234_swapped = [(c, x + 64, y) if c in (0, 1) else (c, x - 64, y) if c in (2, 3, 4) else (c, x, y) for c, x, y in TEN]
    assert "wrong diagonal" in rule10("quadrant_sets")(layout(groups_01_234_swapped), cfg)


def diagonal_swapped(items, group_a, group_b):
    """Groups a and b (on one diagonal) trade quadrants, keeping their positions within the quadrant."""
    members = set(group_a + group_b)
    out = []
    for c, x, y in items:
        if c in members:
            x, y = (x + 64 if x < 64 else x - 64), (y + 64 if y < 64 else y - 64)
        out.append((c, x, y))
    return out


def test_mnist10_swaps_follow_swap_mode() -> None:
    one_diagonal = layout(diagonal_swapped(TEN, (0, 1), (8, 9)))
    both = layout(diagonal_swapped(diagonal_swapped(TEN, (0, 1), (8, 9)), (2, 3, 4), (5, 6, 7)))
    assert mnist10.SPEC.first_violation(one_diagonal, Mnist10Config()) is None
    assert mnist10.SPEC.first_violation(one_diagonal, Mnist10Config(swap_mode="shared")).startswith("swaps:")
    assert mnist10.SPEC.first_violation(both, Mnist10Config(swap_mode="shared")) is None


def test_mnist10_shared_layout() -> None:
    assert rule10("shared_layout")(layout(moved(TEN, 8, 2, 2)), Mnist10Config()) is None
    assert "0 and 8 differ by 5.0 px" in rule10("shared_layout")(layout(moved(TEN, 8, 5, 0)), Mnist10Config())


def test_mnist10_overlap() -> None:
    assert rule10("overlap")(layout(TEN), Mnist10Config()) is None
    assert rule10("overlap")(layout(moved(TEN, 3, -14, 0)), Mnist10Config()) == "digits 2 and 3 overlap"


# ---- MNIST-4-10 ----


def test_mnist4_10_uses_the_rules_of_the_variant_its_count_names() -> None:
    cfg = Mnist4_10Config()
    assert mnist4_10.SPEC.first_violation(layout(FOUR), cfg) is None
    assert mnist4_10.SPEC.first_violation(layout(TEN), cfg) is None
    assert mnist4_10.SPEC.first_violation(layout(TEN[:7]), cfg) == "count: 7 digits, expected 4 or 10"
    wrong_order = [(c, x, y) for c, (_, x, y) in zip((3, 5, 4, 6), FOUR)]
    assert mnist4_10.SPEC.first_violation(layout(wrong_order), cfg).startswith("variant: as mnist4, class_order:")
    assert mnist4_10.SPEC.first_violation(layout(moved(TEN, 9, 6, 0)), cfg).startswith("variant: as mnist10, shared_layout:")
