"""MNIST-4-10: each scene is an MNIST-4 or an MNIST-10 scene; the digit count says which rules apply."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from scenegen.datasets import mnist4, mnist10
from scenegen.datasets.base import Layout
from scenegen.datasets.mnist_common import Placement, mnist_spec
from scenegen.digits import DigitPool

UNUSED = -1  # value of a per-scene parameter that the scene's variant does not have


@dataclass(frozen=True)
class Mnist4_10Config(mnist10.Mnist10Config):
    """p_mnist4: probability that a scene is an MNIST-4 scene (1:1 mix by default)."""

    dataset: ClassVar[str] = "mnist4-10"
    p_mnist4: float = 0.5

    def __post_init__(self) -> None:
        super().__post_init__()
        if not 0.0 <= self.p_mnist4 <= 1.0:
            raise ValueError(f"p_mnist4 must lie in [0, 1], not {self.p_mnist4}")


def plan(cfg: Mnist4_10Config, pool: DigitPool, rng: np.random.Generator, is_four: bool) -> tuple[list[Placement], dict[str, int]]:
    """A plan of the given variant, with every variant's parameters (UNUSED where they do not apply)."""
    placements, params = (mnist4 if is_four else mnist10).plan(cfg, pool, rng)
    return placements, {"variant": 4 if is_four else 10, "first_class": UNUSED, "swap_01_89": UNUSED, "swap_234_567": UNUSED, **params}


def plan_either(cfg: Mnist4_10Config, pool: DigitPool, rng: np.random.Generator) -> tuple[list[Placement], dict[str, int]]:
    """An MNIST-4 plan with probability p_mnist4, else an MNIST-10 plan."""
    return plan(cfg, pool, rng, bool(rng.random() < cfg.p_mnist4))


def count_4_or_10(layout: Layout, cfg: Mnist4_10Config) -> str | None:
    n = len(layout.labels)
    return None if n in (4, 10) else f"{n} digits, expected 4 or 10"


def variant_rules(layout: Layout, cfg: Mnist4_10Config) -> str | None:
    """The MNIST-4 rules for a 4-digit scene, the MNIST-10 rules for a 10-digit one."""
    spec = mnist4.SPEC if len(layout.labels) == 4 else mnist10.SPEC
    reason = spec.first_violation(layout, cfg)
    return None if reason is None else f"as {spec.name}, {reason}"


SPEC = mnist_spec("mnist4-10", Mnist4_10Config, 10, plan_either, (("count", count_4_or_10), ("variant", variant_rules)))
