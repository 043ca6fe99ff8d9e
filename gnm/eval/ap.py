"""Box average precision of inferred object boxes against the shards' ground-truth boxes, by pycocotools.

A class-agnostic COCO bbox evaluation (COCOeval with useCats=0, area range 'all', at most 100
detections per image; a GNM scene has at most grid^2 = 16 cells). Our part is only the wrapper
that turns detections (pixel xyxy boxes with scores) and ground truth into COCO dicts (xywh
boxes, area, iscrowd 0) and reads COCOeval's precision table. Keys of `box_ap`:

  ap50, ap75, ap50_95          COCO's 101-point interpolated AP (recall thresholds 0:0.01:1)
  ap50_11pt, ap50_95_11pt      11-point interpolated AP (recall thresholds 0:0.1:1), what SPACE reported

ap50_95 averages the IoU thresholds 0.5:0.05:0.95. COCO's matching: detections ranked by score;
each takes the unmatched ground-truth box of highest IoU >= threshold; precision made monotone;
AP = mean interpolated precision at the recall thresholds (0 where the recall is never reached).
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval, Params

AP_KEYS = ("ap50", "ap75", "ap50_95", "ap50_11pt", "ap50_95_11pt")
COCO_IOUS = tuple(Params(iouType="bbox").iouThrs.tolist())  # COCOeval's own 0.5:0.05:0.95
PRES_THRESHOLD = 0.5
MAX_DETECTIONS = 100  # per image; GNM has at most 16 cells
_CATEGORY = 1  # class-agnostic: every box is one category


@dataclass(frozen=True)
class Detections:
    """One image's predicted boxes [D, 4] (pixel xyxy) with scores [D]."""

    boxes: torch.Tensor
    scores: torch.Tensor


def _quiet(call: Callable[[], Any]) -> None:
    """Run a pycocotools step without its progress prints."""
    with contextlib.redirect_stdout(io.StringIO()):
        call()


def _annotations(boxes: Sequence[torch.Tensor], scores: Sequence[torch.Tensor] | None) -> list[dict[str, Any]]:
    """COCO annotations (ids from 1: COCOeval reads id 0 as 'unmatched') of per-image xyxy boxes [G_i, 4]."""
    found = []
    for image, image_boxes in enumerate(boxes):
        for row, (x0, y0, x1, y1) in enumerate(image_boxes.double().tolist()):
            ann = {"id": len(found) + 1, "image_id": image + 1, "category_id": _CATEGORY,
                   "bbox": [x0, y0, x1 - x0, y1 - y0], "area": (x1 - x0) * (y1 - y0), "iscrowd": 0}
            if scores is not None:
                ann["score"] = float(scores[image][row])
            found.append(ann)
    return found


def _coco(n_images: int, annotations: list[dict[str, Any]]) -> COCO:
    """An in-memory COCO object over images 1..n_images."""
    coco = COCO()
    coco.dataset = {"images": [{"id": i + 1} for i in range(n_images)],
                    "categories": [{"id": _CATEGORY}], "annotations": annotations}
    _quiet(coco.createIndex)
    return coco


def _evaluated(detections: Sequence[Detections], ground_truth: Sequence[torch.Tensor],
               iou_thresholds: Sequence[float]) -> COCOeval:
    """COCOeval after `evaluate()` (the per-image matching at each IoU threshold)."""
    if sum(len(g) for g in ground_truth) == 0:
        raise ValueError("average precision needs at least one ground-truth box")
    truth = _coco(len(ground_truth), _annotations(ground_truth, None))
    found = _coco(len(ground_truth), _annotations([d.boxes for d in detections], [d.scores for d in detections]))
    evaluation = COCOeval(truth, found, iouType="bbox")
    params = evaluation.params
    params.useCats = 0
    params.areaRng, params.areaRngLbl = [params.areaRng[0]], ["all"]
    params.maxDets = [MAX_DETECTIONS]
    params.iouThrs = np.asarray(iou_thresholds, dtype=np.float64)
    _quiet(evaluation.evaluate)
    return evaluation


def _ap_per_threshold(evaluation: COCOeval, recall_points: int) -> np.ndarray:
    """AP [T] at each IoU threshold, interpolated at `recall_points` recall thresholds 0..1."""
    evaluation.params.recThrs = np.linspace(0.0, 1.0, recall_points)
    _quiet(evaluation.accumulate)
    return evaluation.eval["precision"][:, :, 0, 0, 0].mean(axis=1)  # [T, R, class, area, maxDets]


def average_precision(detections: Sequence[Detections], ground_truth: Sequence[torch.Tensor], threshold: float,
                      recall_points: int = 101) -> float:
    """AP at one IoU threshold over a set of images (ground_truth[i]: boxes [G_i, 4] pixel xyxy).

    recall_points=101 is COCO's interpolation, 11 the VOC/SPACE one. Needs >= 1 ground-truth box."""
    return float(_ap_per_threshold(_evaluated(detections, ground_truth, [threshold]), recall_points)[0])


def box_ap(detections: Sequence[Detections], ground_truth: Sequence[torch.Tensor]) -> dict[str, float]:
    """The AP_KEYS: AP@0.5, AP@0.75, AP@[.5:.95] (101-point) and the 11-point AP@0.5, AP@[.5:.95]."""
    evaluation = _evaluated(detections, ground_truth, COCO_IOUS)
    coco, eleven = _ap_per_threshold(evaluation, 101), _ap_per_threshold(evaluation, 11)
    at_50, at_75 = COCO_IOUS.index(0.5), COCO_IOUS.index(0.75)
    return {
        "ap50": float(coco[at_50]),
        "ap75": float(coco[at_75]),
        "ap50_95": float(coco.mean()),
        "ap50_11pt": float(eleven[at_50]),
        "ap50_95_11pt": float(eleven.mean()),
    }


def present_detections(boxes: torch.Tensor, pres_prob: torch.Tensor) -> list[Detections]:
    """Per image, the cells whose z_pres probability exceeds 0.5, scored by that probability.

    boxes [N, M, 4] pixel xyxy, pres_prob [N, M] (GNM.infer's)."""
    keep = pres_prob > PRES_THRESHOLD
    return [Detections(b[k], p[k]) for b, p, k in zip(boxes, pres_prob, keep)]


def target_boxes(target: dict[str, Any]) -> torch.Tensor:
    """One target's ground-truth boxes [K, 4] pixel xyxy, padding rows included (labels -1).

    MNIST shards carry the digit frame boxes ("frames"): the whole digit_size square a glimpse
    covers, which is what GNM's z_where infers; tight ink boxes (a "1" is ~4 px wide) would put
    IoU below 0.5 for a perfect glimpse. Other datasets use their (mask-tight) "boxes"."""
    return target.get("frames", target["boxes"]).float()


def ground_truth_boxes(boxes: torch.Tensor, labels: torch.Tensor) -> list[torch.Tensor]:
    """Each image's real boxes [G_i, 4] from padded boxes [N, K, 4] and labels [N, K] (-1 = padding)."""
    return [b[l >= 0] for b, l in zip(boxes, labels)]
