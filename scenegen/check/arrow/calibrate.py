"""Calibration of the Arrow Room checker on rendered splits: real test scenes and every kind of rule-breaking scene.

Rendering is slow, so the scenes are rendered once with `scenegen make` and read here: `test` is a split
folder or a folder of split folders; each split's manifest says what it holds (`provenance.violate`:
the kind or rule it breaks; none: real scenes). Targets: real >= 0.98, every violation <= 0.02.
"""

from __future__ import annotations

import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np

from scenegen.check.arrow.checker import ArrowChecker
from scenegen.check.calibrate import REAL, VIOLATION_MAX
from scenegen.check.report import summarize
from scenegen.data import ShardDataset, split_folders
from scenegen.datasets.arrow_room import RULES, VIOLATIONS
from scenegen.errors import UserError
from scenegen.manifest import load_manifest
from scenegen.shards import read_arrays

REAL_MIN = 0.98


def labelled_splits(test: Path) -> dict[str, list[Path]]:
    """Split folders under test by what they hold: REAL, or the violation kind / rule they were made with."""
    groups: dict[str, list[Path]] = defaultdict(list)
    for folder in split_folders(Path(test)):
        manifest = load_manifest(folder)
        if manifest is None or manifest.get("dataset") != "arrow-room":
            raise UserError(f"{folder}: expected an arrow-room split with its manifest.json")
        if manifest.get("split") == "train":
            continue  # the recogniser's own scenes are no test
        groups[manifest.get("provenance", {}).get("violate") or REAL].append(folder)
    if not groups:
        raise UserError(f"{test} holds no arrow-room test splits; render some with `scenegen make arrow-room --split test`")
    return groups


def first_images(folders: list[Path], n: int) -> np.ndarray:
    """The first n images uint8 [n', H, W, 3] of the folders, in order."""
    parts, total = [], 0
    for folder in folders:
        for path in ShardDataset(folder).files:
            if total >= n:
                break
            images = read_arrays(path)["images"][: n - total]
            parts.append(images)
            total += len(images)
    return np.concatenate(parts)


def calibrate(test: Path, train: Path | None = None, n: int = 500, cache: Path | None = None,
              progress: bool = True) -> dict[str, Any]:
    """Check up to n scenes of every split under test; returns the table as a JSON-ready dict (as
    scenegen.check.calibrate's, plus per-row split folders and the violation kinds no split holds)."""
    groups = labelled_splits(test)
    configs = [ShardDataset(folder).config for folders in groups.values() for folder in folders]
    if any(c != configs[0] for c in configs):
        raise UserError(f"the splits under {test} were made with different configs; calibrate one config at a time")
    config = configs[0]
    checker = ArrowChecker.for_dataset(config, train=train, cache=cache, progress=progress)
    start = time.perf_counter()
    rows = []
    order = [REAL, *VIOLATIONS, *dict(RULES)]
    for name in sorted(groups, key=lambda g: order.index(g) if g in order else len(order)):
        summary = summarize(checker.check(first_images(groups[name], n)))
        target = summary.s_acc >= REAL_MIN if name == REAL else summary.s_acc <= VIOLATION_MAX
        rows.append({"scenes": name, "breaks": None if name == REAL else VIOLATIONS.get(name, name), "n": summary.n,
                     "passed": summary.passed, "pass_rate": summary.s_acc, "ci95": list(summary.ci95),
                     "meets_target": bool(target), "reasons": summary.reasons, "splits": [str(f) for f in groups[name]]})
    missing = [REAL] * (REAL not in groups) + [kind for kind, rule in VIOLATIONS.items() if kind not in groups and rule not in groups]
    return {
        "dataset": "arrow-room", "config": checker.cfg.to_dict(), "source": f"rendered splits under {test}", "n": n,
        "targets": {"real_min": REAL_MIN, "violation_max": VIOLATION_MAX}, "check_seconds": round(time.perf_counter() - start, 1),
        "meets_all": not missing and all(r["meets_target"] for r in rows), "missing": missing, "rows": rows,
    }
