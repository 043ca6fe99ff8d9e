"""Calibration: pass rates of the checker on real test scenes and on every kind of rule-breaking scene.

Targets (per dataset): real test scenes pass >= 0.99, every violation passes <= 0.02. Scenes are drawn
in memory from test digits (disjoint from the train digits the recogniser was fitted on), the
violations through the same `--violate` path as `scenegen make`.
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path
from typing import Any

import numpy as np

from scenegen.check.judge import RuleChecker
from scenegen.check.report import summarize
from scenegen.check.violate import violations
from scenegen.seeds import shard_rng

REAL_MIN, VIOLATION_MAX = 0.99, 0.02
REAL = "real"


def calibrate(dataset: str, n: int = 500, config: dict[str, Any] | None = None, digits: str = "auto",
              cache: Path | None = None, seed: int = 0, progress: bool = True) -> dict[str, Any]:
    """Check n real test scenes and n scenes of each violation; returns the table as a JSON-ready dict."""
    checker = RuleChecker.for_dataset(dataset, config, cache=cache, digits=digits, progress=progress)
    cfg, spec = checker.cfg, checker.spec
    resources = spec.prepare(cfg, "test", {"digits": digits})
    start = time.perf_counter()
    rows = []
    kinds = [(REAL, None)] + [(name, v.rule) for name, v in violations(cfg).items()]
    for k, (name, rule) in enumerate(kinds):
        res = resources if name == REAL else dataclasses.replace(resources, violate=name)
        scenes = spec.make_shard(cfg, "test", shard_rng(seed, "calibrate", k), n, res)
        summary = summarize(checker.check(np.stack([s.image[:, :, 0] for s in scenes])))
        target = summary.s_acc >= REAL_MIN if name == REAL else summary.s_acc <= VIOLATION_MAX
        rows.append({"scenes": name, "breaks": rule, "n": summary.n, "passed": summary.passed, "pass_rate": summary.s_acc,
                     "ci95": list(summary.ci95), "meets_target": bool(target), "reasons": summary.reasons})
    return {
        "dataset": dataset, "config": cfg.to_dict(), "source": resources.source.describe(), "n": n, "seed": seed,
        "targets": {"real_min": REAL_MIN, "violation_max": VIOLATION_MAX},
        "check_seconds": round(time.perf_counter() - start, 1), "meets_all": all(r["meets_target"] for r in rows), "rows": rows,
    }


def format_table(result: dict[str, Any]) -> list[str]:
    """Printable lines: one row per kind of scene with its n, pass rate and whether it meets its target
    (result["targets"]); then the kinds that had no scenes (result["missing"], if any)."""
    targets = result["targets"]
    lines = [f"{result['dataset']}: up to {result['n']} test scenes per row ({result['source']})",
             f"  {'scenes':<20} {'breaks':<40} {'n':>5} {'pass rate':>9}  95% CI         target"]
    for r in result["rows"]:
        target = f">= {targets['real_min']}" if r["scenes"] == REAL else f"<= {targets['violation_max']}"
        mark = "ok" if r["meets_target"] else "MISSED"
        lo, hi = r["ci95"]
        lines.append(f"  {r['scenes']:<20} {r['breaks'] or '-':<40} {r['n']:5d} {r['pass_rate']:9.3f}  {lo:.3f}-{hi:.3f}  {target} {mark}")
    if result.get("missing"):
        lines.append(f"no scenes for: {', '.join(result['missing'])}")
    lines.append("all targets met" if result["meets_all"] else "some targets missed")
    return lines
