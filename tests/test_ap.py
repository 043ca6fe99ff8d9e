"""Box AP (pycocotools' COCOeval behind our wrapper) against hand-computed values, with COCO's
101-point and VOC/SPACE's 11-point interpolation."""

from __future__ import annotations

import pytest
import torch

from gnm.eval.ap import (
    Detections,
    average_precision,
    box_ap,
    ground_truth_boxes,
    present_detections,
    target_boxes,
)


def dets(*rows: tuple[float, float, float, float, float]) -> Detections:
    """Detections from (x0, y0, x1, y1, score) rows."""
    t = torch.tensor(rows, dtype=torch.float64).reshape(-1, 5)
    return Detections(t[:, :4], t[:, 4])


def boxes(*rows: tuple[float, float, float, float]) -> torch.Tensor:
    return torch.tensor(rows, dtype=torch.float32).reshape(-1, 4)


# Two images, three ground-truth boxes. Ranked detections: 0.9 exact (TP), 0.8 on nothing (FP),
# 0.7 exact in image B (TP), 0.6 with IoU 100/150 = 0.667 (TP at 0.5, FP at 0.75).
GT = [boxes((0, 0, 10, 10), (20, 20, 30, 30)), boxes((0, 0, 10, 10))]
DETS = [dets((0, 0, 10, 10, 0.9), (50, 50, 60, 60, 0.8), (20, 20, 30, 35, 0.6)), dets((0, 0, 10, 10, 0.7))]


def test_hand_computed_example():
    # IoU 0.5: precision envelope 1 up to recall 1/3 (34 of 101 points), then 0.75 up to recall 1.
    assert average_precision(DETS, GT, 0.5) == pytest.approx((34 * 1 + 67 * 0.75) / 101)
    # 11 points: recall 0, .1, .2, .3 at 1; .4 ... 1 at 0.75.
    assert average_precision(DETS, GT, 0.5, recall_points=11) == pytest.approx((4 + 7 * 0.75) / 11)
    # IoU 0.75: envelope 1 up to recall 1/3, 2/3 up to recall 2/3 (33 points), nothing beyond.
    assert average_precision(DETS, GT, 0.75) == pytest.approx((34 + 33 * 2 / 3) / 101)
    summary = box_ap(DETS, GT)  # the keys name their interpolation
    assert summary["ap50"] == pytest.approx((34 * 1 + 67 * 0.75) / 101)
    assert summary["ap50_11pt"] == pytest.approx((4 + 7 * 0.75) / 11)
    assert summary["ap75"] == pytest.approx((34 + 33 * 2 / 3) / 101)


def test_perfect_and_empty_detections():
    perfect = [Detections(g.double(), torch.ones(len(g), dtype=torch.float64)) for g in GT]
    assert box_ap(perfect, GT) == pytest.approx({"ap50": 1, "ap75": 1, "ap50_95": 1, "ap50_11pt": 1, "ap50_95_11pt": 1})
    assert average_precision([dets(), dets()], GT, 0.5) == 0.0
    with pytest.raises(ValueError):
        average_precision([dets()], [boxes()], 0.5)


def test_duplicates_are_false_positives_and_iou_half_counts():
    gt = [boxes((0, 0, 10, 20))]
    # exact match, then a duplicate of it (a false positive ranked after full recall)
    assert average_precision([dets((0, 0, 10, 20, 0.9), (0, 0, 10, 20, 0.8))], gt, 0.5) == pytest.approx(1)
    # IoU exactly 0.5 matches at threshold 0.5 ...
    assert average_precision([dets((0, 0, 10, 10, 0.9))], gt, 0.5) == pytest.approx(1)
    # ... but not at 0.55: then it is a false positive ranked before the exact box (precision 1/2)
    assert average_precision([dets((0, 0, 10, 10, 0.9), (0, 0, 10, 20, 0.8))], gt, 0.55) == pytest.approx(0.5)


def test_detection_takes_the_unmatched_box_of_highest_iou():
    gt = [boxes((0, 0, 10, 10), (4, 0, 14, 10))]
    # the first detection overlaps box 2 most (IoU 0.82 vs 0.67); the second then still finds box 1
    found = [dets((3, 0, 13, 10, 0.9), (0, 0, 10, 10, 0.8))]
    assert average_precision(found, gt, 0.6) == pytest.approx(1)


def test_ground_truth_padding_is_dropped_and_frames_are_preferred():
    target = {"boxes": boxes((1, 2, 3, 4), (0, 0, 0, 0)), "labels": torch.tensor([7, -1]), "num_objects": 1}
    padded = target_boxes(target)[None]
    assert [b.tolist() for b in ground_truth_boxes(padded, target["labels"][None])] == [[[1, 2, 3, 4]]]
    framed = {**target, "frames": boxes((0, 0, 8, 8), (0, 0, 0, 0))}
    assert target_boxes(framed)[0].tolist() == [0, 0, 8, 8]


def test_detections_are_present_cells_with_their_probability():
    cell_boxes = torch.arange(2 * 3 * 4, dtype=torch.float32).view(2, 3, 4)
    prob = torch.tensor([[0.9, 0.2, 0.6], [0.1, 0.5, 0.3]])
    found = present_detections(cell_boxes, prob)
    assert torch.equal(found[0].boxes, cell_boxes[0, [0, 2]]) and torch.equal(found[0].scores, prob[0, [0, 2]])
    assert len(found[1].boxes) == 0  # 0.5 is not above the threshold
