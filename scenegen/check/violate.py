"""Scenes that break exactly one rule (`scenegen make --violate NAME`): edits of a valid plan before it is drawn.

Each violation edits the Placement list that a dataset's `plan()` made, then the plan is rendered as
usual. `rule` is what `SPEC.first_violation` names on the result's ground truth; `keeps` lists the
rules that still hold when evaluated on their own (tests check both).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from functools import partial
from typing import Callable

import numpy as np

from scenegen.datasets import mnist4, mnist10, mnist4_10
from scenegen.datasets.mnist_common import (
    MnistConfig,
    Placement,
    ink_size,
    pick_digit,
    place_at_centre,
    quadrant_origin,
    render,
    too_close,
)
from scenegen.digits import DigitPool
from scenegen.errors import UserError
from scenegen.scene import Scene

SEPARATION = 2  # pixels between a moved or added digit and every other one, so that it stays apart
TRIES = 200  # random placements tried before an edit gives up on a plan

Plan = list[Placement]
Planner = Callable[[MnistConfig, DigitPool, np.random.Generator], tuple[Plan, dict]]
Edit = Callable[[Plan, MnistConfig, DigitPool, np.random.Generator], "Plan | None"]


@dataclass(frozen=True)
class Violation:
    """One way to break a dataset's rules.

    rule: the prefix of `first_violation` on the ground truth (a rule name, or for MNIST-4-10 the
        nested 'variant: as mnist4, class_order'). keeps: rules that still hold individually.
    plan: draws the valid plan to edit; edit: returns the broken plan, or None to draw a new plan.
    applies: whether the violation exists under a config (e.g. only shared swaps can be unshared).
    """

    name: str
    description: str
    rule: str
    keeps: tuple[str, ...]
    plan: Planner
    edit: Edit
    applies: Callable[[MnistConfig], bool] = field(default=lambda cfg: True)


# ---- placement geometry ----


def centre(pool: DigitPool, p: Placement) -> tuple[float, float]:
    w, h = ink_size(pool, p.index)
    return p.x + w / 2, p.y + h / 2


def quadrant_of(pool: DigitPool, p: Placement, size: int) -> int:
    cx, cy = centre(pool, p)
    right, bottom = cx >= size / 2, cy >= size / 2
    return (3, 2)[right] if bottom else (0, 1)[right]


def inside(pool: DigitPool, p: Placement, quadrant: int, cfg: MnistConfig) -> bool:
    """The ink box lies in the quadrant, `margin` pixels from its border."""
    ox, oy = quadrant_origin(quadrant, cfg.image_size)
    w, h = ink_size(pool, p.index)
    half = cfg.image_size // 2
    return ox + cfg.margin <= p.x <= ox + half - cfg.margin - w and oy + cfg.margin <= p.y <= oy + half - cfg.margin - h


def apart(pool: DigitPool, p: Placement, others: Plan, gap: int) -> bool:
    return not any(too_close(pool, p, o, gap) for o in others)


def place_free(pool: DigitPool, index: int, quadrant: int, others: Plan, cfg: MnistConfig, rng: np.random.Generator) -> Placement | None:
    """The digit at a random spot of the quadrant, SEPARATION pixels from the others; None if none found."""
    ox, oy = quadrant_origin(quadrant, cfg.image_size)
    half = cfg.image_size // 2
    w, h = ink_size(pool, index)
    for _ in range(TRIES):
        x = ox + int(rng.integers(cfg.margin, half - cfg.margin - w + 1))
        y = oy + int(rng.integers(cfg.margin, half - cfg.margin - h + 1))
        candidate = Placement(index, int(pool.labels[index]), x, y)
        if apart(pool, candidate, others, SEPARATION):
            return candidate
    return None


def shifted(pool: DigitPool, p: Placement, others: Plan, cfg: MnistConfig, rng: np.random.Generator) -> Placement | None:
    """p moved within its quadrant by 3 to 5 position tolerances (largest coordinate), apart from the others."""
    quadrant = quadrant_of(pool, p, cfg.image_size)
    for _ in range(TRIES):
        distance = rng.uniform(3, 5) * cfg.position_tolerance
        angle = rng.uniform(0, 2 * np.pi)
        direction = np.array([np.cos(angle), np.sin(angle)])
        dx, dy = np.round(direction / np.abs(direction).max() * distance).astype(int)
        candidate = replace(p, x=p.x + int(dx), y=p.y + int(dy))
        if inside(pool, candidate, quadrant, cfg) and apart(pool, candidate, others, SEPARATION):
            return candidate
    return None


def without(plan: Plan, i: int) -> Plan:
    return plan[:i] + plan[i + 1 :]


def at_label(plan: Plan, label: int) -> int:
    return next(i for i, p in enumerate(plan) if p.label == label)


# ---- edits shared by the MNIST family ----


def drop_digit(plan: Plan, cfg: MnistConfig, pool: DigitPool, rng: np.random.Generator) -> Plan:
    return without(plan, int(rng.integers(len(plan))))


def add_digit(plan: Plan, cfg: MnistConfig, pool: DigitPool, rng: np.random.Generator) -> Plan | None:
    index = pick_digit(pool, int(rng.integers(10)), rng)
    extra = place_free(pool, index, int(rng.integers(4)), plan, cfg, rng)
    return None if extra is None else plan + [extra]


# ---- MNIST-4 (plan order TL, TR, BR, BL) ----


def swap_classes(plan: Plan, cfg: MnistConfig, pool: DigitPool, rng: np.random.Generator) -> Plan:
    """Two quadrants trade digits; every digit keeps the centre of the quadrant it lands in."""
    i, j = rng.choice(4, size=2, replace=False)
    out = list(plan)
    for a, b in ((i, j), (j, i)):
        out[a] = place_at_centre(pool, plan[b].index, *centre(pool, plan[a]))
    return out


def shift_one(plan: Plan, cfg: MnistConfig, pool: DigitPool, rng: np.random.Generator, labels: tuple[int, ...] | None = None) -> Plan | None:
    """One digit (of the given classes, else any) moved well beyond the position tolerance."""
    choices = [i for i, p in enumerate(plan) if labels is None or p.label in labels]
    i = int(rng.choice(choices))
    moved = shifted(pool, plan[i], without(plan, i), cfg, rng)
    return None if moved is None else plan[:i] + [moved] + plan[i + 1 :]


def crowd_quadrant(plan: Plan, cfg: MnistConfig, pool: DigitPool, rng: np.random.Generator) -> Plan | None:
    """One digit moved into a neighbouring quadrant, which then holds two."""
    i = int(rng.integers(4))
    target = (i + int(rng.choice([1, 3]))) % 4
    moved = place_free(pool, plan[i].index, target, without(plan, i), cfg, rng)
    return None if moved is None else plan[:i] + [moved] + plan[i + 1 :]


# ---- MNIST-10 ----


def duplicate_class(plan: Plan, cfg: mnist10.Mnist10Config, pool: DigitPool, rng: np.random.Generator) -> Plan | None:
    """One digit replaced, at its centre, by a digit of another class (which then appears twice)."""
    i = int(rng.integers(len(plan)))
    label = int((plan[i].label + rng.integers(1, 10)) % 10)
    replacement = place_at_centre(pool, pick_digit(pool, label, rng), *centre(pool, plan[i]))
    quadrant = quadrant_of(pool, plan[i], cfg.image_size)
    if not inside(pool, replacement, quadrant, cfg) or not apart(pool, replacement, without(plan, i), cfg.min_gap):
        return None
    return plan[:i] + [replacement] + plan[i + 1 :]


def translate(pool: DigitPool, p: Placement, source: int, target: int, size: int) -> Placement:
    (sx, sy), (tx, ty) = quadrant_origin(source, size), quadrant_origin(target, size)
    return replace(p, x=p.x + tx - sx, y=p.y + ty - sy)


def swap_quadrants(plan: Plan, cfg: mnist10.Mnist10Config, pool: DigitPool, rng: np.random.Generator, diagonal: bool = False) -> Plan:
    """The contents of two quadrants trade places (neighbours, or with diagonal=True the 234/567 diagonal)."""
    size = cfg.image_size
    if diagonal:
        a = quadrant_of(pool, plan[at_label(plan, 2)], size)
        b = (a + 2) % 4
    else:
        a = int(rng.integers(4))
        b = (a + int(rng.choice([1, 3]))) % 4
    moves = {a: b, b: a}
    out = []
    for p in plan:
        q = quadrant_of(pool, p, size)
        out.append(translate(pool, p, q, moves[q], size) if q in moves else p)
    return out


def exchange_sets(plan: Plan, cfg: mnist10.Mnist10Config, pool: DigitPool, rng: np.random.Generator) -> Plan | None:
    """A digit of {2,3,4} and one of {5,6,7} trade centres: each quadrant holds a class of the other set."""
    i, j = at_label(plan, int(rng.integers(2, 5))), at_label(plan, int(rng.integers(5, 8)))
    out = list(plan)
    out[i] = place_at_centre(pool, plan[i].index, *centre(pool, plan[j]))
    out[j] = place_at_centre(pool, plan[j].index, *centre(pool, plan[i]))
    for k in (i, j):
        others = [p for m, p in enumerate(out) if m != k]
        if not inside(pool, out[k], quadrant_of(pool, out[k], cfg.image_size), cfg) or not apart(pool, out[k], others, cfg.min_gap):
            return None
    return out


def overlap_two(plan: Plan, cfg: mnist10.Mnist10Config, pool: DigitPool, rng: np.random.Generator) -> Plan | None:
    """A digit of {2,3,4} or {5,6,7} moved onto a neighbour in its quadrant (boxes overlap by a third or more)."""
    i = at_label(plan, int(rng.choice([2, 3, 4, 5, 6, 7])))
    quadrant = quadrant_of(pool, plan[i], cfg.image_size)
    mates = [j for j, p in enumerate(plan) if j != i and quadrant_of(pool, p, cfg.image_size) == quadrant]
    cx, cy = centre(pool, plan[int(rng.choice(mates))])
    w, h = ink_size(pool, plan[i].index)
    for _ in range(TRIES):
        dx, dy = rng.uniform(-w / 3, w / 3), rng.uniform(-h / 3, h / 3)
        moved = place_at_centre(pool, plan[i].index, cx + dx, cy + dy)
        if inside(pool, moved, quadrant, cfg):
            return plan[:i] + [moved] + plan[i + 1 :]
    return None


# ---- the tables ----

COUNT = ("missing_digit", "extra_digit")
EXTRA = "a digit of a random class added, apart from the others"


def _mnist4() -> dict[str, Violation]:
    plan = mnist4.plan
    rows = [
        Violation("missing_digit", "one digit removed", "count", (), plan, drop_digit),
        Violation("extra_digit", EXTRA, "count", (), plan, add_digit),
        Violation("crowded_quadrant", "a digit moved into a neighbouring quadrant", "quadrants", ("count",), plan, crowd_quadrant),
        Violation("class_order", "two quadrants trade digits (class order broken)", "class_order",
                  ("count", "quadrants", "symmetry"), plan, swap_classes),
        Violation("symmetry", "one digit shifted by 3-5 position tolerances", "symmetry",
                  ("count", "quadrants", "class_order"), plan, shift_one),
    ]
    return {v.name: v for v in rows}


def _mnist10() -> dict[str, Violation]:
    plan = mnist10.plan
    rows = [
        Violation("missing_digit", "one digit removed", "count", (), plan, drop_digit),
        Violation("extra_digit", EXTRA, "count", ("overlap",), plan, add_digit),
        Violation("duplicate_class", "a digit replaced by one of another class (two identical classes)", "classes",
                  ("count", "overlap"), plan, duplicate_class),
        Violation("swapped_quadrants", "two neighbouring quadrants trade contents", "quadrant_sets",
                  ("count", "classes", "shared_layout", "overlap"), plan, swap_quadrants),
        Violation("wrong_set", "a digit of {2,3,4} and one of {5,6,7} trade places (a class from the wrong set)",
                  "quadrant_sets", ("count", "classes", "shared_layout", "overlap"), plan, exchange_sets),
        Violation("unshared_swap", "only the {2,3,4}/{5,6,7} diagonal swapped again (swap_mode shared)", "swaps",
                  ("count", "classes", "quadrant_sets", "shared_layout", "overlap"), plan,
                  partial(swap_quadrants, diagonal=True), applies=lambda cfg: cfg.swap_mode == "shared"),
        Violation("shared_layout", "one of 0, 1, 8, 9 shifted by 3-5 position tolerances", "shared_layout",
                  ("count", "classes", "quadrant_sets", "swaps", "overlap"), plan, partial(shift_one, labels=(0, 1, 8, 9))),
        Violation("overlap", "a digit moved onto a neighbour in its quadrant", "overlap",
                  ("count", "classes", "quadrant_sets", "swaps", "shared_layout"), plan, overlap_two),
    ]
    return {v.name: v for v in rows}


def _mnist4_10() -> dict[str, Violation]:
    """MNIST-4's and MNIST-10's violations, drawn on a scene of the matching variant."""
    out: dict[str, Violation] = {}
    for spec_name, table, is_four in (("mnist4", _mnist4(), True), ("mnist10", _mnist10(), False)):
        for v in table.values():
            planner = partial(mnist4_10.plan, is_four=is_four)
            if v.name in COUNT:
                planner = mnist4_10.plan_either
                rule = "count"
            else:
                rule = f"variant: as {spec_name}, {v.rule}"
            out[v.name] = replace(v, rule=rule, keeps=("count",) if v.name not in COUNT else (), plan=planner)
    return out


TABLES: dict[str, Callable[[], dict[str, Violation]]] = {"mnist4": _mnist4, "mnist10": _mnist10, "mnist4-10": _mnist4_10}


def violations(cfg: MnistConfig) -> dict[str, Violation]:
    """The violations that exist for a config, by name."""
    if cfg.dataset not in TABLES:
        raise UserError(f"--violate exists for {', '.join(TABLES)}, not for {cfg.dataset}")
    return {name: v for name, v in TABLES[cfg.dataset]().items() if v.applies(cfg)}


def get_violation(cfg: MnistConfig, name: str) -> Violation:
    """The named violation; a UserError lists the names that exist for this config."""
    table = violations(cfg)
    if name not in table:
        raise UserError(f"--violate {name}: no such violation for {cfg.dataset}; choose one of: {', '.join(table)}")
    return table[name]


def violating_scene(cfg: MnistConfig, pool: DigitPool, rng: np.random.Generator, name: str) -> Scene:
    """A scene that breaks exactly the named rule: a valid plan, edited, then drawn."""
    violation = get_violation(cfg, name)
    for _ in range(TRIES):
        plan, params = violation.plan(cfg, pool, rng)
        edited = violation.edit(plan, cfg, pool, rng)
        if edited is not None:
            return render(pool, edited, params, cfg.image_size)
    raise RuntimeError(f"could not draw a {name} violation for {cfg.dataset} in {TRIES} tries")
