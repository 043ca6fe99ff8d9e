"""ArrowChecker: read each Arrow Room image (recogniser.py), lift what was read onto the floor
(geometry.py) and apply the dataset's own rules (`SPEC.first_violation`) to that Layout.

What the rules get per object: a shape (label), the material and colour with the highest probability,
the world centre back-projected from the projected centre at the shape's half height, and for the
arrow the world heading back-projected from its drawn direction (nominal camera). The shape is the most
probable one, or for an object the recogniser is unsure about another plausible one (as a human judge
gives an unclear object the benefit of the doubt): the image passes when some plausible reading obeys
every rule.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from scenegen.check.arrow.geometry import floor_pose
from scenegen.check.arrow.recogniser import ArrowRecogniser, ObjectReading
from scenegen.check.inputs import to_rgb
from scenegen.check.judge import DetectedObject, Verdict
from scenegen.datasets.arrow_room import SPEC, ArrowRoomConfig
from scenegen.datasets.arrow_room.sampler import ARROW
from scenegen.datasets.base import Layout
from scenegen.errors import UserError

PLAUSIBLE = 0.3  # a shape with this fraction of the best one's probability is a plausible reading too
MAX_AMBIGUOUS = 2  # objects per image that may take another shape


@dataclass(frozen=True)
class ArrowObject(DetectedObject):
    """A DetectedObject (label: shape id, confidence: its probability) with what else was read:
    names of shape, colour and material; world centre; heading in degrees (the arrow only, else None)."""

    shape: str
    color: str
    material: str
    position: tuple[float, float, float]
    heading_deg: float | None


class ArrowChecker:
    """Judges Arrow Room images: `RuleChecker.for_dataset("arrow-room", train=DIR).check(images)`."""

    def __init__(self, cfg: ArrowRoomConfig, recogniser: ArrowRecogniser, plausible: float = PLAUSIBLE) -> None:
        if not 0 < plausible <= 1:
            raise ValueError(f"plausible must lie in (0, 1], not {plausible}")
        self.spec, self.cfg, self.recogniser, self.plausible = SPEC, cfg, recogniser, plausible

    @classmethod
    def for_dataset(cls, config: dict[str, Any] | None = None, train: Path | None = None, cache: Path | None = None,
                    progress: bool = True, **fit: Any) -> "ArrowChecker":
        """The checker for a config (rules and camera; defaults where None) with the recogniser fitted on
        the rendered train split(s) `train` (cached), or with train None the latest cached one."""
        from scenegen.check.arrow.cache import load_or_fit
        from scenegen.check.arrow.fit import ArrowFitSettings

        try:
            cfg = ArrowRoomConfig.from_dict(dict(config or {}))
        except (TypeError, ValueError) as exc:
            raise UserError(f"invalid arrow-room config: {exc}")
        recogniser, _ = load_or_fit(train, cache, ArrowFitSettings(**fit), progress=progress)
        return cls(cfg, recogniser)

    def check(self, images: torch.Tensor | np.ndarray) -> list[Verdict]:
        """One verdict per image; images [N, H, W, 3] or [N, 3, H, W] (grey accepted), uint8 0-255 or float 0-1."""
        rgb = to_rgb(images)
        size = self.cfg.image_size
        if rgb.shape[1:3] != (size, size):
            raise UserError(f"images are {rgb.shape[2]}x{rgb.shape[1]} but arrow-room scenes are {size}x{size}; "
                            f"give {size}x{size} images or the matching config (image_size)")
        return [self.judge(reading) for reading in self.recogniser.read(rgb)]

    def layout(self, reading: ObjectReading, labels: np.ndarray) -> Layout:
        """The Layout the rules judge with shape ids labels int [k]: the most probable materials and colours,
        positions and the arrow's heading."""
        positions, headings = floor_pose(self.cfg, labels, reading.centre, reading.direction)
        headings[labels != ARROW] = np.nan  # only the arrow's heading is read
        objects = {"materials": reading.material.argmax(axis=1), "colors": reading.color.argmax(axis=1),
                   "positions": positions, "headings": headings}
        return Layout(reading.boxes, labels, objects)

    def judge(self, reading: ObjectReading) -> Verdict:
        """The verdict on one image's reading: passes when some plausible shape reading obeys every rule,
        else fails with the most probable reading's reason."""
        first: tuple[str, Layout] | None = None
        for labels in self.readings(reading.shape):
            layout = self.layout(reading, labels)
            reason = self.spec.first_violation(layout, self.cfg)
            if reason is None:
                return Verdict(True, None, self.objects(reading, layout))
            first = first or (reason, layout)
        assert first is not None  # the most probable reading is always tried
        return Verdict(False, first[0], self.objects(reading, first[1]))

    def readings(self, probs: np.ndarray) -> list[np.ndarray]:
        """Shape readings int [k] of shape probabilities float [k, S], most probable first: each object takes
        its best shape or one with at least `plausible` times its probability (at most MAX_AMBIGUOUS objects
        change, and the changed ones' ratios multiply to at least `plausible`)."""
        best = probs.argmax(axis=1)
        ratio = probs / probs[np.arange(len(probs)), best][:, None]
        second = np.sort(ratio, axis=1)[:, -2] if probs.shape[1] > 1 else np.zeros(len(probs))
        ambiguous = [int(i) for i in np.argsort(-second) if second[i] >= self.plausible][:MAX_AMBIGUOUS]
        found = []
        for choice in itertools.product(*(np.flatnonzero(ratio[i] >= self.plausible) for i in ambiguous)):
            weight = float(np.prod([ratio[i, c] for i, c in zip(ambiguous, choice)]))
            if weight >= self.plausible:
                labels = best.copy()
                labels[ambiguous] = choice
                found.append((weight, labels))
        found.sort(key=lambda f: -f[0])  # stable: the best reading (weight 1) first
        return [labels for _, labels in found]

    def objects(self, reading: ObjectReading, layout: Layout) -> list[ArrowObject]:
        """What was read, per object, for reports."""
        cfg, o = self.cfg, layout.objects
        return [
            ArrowObject(tuple(float(v) for v in layout.boxes[i]), int(label), float(reading.shape[i, label]),
                        cfg.shapes[label], cfg.colors[int(o["colors"][i])], cfg.materials[int(o["materials"][i])],
                        tuple(float(v) for v in o["positions"][i]),
                        None if np.isnan(o["headings"][i]) else float(np.degrees(o["headings"][i])))
            for i, label in enumerate(int(v) for v in layout.labels)
        ]
