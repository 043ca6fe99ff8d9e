"""The recogniser: digit candidates (detect.py) classified by a small CNN, fragments of broken digits joined.

Classes 0-9 are digits; class 10 (GARBAGE) is "not a digit": blobs, fragments, digits run together.
The classifier is a DigitEnsemble: one small CNN by default (FitSettings.nets), several averaged.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from scenegen.check.detect import DetectSettings, Found, box_gaps, crops, find, merge

GARBAGE = 10
CLASSES = 11
BATCH = 512  # images per detection batch (bounds memory)
CHUNK = 256  # crops per forward pass: activations stay in cache (4096 took 3-4x the CPU time, mostly page faults)


class DigitNet(nn.Module):
    """Crops float [M, 1, 28, 28] in [0, 1] -> logits float [M, 11] (digits 0-9, then GARBAGE)."""

    def __init__(self) -> None:
        super().__init__()

        def block(cin: int, cout: int) -> list[nn.Module]:
            return [nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(), nn.MaxPool2d(2)]

        self.layers = nn.Sequential(
            *block(1, 16), *block(16, 32), *block(32, 64), nn.Flatten(),
            nn.Linear(64 * 3 * 3, 128), nn.ReLU(), nn.Dropout(0.3), nn.Linear(128, CLASSES),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x.contiguous(memory_format=torch.channels_last))


class DigitEnsemble(nn.Module):
    """Several DigitNets fitted alike from different seeds; their class probabilities are averaged.

    forward: crops float [M, 1, 28, 28] -> log of the mean probability float [M, 11] (so that a softmax
    of it is the mean probability).
    """

    def __init__(self, size: int) -> None:
        super().__init__()
        self.nets = nn.ModuleList(DigitNet() for _ in range(size))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.stack([F.softmax(net(x), dim=1) for net in self.nets]).mean(dim=0).log()


@dataclass(frozen=True)
class Reading:
    """What the recogniser read in one image: boxes float [k, 4] pixel xyxy, probs float [k, 11]."""

    boxes: np.ndarray
    probs: np.ndarray


@dataclass(frozen=True)
class ReadSettings:
    """When an object counts as a readable digit.

    not_digit: probability of GARBAGE from which it is not a digit.
    min_confidence: probability its best digit class needs among the digit classes (renormalised).
    """

    not_digit: float = 0.99
    min_confidence: float = 0.3

    def readable(self, probs: np.ndarray) -> np.ndarray:
        """bool [k] for probs float [k, 11]."""
        digit = probs[:, :GARBAGE]
        best = digit.max(axis=1) / np.maximum(digit.sum(axis=1), 1e-12)
        return (probs[:, GARBAGE] < self.not_digit) & (best >= self.min_confidence)


CLEAR = ReadSettings(not_digit=0.5, min_confidence=0.5)  # a clear digit: a part that needs no joining, a join to accept


class Recogniser:
    """Reads digits: find candidates, classify their crops, join fragments that read as one digit.

    join_gap / max_side: pixels between two parts that may be joined, and the longest side their union
    may have (about a fifth of a digit, and a little more than a digit).
    """

    def __init__(self, net: DigitEnsemble, detect: DetectSettings, join_gap: float, max_side: float) -> None:
        self.net = net.eval()
        self.detect = detect
        self.join_gap = join_gap
        self.max_side = max_side

    @torch.inference_mode()
    def classify(self, patches: torch.Tensor) -> np.ndarray:
        """Class probabilities float [M, 11] of crops float [M, 1, 28, 28]."""
        if len(patches) == 0:
            return np.zeros((0, CLASSES), dtype=np.float32)
        return torch.cat([F.softmax(self.net(part), dim=1) for part in patches.split(CHUNK)]).numpy()

    def read(self, images: np.ndarray) -> list[Reading]:
        """Readings of images float32 [N, H, W] in [0, 1], one per image."""
        out: list[Reading] = []
        for start in range(0, len(images), BATCH):
            batch = images[start : start + BATCH]
            found = find(batch, self.detect)
            probs = self.classify(crops(batch, found))
            found, probs = self.join_fragments(batch, found, probs)
            order = np.argsort(found.image, kind="stable")
            bounds = np.searchsorted(found.image[order], np.arange(len(batch) + 1))
            out += [Reading(found.boxes[order[a:b]], probs[order[a:b]]) for a, b in zip(bounds[:-1], bounds[1:])]
        return out

    def join_fragments(self, images: np.ndarray, found: Found, probs: np.ndarray) -> tuple[Found, np.ndarray]:
        """Join touching pairs where a part is unreadable but together they read as one digit (greedy, best first).

        Returns the candidates after joining and their probabilities float [M', 11].
        """
        pairs = self._fragment_pairs(found, probs)
        if len(pairs) == 0:
            return found, probs
        first, second = found.ids[pairs[:, 0]], found.ids[pairs[:, 1]]
        union = np.concatenate([np.minimum(found.boxes[pairs[:, 0], :2], found.boxes[pairs[:, 1], :2]),
                                np.maximum(found.boxes[pairs[:, 0], 2:], found.boxes[pairs[:, 1], 2:])], axis=1)
        pair_probs = self.classify(crops(images, Found(found.label_map, found.image[pairs[:, 0]], first, union), second))
        good = np.flatnonzero(CLEAR.readable(pair_probs))
        owner = np.arange(1, found.label_map.max() + 1)
        joined_probs: dict[int, np.ndarray] = {}
        for k in good[np.argsort(-pair_probs[good, :GARBAGE].max(axis=1))]:
            a, b = int(first[k]), int(second[k])
            if owner[a - 1] == a and owner[b - 1] == b and a not in joined_probs and b not in joined_probs:
                owner[b - 1] = a
                joined_probs[a] = pair_probs[k]
        joined = merge(found, owner)
        out = probs[np.searchsorted(found.ids, joined.ids)]
        for a, p in joined_probs.items():
            out[np.searchsorted(joined.ids, a)] = p
        return joined, out

    def _fragment_pairs(self, found: Found, probs: np.ndarray) -> np.ndarray:
        """int [P, 2] candidate index pairs in one image, at most join_gap apart, small enough together,
        at least one of them unreadable."""
        weak = ~CLEAR.readable(probs)
        pairs = []
        for i in np.flatnonzero(weak):
            same = np.flatnonzero((found.image == found.image[i]) & (np.arange(len(found.ids)) != i))
            if len(same) == 0:
                continue
            near = same[box_gaps(found.boxes[i][None], found.boxes[same])[0] <= self.join_gap]
            for j in near:
                lo = np.minimum(found.boxes[i, :2], found.boxes[j, :2])
                hi = np.maximum(found.boxes[i, 2:], found.boxes[j, 2:])
                if (hi - lo).max() <= self.max_side:
                    pairs.append((min(i, j), max(i, j)))
        return np.unique(np.array(pairs, dtype=np.int64).reshape(-1, 2), axis=0)
