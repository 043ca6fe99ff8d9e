"""S-Acc with its 95% Wilson score interval, failure counts per rule, the JSON report and the verdict grid."""

from __future__ import annotations

import dataclasses
import json
import math
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

from scenegen.manifest import write_text_atomic
from scenegen.check.judge import Verdict
from scenegen.preview import annotate, save_grid

Z95 = 1.959963984540054  # two-sided 95% normal quantile
PASS_COLOR, FAIL_COLOR = (0, 200, 0), (230, 0, 0)
FRAME = 3  # pixels of the pass/fail frame around each tile


@dataclass(frozen=True)
class Summary:
    """n images, how many passed, S-Acc = passed / n, its 95% Wilson interval, failures per rule."""

    n: int
    passed: int
    s_acc: float
    ci95: tuple[float, float]
    reasons: dict[str, int]


def wilson_interval(passed: int, n: int, z: float = Z95) -> tuple[float, float]:
    """Wilson score interval of a binomial proportion (stays inside [0, 1], sensible at 0 and n)."""
    if n == 0:
        return (0.0, 1.0)
    p = passed / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return (max(0.0, centre - half), min(1.0, centre + half))


def summarize(verdicts: Sequence[Verdict]) -> Summary:
    """S-Acc and failure counts of a list of verdicts."""
    n = len(verdicts)
    passed = sum(v.ok for v in verdicts)
    reasons = Counter(v.rule for v in verdicts if not v.ok)
    return Summary(n, passed, passed / n if n else 0.0, wilson_interval(passed, n), dict(reasons.most_common()))


def format_summary(dataset: str, summary: Summary) -> list[str]:
    """Printable lines: S-Acc with interval, then one line per failure reason."""
    lo, hi = summary.ci95
    lines = [f"{dataset}: S-Acc {summary.s_acc:.3f} (95% Wilson CI {lo:.3f}-{hi:.3f}), {summary.passed} of {summary.n} images pass"]
    lines += [f"  {count:6d}  {rule}" for rule, count in summary.reasons.items()]
    return lines


def report(dataset: str, verdicts: Sequence[Verdict]) -> dict[str, Any]:
    """The JSON report: dataset, n, passed, s_acc, ci95, reasons, and every verdict with its objects (all their fields)."""
    s = summarize(verdicts)
    return {
        "dataset": dataset, "n": s.n, "passed": s.passed, "s_acc": s.s_acc, "ci95": list(s.ci95), "reasons": s.reasons,
        "verdicts": [
            {"index": i, "ok": v.ok, "reason": v.reason, "objects": [dataclasses.asdict(o) for o in v.objects]}
            for i, v in enumerate(verdicts)
        ],
    }


def write_json(path: Path, value: dict[str, Any]) -> Path:
    """Write JSON atomically (temp file, then rename)."""
    return write_text_atomic(path, json.dumps(value, indent=1) + "\n")


def verdict_grid(path: Path, images: np.ndarray, verdicts: Sequence[Verdict], limit: int = 64,
                 names: Sequence[str] | None = None) -> Path:
    """The first `limit` images float [N, H, W] or [N, H, W, 3] with detected boxes and classes drawn
    (names[label] when given; '?' unreadable), framed green (pass) or red (fail), as one PNG."""
    tiles = []
    for image, verdict in zip(images[:limit], verdicts[:limit]):
        boxes = torch.tensor(np.array([o.box for o in verdict.objects], dtype=np.float32)).reshape(-1, 4)
        labels = ["?" if o.label < 0 else names[o.label] if names else str(o.label) for o in verdict.objects]
        color = PASS_COLOR if verdict.ok else FAIL_COLOR
        pixels = torch.from_numpy(np.ascontiguousarray(image))
        tile = annotate(pixels[None] if pixels.ndim == 2 else pixels.permute(2, 0, 1), boxes, labels, color="yellow")
        frame = torch.tensor(color, dtype=torch.uint8)[:, None, None]
        tile[:, :FRAME], tile[:, -FRAME:], tile[:, :, :FRAME], tile[:, :, -FRAME:] = frame, frame, frame, frame
        tiles.append(tile)
    return save_grid(path, tiles)
