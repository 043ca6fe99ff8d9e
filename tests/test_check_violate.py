"""`--violate`: every violation breaks exactly its rule on the ground truth, through the library and the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from scenegen.check.violate import get_violation, violating_scene, violations
from scenegen.cli import app
from scenegen.datasets import get_spec
from scenegen.datasets.base import Layout
from scenegen.datasets.mnist10 import Mnist10Config
from scenegen.datasets.mnist4 import Mnist4Config
from scenegen.datasets.mnist4_10 import Mnist4_10Config
from scenegen.errors import UserError
from scenegen.shards import read_arrays

CONFIGS = [Mnist4Config(), Mnist10Config(), Mnist10Config(swap_mode="shared"), Mnist4_10Config()]
CASES = [(cfg, name) for cfg in CONFIGS for name in violations(cfg)]


@pytest.fixture(scope="module")
def pool():
    return get_spec("mnist4").prepare(Mnist4Config(), "train", {"digits": "bundled"}).pool()


@pytest.mark.parametrize("cfg,name", CASES, ids=[f"{c.dataset}-{getattr(c, 'swap_mode', '')}-{n}" for c, n in CASES])
def test_violation_breaks_exactly_its_rule(cfg, name, pool) -> None:
    spec, violation = get_spec(cfg.dataset), get_violation(cfg, name)
    rules = dict(spec.rules)
    rng = np.random.default_rng(7)
    for _ in range(25):
        layout = Layout.of(violating_scene(cfg, pool, rng, name))
        reason = spec.first_violation(layout, cfg)
        assert reason is not None and reason.startswith(violation.rule + ":"), reason
        for kept in violation.keeps:
            assert rules[kept](layout, cfg) is None, (kept, rules[kept](layout, cfg))


def test_the_issue_s_violation_kinds_exist() -> None:
    assert {"class_order", "symmetry", "missing_digit", "extra_digit", "crowded_quadrant"} <= set(violations(Mnist4Config()))
    assert {"swapped_quadrants", "wrong_set", "duplicate_class", "shared_layout", "overlap"} <= set(violations(Mnist10Config()))
    assert "unshared_swap" not in violations(Mnist10Config())  # independent coins: nothing to unshare
    assert "unshared_swap" in violations(Mnist10Config(swap_mode="shared"))


def test_unknown_violation_lists_the_known_ones() -> None:
    with pytest.raises(UserError, match="choose one of: missing_digit, extra_digit"):
        get_violation(Mnist4Config(), "upside_down")


def test_make_violate_records_it_and_breaks_the_rule(tmp_path: Path) -> None:
    out = tmp_path / "sym"
    result = CliRunner().invoke(app, ["make", "mnist4", "--n", "30", "--split", "test", "--out", str(out), "--digits", "bundled",
                                      "--workers", "1", "--violate", "symmetry"])
    assert result.exit_code == 0, result.output
    manifest = json.loads((out / "test" / "manifest.json").read_text())
    assert manifest["provenance"]["violate"] == "symmetry"
    arrays = read_arrays(out / "test" / "shard-00000.h5")
    for boxes, labels in zip(arrays["boxes"], arrays["labels"]):
        reason = get_spec("mnist4").first_violation(Layout(boxes[:4], labels[:4], {}), Mnist4Config())
        assert reason.startswith("symmetry:")


def test_plain_make_records_no_violation(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["make", "mnist4", "--n", "5", "--out", str(tmp_path), "--digits", "bundled", "--workers", "1"])
    assert result.exit_code == 0, result.output
    assert "violate" not in json.loads((tmp_path / "train" / "manifest.json").read_text())["provenance"]


@pytest.mark.parametrize("args,message", [
    (["make", "mnist4", "--violate", "nope"], "choose one of"),
    (["make", "arrow-room", "--violate", "class_order"], "--violate class_order: choose a kind"),  # Arrow Room's own kinds
])
def test_make_violate_bad_names(tmp_path: Path, args, message) -> None:
    result = CliRunner().invoke(app, [*args, "--n", "2", "--out", str(tmp_path), "--digits", "bundled", "--workers", "1"])
    assert result.exit_code != 0
    assert message in str(result.exception)
