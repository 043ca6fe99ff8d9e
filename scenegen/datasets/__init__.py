"""Dataset registry: name -> DatasetSpec. Modules load on first use (Arrow Room pulls in more)."""

from __future__ import annotations

import importlib

from scenegen.datasets.base import DatasetSpec
from scenegen.errors import UserError

MODULES = {
    "mnist4": "scenegen.datasets.mnist4",
    "mnist10": "scenegen.datasets.mnist10",
    "mnist4-10": "scenegen.datasets.mnist4_10",
    "arrow-room": "scenegen.datasets.arrow_room",
}


def get_spec(name: str) -> DatasetSpec:
    """The spec of a dataset by its name; a UserError lists the known names."""
    if name not in MODULES:
        raise UserError(f"unknown dataset {name!r}; choose one of: {', '.join(MODULES)}")
    return importlib.import_module(MODULES[name]).SPEC
