"""The one table of annealed loss coefficients: each entry is linear in the training step.

An entry (start_value, end_value, start_step, end_step) holds start_value up to start_step,
moves linearly to end_value at end_step and holds it afterwards. An entry with
start_step == end_step is a switch: start_value before that step, end_value from it on
(e.g. alpha_force 0.9 for steps 0..499, then -1 = off).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass


@dataclass(frozen=True)
class ScheduleEntry:
    """One annealed coefficient: linear from (start_step, start_value) to (end_step, end_value)."""

    start_value: float
    end_value: float
    start_step: int
    end_step: int

    def __post_init__(self) -> None:
        if not 0 <= self.start_step <= self.end_step:
            raise ValueError(f"need 0 <= start_step <= end_step, got {self.start_step}, {self.end_step}")

    def at(self, step: int) -> float:
        """The coefficient's value after `step` optimiser steps."""
        if step >= self.end_step:
            return self.end_value
        if step <= self.start_step:
            return self.start_value
        frac = (step - self.start_step) / (self.end_step - self.start_step)
        return self.start_value + frac * (self.end_value - self.start_value)


def coefficients(table: Mapping[str, ScheduleEntry], step: int) -> dict[str, float]:
    """Every coefficient of the table at `step`, by name."""
    return {name: entry.at(step) for name, entry in table.items()}
