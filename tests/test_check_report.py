"""S-Acc, its Wilson interval, the JSON report, the verdict grid, and the judge's decision on given readings."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from scipy.stats import binomtest

from scenegen.check import DetectedObject, JudgeSettings, RuleChecker, Verdict, summarize
from scenegen.check.judge import rule_depth
from scenegen.check.recogniser import CLASSES, GARBAGE, Reading
from scenegen.check.report import report, verdict_grid, wilson_interval, write_json
from scenegen.datasets import get_spec
from scenegen.datasets.mnist4 import Mnist4Config

BOX = (10.0, 10.0, 22.0, 26.0)


@pytest.mark.parametrize("passed,n", [(0, 10), (10, 10), (246, 250), (1, 3), (500, 1000)])
def test_wilson_interval_matches_scipy(passed, n) -> None:
    expected = binomtest(passed, n).proportion_ci(confidence_level=0.95, method="wilson")
    np.testing.assert_allclose(wilson_interval(passed, n), (expected.low, expected.high), atol=1e-9)


def verdicts() -> list[Verdict]:
    obj = DetectedObject(BOX, 3, 0.99)
    return [Verdict(True, None, [obj]), Verdict(False, "count: 3 digits, expected 4", [obj]),
            Verdict(False, "count: 5 digits, expected 4", []), Verdict(False, "variant: as mnist4, class_order: classes ...", [])]


def test_summarize_counts_failures_per_rule() -> None:
    s = summarize(verdicts())
    assert (s.n, s.passed, s.s_acc) == (4, 1, 0.25)
    assert s.reasons == {"count": 2, "variant: as mnist4, class_order": 1}
    assert s.ci95 == wilson_interval(1, 4)


def test_json_report_has_the_issue_s_fields(tmp_path: Path) -> None:
    path = write_json(tmp_path / "r.json", report("mnist4", verdicts()))
    data = json.loads(path.read_text())
    assert {"dataset", "n", "passed", "s_acc", "ci95", "reasons", "verdicts"} <= set(data)
    assert data["verdicts"][1] == {"index": 1, "ok": False, "reason": "count: 3 digits, expected 4",
                                   "objects": [{"box": list(BOX), "label": 3, "confidence": 0.99}]}


def test_verdict_grid_frames_pass_green_and_fail_red(tmp_path: Path) -> None:
    images = np.zeros((2, 32, 32), np.float32)
    path = verdict_grid(tmp_path / "g.png", images, verdicts()[:2])
    grid = np.asarray(Image.open(path).convert("RGB"))
    assert grid[3, 3, 1] > 150 and grid[3, 3, 0] < 50  # first tile's frame: green
    assert grid[3, 2 + 64 + 2 + 3, 0] > 150  # second tile's frame: red


# ---- the judge on hand-made readings (no recogniser needed) ----

CENTRES = [(20, 30), (108, 30), (108, 98), (20, 98)]


def reading(probs: list[dict[int, float]], centres: list[tuple[int, int]] = CENTRES) -> Reading:
    p = np.zeros((len(probs), CLASSES))
    for row, values in zip(p, probs):
        for c, v in values.items():
            row[c] = v
    boxes = np.array([(x - 6, y - 8, x + 6, y + 8) for x, y in centres[: len(probs)]], dtype=np.float64)
    return Reading(boxes, p)


@pytest.fixture
def judge() -> RuleChecker:
    return RuleChecker(get_spec("mnist4"), Mnist4Config(), recogniser=None, settings=JudgeSettings(plausible=0.01))


def test_clear_valid_reading_passes(judge) -> None:
    verdict = judge.judge(reading([{2: 1.0}, {3: 1.0}, {4: 1.0}, {5: 1.0}]))
    assert verdict.ok and [o.label for o in verdict.objects] == [2, 3, 4, 5]


def test_not_a_digit_is_unrecognisable(judge) -> None:
    verdict = judge.judge(reading([{2: 1.0}, {GARBAGE: 0.995, 3: 0.005}, {4: 1.0}, {5: 1.0}]))
    assert not verdict.ok and verdict.rule == "unrecognisable"
    assert [o.label for o in verdict.objects] == [2, -1, 4, 5]


def test_low_confidence_is_unrecognisable(judge) -> None:
    verdict = judge.judge(reading([{2: 1.0}, {3: 0.2, 8: 0.2, 5: 0.2, 6: 0.2, GARBAGE: 0.2}, {4: 1.0}, {5: 1.0}]))
    assert verdict.rule == "unrecognisable"


def test_ambiguous_digit_gets_the_benefit_of_the_doubt(judge) -> None:
    verdict = judge.judge(reading([{2: 1.0}, {8: 0.7, 3: 0.3}, {4: 1.0}, {5: 1.0}]))
    assert verdict.ok and verdict.objects[1].label == 3 and verdict.objects[1].confidence == pytest.approx(0.3)


def test_clearly_wrong_digit_fails_with_the_rule(judge) -> None:
    verdict = judge.judge(reading([{2: 1.0}, {8: 0.999, 3: 0.001}, {4: 1.0}, {5: 1.0}]))
    assert not verdict.ok and verdict.rule == "class_order"
    assert verdict.objects[1].label == 8


def test_missing_digit_fails_count(judge) -> None:
    assert judge.judge(reading([{2: 1.0}, {3: 1.0}, {4: 1.0}])).rule == "count"


def test_failure_reason_comes_from_the_reading_that_gets_furthest(judge) -> None:
    """Read at its best the 3 is an 8 (class_order fails); read as the plausible 3 every class is right,
    and the rule the scene really breaks, symmetry (the 5 sits 10 px too low), is the reason."""
    asymmetric = [CENTRES[0], CENTRES[1], (108, 108), CENTRES[3]]
    verdict = judge.judge(reading([{2: 1.0}, {8: 0.7, 3: 0.3}, {4: 1.0}, {5: 1.0}], asymmetric))
    assert not verdict.ok and verdict.rule == "symmetry"
    assert [o.label for o in verdict.objects] == [2, 3, 4, 5]


@pytest.mark.parametrize("dataset,reason,depth", [
    ("mnist4", "count: 3 digits, expected 4", (0,)),
    ("mnist10", "shared_layout: 0 and 8 differ by 5.0 px", (4,)),
    ("mnist4-10", "count: 5 digits, expected 4 or 10", (0,)),
    ("mnist4-10", "variant: as mnist10, classes: missing classes [2], repeated classes [9]", (1, 1)),
    ("mnist4-10", "variant: as mnist4, symmetry: the 3 is 4.0 px off", (1, 3)),
])
def test_rule_depth_follows_the_rule_order_into_variants(dataset, reason, depth) -> None:
    assert rule_depth(get_spec(dataset), reason) == depth
