"""Scene: one generated image with its per-object ground truth and per-scene parameters."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class Scene:
    """One image and everything needed to check it later.

    image:   uint8 [H, W, C].
    boxes:   float32 [n, 4], (x_min, y_min, x_max, y_max) in pixels, tight around visible ink/pixels
             (x_max/y_max are exclusive: a one-pixel object at column 5 has x_min=5, x_max=6).
    labels:  int16 [n], class of each object (digit class, or shape id for Arrow Room).
    objects: extra per-object arrays, each with first dimension n (e.g. "colors" int16 [n]).
    params:  per-scene scalars (e.g. "variant", "swap_01_89"), stored as one dataset each.
    images_extra: extra per-scene image-sized arrays (e.g. "masks" uint8 [H, W]).
    """

    image: np.ndarray
    boxes: np.ndarray
    labels: np.ndarray
    objects: dict[str, np.ndarray] = field(default_factory=dict)
    params: dict[str, int | float] = field(default_factory=dict)
    images_extra: dict[str, np.ndarray] = field(default_factory=dict)

    @property
    def num_objects(self) -> int:
        return int(len(self.labels))
