"""The contract every dataset module fulfils: sample scenes, and state its rules in one place.

The same rule functions serve three users: the generator's self-test (every sampled scene obeys
them), `--violate` (scenes that break exactly one) and the checker (applied to recognised objects).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Generic, Protocol, TypeVar

import numpy as np

from scenegen.config import DatasetConfig
from scenegen.scene import Scene

C = TypeVar("C", bound=DatasetConfig)


@dataclass(frozen=True)
class Layout:
    """What the rules look at: objects as read from ground truth or recognised from pixels.

    boxes:  float [n, 4] (x_min, y_min, x_max, y_max) in pixels.
    labels: int [n] object classes.
    objects: extra per-object arrays (first dimension n), e.g. colours or headings.
    """

    boxes: np.ndarray
    labels: np.ndarray
    objects: dict[str, np.ndarray]

    @classmethod
    def of(cls, scene: Scene) -> "Layout":
        return cls(scene.boxes, scene.labels, scene.objects)


class Resources(Protocol):
    """What a dataset needs beyond its config to make shards (digit source, render device ...).

    Picklable: it travels to worker processes. provenance() is recorded in the manifest.
    """

    def provenance(self) -> dict[str, Any]: ...


# A rule takes a layout and the config; None when satisfied, else a short reason.
# Rules run in order and may assume that every earlier rule passed.
Rule = Callable[[Layout, Any], "str | None"]


@dataclass(frozen=True)
class DatasetSpec(Generic[C]):
    """One dataset: how to make a shard's scenes and the rules every scene obeys.

    prepare(cfg, split, options) -> Resources, once in the parent process (options: CLI values
        such as {"digits": "auto"} or {"gpu": True}).
    make_shard(cfg, split, rng, n, resources) -> n scenes; every random choice comes from rng.
    rules: ordered (name, rule) pairs; a scene is valid iff every rule returns None.
    shard_size: default scenes per shard file.
    extra_attrs(cfg) -> plain-JSON shard attributes beyond the config (e.g. the nominal camera).
    """

    name: str
    config_type: type[C]
    channels: int
    max_objects: Callable[[C], int]
    prepare: Callable[[C, str, dict[str, Any]], Resources]
    make_shard: Callable[[C, str, np.random.Generator, int, Any], list[Scene]]
    rules: tuple[tuple[str, Rule], ...]
    shard_size: int = 2000
    extra_attrs: Callable[[C], dict[str, Any]] | None = None

    def first_violation(self, layout: Layout, cfg: C) -> str | None:
        """'rule: reason' for the first rule the layout breaks, or None when it obeys them all."""
        for name, rule in self.rules:
            reason = rule(layout, cfg)
            if reason is not None:
                return f"{name}: {reason}"
        return None
