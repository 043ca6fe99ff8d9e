"""Typed dataset configurations: one frozen dataclass per dataset, JSON round trip, stable hash."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass
from typing import Any, ClassVar, TypeVar

C = TypeVar("C", bound="DatasetConfig")


@dataclass(frozen=True)
class DatasetConfig:
    """Parameters shared by every dataset. Subclasses add the values that shape their rules."""

    dataset: ClassVar[str] = ""
    image_size: int = 128

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON values (tuples as lists), so a saved config compares equal to a fresh one."""
        return json.loads(json.dumps({"dataset": self.dataset, **dataclasses.asdict(self)}))

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_dict(cls: type[C], values: dict[str, Any]) -> C:
        """Build from a dict (as saved in a manifest); unknown keys are an error."""
        values = {k: v for k, v in values.items() if k != "dataset"}
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"unknown {cls.dataset} config keys {unknown}; known keys: {sorted(known)}")
        return cls(**values)

    def config_hash(self) -> str:
        """Short stable hash of every value, used to key caches (e.g. the checker's recogniser)."""
        return hashlib.sha256(self.to_json().encode()).hexdigest()[:16]
