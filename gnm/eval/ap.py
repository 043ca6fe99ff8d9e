"""Box average precision of inferred object boxes against the shards' ground-truth boxes.

Our own COCO-style implementation (no pycocotools dependency), class-agnostic, following
COCOeval's rules: detections of all images ranked by score; in each image a detection
matches the unmatched ground-truth box of highest IoU >= threshold; precision made monotone
(envelope); AP = mean precision at the recall thresholds (COCO: 101 points 0:0.01:1).
SPACE reported 11-point interpolated AP (recall 0:0.1:1); both are returned.
tests/test_ap.py checks it against hand-computed values.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torchvision.ops import box_iou

from gnm.model import GNM

COCO_IOUS = tuple(round(0.5 + 0.05 * i, 2) for i in range(10))  # 0.5:0.05:0.95
PRES_THRESHOLD = 0.5


@dataclass(frozen=True)
class Detections:
    """One image's predicted boxes [D, 4] (pixel xyxy) with scores [D]."""

    boxes: torch.Tensor
    scores: torch.Tensor


def _match(det: Detections, gt: torch.Tensor, threshold: float) -> np.ndarray:
    """Per detection (in descending score order): 1 if it matches a ground-truth box, else 0."""
    order = torch.argsort(det.scores, descending=True, stable=True)
    hits = np.zeros(len(order))
    if not len(gt) or not len(order):
        return hits
    ious = box_iou(det.boxes[order].double(), gt.double()).numpy()
    taken = np.zeros(len(gt), dtype=bool)
    for d in range(len(order)):
        candidates = np.where(taken, -1.0, ious[d])
        best = int(np.argmax(candidates))
        if candidates[best] >= min(threshold, 1 - 1e-10):
            taken[best] = True
            hits[d] = 1
    return hits


def average_precision(
    detections: Sequence[Detections], ground_truth: Sequence[torch.Tensor], threshold: float, recall_points: int = 101
) -> float:
    """AP at one IoU threshold over a set of images (ground_truth[i]: boxes [G_i, 4]).

    recall_points=101 is COCO's interpolation, 11 the VOC/SPACE one. Needs >= 1 ground-truth box."""
    n_gt = sum(len(g) for g in ground_truth)
    if n_gt == 0:
        raise ValueError("average precision needs at least one ground-truth box")
    scores = np.concatenate([np.sort(d.scores.double().numpy())[::-1] for d in detections] or [np.zeros(0)])
    if not len(scores):
        return 0.0
    hits = np.concatenate([_match(d, g, threshold) for d, g in zip(detections, ground_truth)])
    order = np.argsort(-scores, kind="mergesort")
    tp = np.cumsum(hits[order])
    fp = np.cumsum(1 - hits[order])
    recall = tp / n_gt
    precision = np.maximum.accumulate((tp / (tp + fp + np.spacing(1)))[::-1])[::-1]
    thresholds = np.linspace(0.0, 1.0, recall_points)
    at = np.searchsorted(recall, thresholds, side="left")
    interpolated = np.where(at < len(precision), precision[np.minimum(at, len(precision) - 1)], 0.0)
    return float(interpolated.mean())


def box_ap(detections: Sequence[Detections], ground_truth: Sequence[torch.Tensor]) -> dict[str, float]:
    """COCO-style AP@0.5, AP@0.75 and AP@[.5:.95] (101-point), plus the 11-point AP@0.5 and AP@[.5:.95]."""
    coco = {t: average_precision(detections, ground_truth, t) for t in COCO_IOUS}
    voc = {t: average_precision(detections, ground_truth, t, recall_points=11) for t in COCO_IOUS}
    return {
        "ap50": coco[0.5],
        "ap75": coco[0.75],
        "ap50_95": float(np.mean(list(coco.values()))),
        "ap50_11pt": voc[0.5],
        "ap50_95_11pt": float(np.mean(list(voc.values()))),
    }


@torch.no_grad()
def infer_detections(model: GNM, images: torch.Tensor) -> list[Detections]:
    """Posterior boxes of cells whose z_pres probability exceeds 0.5, scored by that probability.

    images: [B, C, H, W] in [0, 1] on the model's device."""
    inferred = model.infer(images)
    boxes, prob = inferred.boxes.float().cpu(), inferred.pres_prob.float().cpu()
    return [Detections(b[p > PRES_THRESHOLD], p[p > PRES_THRESHOLD]) for b, p in zip(boxes, prob)]


def ground_truth_boxes(targets: Sequence[dict]) -> list[torch.Tensor]:
    """Each target's real boxes [num_objects, 4] (padding rows dropped).

    MNIST shards carry the digit frame boxes ("frames"): the whole digit_size square a glimpse
    covers, which is what GNM's z_where infers; tight ink boxes (a "1" is ~4 px wide) would put
    IoU below 0.5 for a perfect glimpse. Other datasets use their (mask-tight) "boxes"."""
    return [t.get("frames", t["boxes"])[t["labels"] >= 0].float() for t in targets]
