"""The schedule table: linear entries, switches, and the release values in the recipes."""

from __future__ import annotations

from pathlib import Path

import pytest

from gnm.config import resolve_run_config
from gnm.train.schedules import ScheduleEntry, coefficients

RECIPES = Path(__file__).resolve().parents[1] / "recipes"


def test_linear_entry_holds_its_ends_and_interpolates():
    tau = ScheduleEntry(1.0, 0.5, 1000, 20000)
    assert [tau.at(s) for s in (0, 999, 1000)] == [1.0, 1.0, 1.0]
    assert tau.at(10500) == pytest.approx(0.75)
    assert [tau.at(s) for s in (20000, 20001, 10**7)] == [0.5, 0.5, 0.5]


def test_equal_steps_make_a_switch():
    alpha = ScheduleEntry(0.9, -1.0, 500, 500)
    assert [alpha.at(s) for s in (0, 499, 500, 501)] == [0.9, 0.9, -1.0, -1.0]


def test_bad_step_range_is_rejected():
    with pytest.raises(ValueError):
        ScheduleEntry(1.0, 0.0, 10, 5)


def test_release_values_at_their_boundaries():
    mnist = resolve_run_config(RECIPES / "gnm-mnist4.yaml").schedule
    arrow = resolve_run_config(RECIPES / "gnm-arrow.yaml").schedule
    assert coefficients(mnist, 0) == {"rho": 0.1, "tau": 1.0, "beta_g": 0.0, "beta_b": 1.0, "alpha_force": -1.0}
    assert coefficients(mnist, 4000)["rho"] == pytest.approx(1e-3)
    assert coefficients(mnist, 2000)["rho"] == pytest.approx(0.0505)
    assert coefficients(mnist, 1000)["tau"] == 1.0 and coefficients(mnist, 20000)["tau"] == 0.5
    assert coefficients(mnist, 50000)["beta_g"] == pytest.approx(0.5)
    assert coefficients(mnist, 100000)["beta_g"] == 1.0
    assert [coefficients(arrow, s)["beta_b"] for s in (0, 25000, 50000, 60000)] == pytest.approx([50, 25.5, 1, 1])
    assert [coefficients(arrow, s)["alpha_force"] for s in (0, 499, 500)] == [0.9, 0.9, -1.0]
