"""How well a fitted checker reads scenes with known ground truth (the fit's held-out scenes)."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torchvision.ops import box_iou

from scenegen.check.arrow.checker import ArrowChecker
from scenegen.check.arrow.trainset import Scenes
from scenegen.datasets.arrow_room.sampler import ARROW

MATCH_IOU = 0.5


def angle_deg(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Degrees between 2D vectors a and b, float [M, 2] each."""
    cos = (a * b).sum(1) / np.maximum(np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1), 1e-12)
    return np.degrees(np.arccos(np.clip(cos, -1, 1)))


def evaluate(checker: ArrowChecker, scenes: Scenes) -> dict[str, Any]:
    """Counts, per-object accuracies on matched objects (IoU >= MATCH_IOU), geometry errors and the
    pass rates of scenes whose ground truth obeys the rules (should be 1) and of the others (should be
    0), as a JSON-ready dict."""
    readings = checker.recogniser.read(scenes.images)
    hits: dict[str, list[float]] = {"shape": [], "color": [], "material": [], "direction_deg": [], "centre_px": []}
    exact = matched = found = 0
    for i, reading in enumerate(readings):
        rows = np.flatnonzero(scenes.scene == i)
        exact += len(reading.boxes) == len(rows)
        found += len(reading.boxes)
        if len(reading.boxes) == 0:
            continue
        iou = box_iou(torch.from_numpy(scenes.boxes[rows]), torch.from_numpy(reading.boxes)).numpy()
        for g, r in zip(*np.nonzero((iou >= MATCH_IOU) & (iou == iou.max(axis=1, keepdims=True)))):
            matched += 1
            row = rows[g]
            for key in ("shape", "color", "material"):
                hits[key].append(float(getattr(reading, key)[r].argmax() == getattr(scenes, key)[row]))
            hits["centre_px"].append(float(np.linalg.norm(reading.centre[r] - scenes.centre[row])))
            if scenes.shape[row] == ARROW:
                hits["direction_deg"].append(float(angle_deg(reading.direction[r][None], scenes.direction[row][None])[0]))
    passed = np.array([checker.judge(r).ok for r in readings])
    out: dict[str, Any] = {"scenes": len(readings), "count_exact": exact / len(readings), "recall": matched / len(scenes.scene),
                           "precision": matched / max(found, 1), "valid_scenes": int(scenes.valid.sum()),
                           "valid_pass": float(passed[scenes.valid].mean()) if scenes.valid.any() else None,
                           "broken_pass": float(passed[~scenes.valid].mean()) if (~scenes.valid).any() else None}
    for key in ("shape", "color", "material"):
        out[f"{key}_accuracy"] = float(np.mean(hits[key])) if hits[key] else 0.0
    for key in ("direction_deg", "centre_px"):
        values = np.asarray(hits[key])
        out[key] = {q: float(np.percentile(values, p)) for q, p in (("median", 50), ("p95", 95), ("max", 100))} if len(values) else {}
    return out
