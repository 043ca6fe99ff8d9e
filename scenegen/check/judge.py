"""RuleChecker: read the digits in images, then apply the dataset's own rules (`SPEC.first_violation`).

Decision per image:
1. Every object the recogniser found must be readable (ReadSettings: "not a digit" below 0.99, and
   the best digit class has >= 0.3 of the digit classes' probability); otherwise the image fails as
   "unrecognisable".
2. A reading assigns each object a class: its best one, or another whose probability is at least
   `plausible` times the best one's (the probabilities of a reading's changed classes, relative to
   the best, must multiply to at least `plausible` too). The image passes when some reading obeys
   every rule, trying readings from the most probable down; otherwise it fails with the reason of the
   reading that gets furthest through the rules in their order (`rule_depth`; the most probable of
   those) and shows that reading's classes. This is the benefit of the doubt a human judge gives an
   ambiguous digit, bounded so that a clearly written wrong digit is never read as the right one.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from scenegen.check.inputs import to_grey
from scenegen.check.recogniser import GARBAGE, Reading, ReadSettings, Recogniser
from scenegen.datasets import get_spec
from scenegen.datasets.base import DatasetSpec, Layout
from scenegen.datasets.mnist_common import MNIST_FAMILY, MnistConfig
from scenegen.errors import UserError

if TYPE_CHECKING:
    from scenegen.check.arrow.checker import ArrowChecker

UNRECOGNISABLE = "unrecognisable"
ARROW_ROOM = "arrow-room"  # judged by scenegen.check.arrow


@dataclass(frozen=True)
class JudgeSettings:
    """read: when an object is a readable digit (else the image is unrecognisable).
    plausible: probability ratio to the best class that another class needs to be a plausible reading.
    max_ambiguous: objects that may take another class in one image (bounds the readings tried)."""

    read: ReadSettings = field(default_factory=ReadSettings)
    plausible: float = 0.01
    max_ambiguous: int = 4


def rule_depth(spec: DatasetSpec, reason: str) -> tuple[int, ...]:
    """How far a layout that fails with `reason` ('rule: why') got through spec's rules: the position
    of the broken rule; for a rule that applies another dataset's rules (MNIST-4-10's
    'variant: as mnist10, classes: ...') followed by the position within those."""
    name, _, why = reason.partition(": ")
    depth = ([rule for rule, _ in spec.rules].index(name),)
    inner, _, rest = why.removeprefix("as ").partition(", ")
    if why.startswith("as ") and inner in MNIST_FAMILY:
        return depth + rule_depth(get_spec(inner), rest)
    return depth


@dataclass(frozen=True)
class DetectedObject:
    """box: (x_min, y_min, x_max, y_max) pixels; label: digit class, -1 if unreadable; confidence: its probability."""

    box: tuple[float, float, float, float]
    label: int
    confidence: float


@dataclass(frozen=True)
class Verdict:
    """ok: the image obeys every rule; reason: 'rule: why' when it does not; objects: what was read."""

    ok: bool
    reason: str | None
    objects: list[DetectedObject]

    @property
    def rule(self) -> str | None:
        """The failed rule's name (for MNIST-4-10 with the variant's rule: 'variant: as mnist4, class_order')."""
        return None if self.reason is None else self.reason.rsplit(": ", 1)[0]


class RuleChecker:
    """Judges images of one dataset config: `RuleChecker.for_dataset("mnist4").check(images)`."""

    def __init__(self, spec: DatasetSpec, cfg: MnistConfig, recogniser: Recogniser, settings: JudgeSettings) -> None:
        self.spec, self.cfg, self.recogniser, self.settings = spec, cfg, recogniser, settings

    @classmethod
    def for_dataset(cls, name: str, config: dict[str, Any] | None = None, cache: Path | None = None, digits: str = "auto",
                    settings: JudgeSettings | None = None, progress: bool = True, train: Path | None = None,
                    **fit: Any) -> "RuleChecker | ArrowChecker":
        """The checker for a dataset and config (defaults where config is None); fits and caches the
        recogniser on first use. digits: the MNIST source to fit on (as `scenegen make --digits`);
        train: Arrow Room's rendered train split, or folder of splits, to fit on (None: the latest fitted recogniser);
        fit: FitSettings (ArrowFitSettings) overrides (e.g. scenes=4000 for a quick fit)."""
        from scenegen.check.cache import load_or_fit
        from scenegen.check.fit import FitSettings

        if name == ARROW_ROOM:
            from scenegen.check.arrow.checker import ArrowChecker

            return ArrowChecker.for_dataset(config, train=train, cache=cache, progress=progress, **fit)
        spec = get_spec(name)
        if name not in MNIST_FAMILY:
            raise UserError(f"scenegen check knows the rules of {', '.join(MNIST_FAMILY)} and {ARROW_ROOM}, not {name}")
        try:
            cfg = spec.config_type.from_dict(dict(config or {}))
        except (TypeError, ValueError) as exc:
            raise UserError(f"invalid {name} config: {exc}")
        settings = settings or JudgeSettings()
        net, rc = load_or_fit(cfg.image_size, cfg.digit_size, digits, cache, FitSettings(**fit), progress=progress)
        recogniser = Recogniser(net, rc.detect, join_gap=0.2 * cfg.digit_size, max_side=1.3 * cfg.digit_size)
        return cls(spec, cfg, recogniser, settings)

    def check(self, images: torch.Tensor | np.ndarray) -> list[Verdict]:
        """One verdict per image; images [N, C, H, W], [N, H, W, C] or [N, H, W], uint8 0-255 or float 0-1."""
        grey = to_grey(images)
        size = self.cfg.image_size
        if grey.shape[1:] != (size, size):
            raise UserError(f"images are {grey.shape[2]}x{grey.shape[1]} but {self.spec.name} scenes are {size}x{size}; "
                            f"give {size}x{size} images or the matching config (image_size)")
        return [self.judge(reading) for reading in self.recogniser.read(grey)]

    def judge(self, reading: Reading) -> Verdict:
        """The verdict on one image's reading."""
        boxes, probs = reading.boxes, reading.probs
        best = probs[:, :GARBAGE].argmax(axis=1)
        ok = self.settings.read.readable(probs)
        if not ok.all():
            i = int(np.flatnonzero(~ok)[0])
            cx, cy = (boxes[i, 0] + boxes[i, 2]) / 2, (boxes[i, 1] + boxes[i, 3]) / 2
            objects = self._objects(boxes, probs, np.where(ok, best, -1))
            what = "no digit" if probs[i, GARBAGE] >= self.settings.read.not_digit else f"no clear digit (best {best[i]})"
            return Verdict(False, f"{UNRECOGNISABLE}: the object at ({cx:.0f}, {cy:.0f}) reads as {what}", objects)
        closest: tuple[tuple[int, ...], str, np.ndarray] | None = None
        for labels in self.readings(probs):
            reason = self.spec.first_violation(Layout(boxes, labels, {}), self.cfg)
            if reason is None:
                return Verdict(True, None, self._objects(boxes, probs, labels))
            depth = rule_depth(self.spec, reason)
            if closest is None or depth > closest[0]:
                closest = (depth, reason, labels)
        assert closest is not None  # the most probable reading is always tried
        return Verdict(False, closest[1], self._objects(boxes, probs, closest[2]))

    def readings(self, probs: np.ndarray) -> list[np.ndarray]:
        """Plausible class assignments int [k] for probs float [k, 11], most probable first."""
        digit = probs[:, :GARBAGE]
        best = digit.argmax(axis=1)
        ratio = digit / digit[np.arange(len(digit)), best][:, None]  # [k, 10], 1 at the best class
        second = np.sort(ratio, axis=1)[:, -2] if len(digit) else np.zeros(0)
        ambiguous = [int(i) for i in np.argsort(-second) if second[i] >= self.settings.plausible][: self.settings.max_ambiguous]
        options = [np.flatnonzero(ratio[i] >= self.settings.plausible) for i in ambiguous]
        readings = []
        for choice in itertools.product(*options):
            weight = float(np.prod([ratio[i, c] for i, c in zip(ambiguous, choice)]))
            if weight >= self.settings.plausible:
                labels = best.copy()
                labels[ambiguous] = choice
                readings.append((weight, labels))
        readings.sort(key=lambda r: -r[0])
        return [labels for _, labels in readings]

    @staticmethod
    def _objects(boxes: np.ndarray, probs: np.ndarray, labels: np.ndarray) -> list[DetectedObject]:
        return [
            DetectedObject(tuple(float(v) for v in box), int(label), float(p[label]) if label >= 0 else float(p[:GARBAGE].max()))
            for box, p, label in zip(boxes, probs, labels)
        ]
