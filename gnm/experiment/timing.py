"""Wall-clock time of each experiment stage, kept in OUT/timing.json so a table can say what it cost.

A stage ("data/mnist10", "train/gnm-mnist10", "eval/gnm-mnist10") adds the seconds of every call that
worked on it: a stage skipped because it was done adds almost nothing, a resumed run adds its rest.
"""

from __future__ import annotations

import json
import os
import platform
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import torch

from scenegen.manifest import write_text_atomic


def hardware(device: torch.device) -> str:
    """One line naming the machine a stage ran on, e.g. '2 CPU cores (x86_64), 2 torch threads, cpu'."""
    where = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    return (f"{os.cpu_count()} CPU cores ({platform.machine()}), {torch.get_num_threads()} torch threads, "
            f"{where}, torch {torch.__version__}")


class StageTimes:
    """Seconds per stage name, summed over calls, saved atomically to `path` after each stage."""

    def __init__(self, path: Path, device: torch.device) -> None:
        self.path = path
        saved = json.loads(path.read_text()) if path.is_file() else {}
        self.seconds: dict[str, float] = saved.get("seconds", {})
        self.hardware = hardware(device)

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        """Time the block and add it to `name` (also when it fails: that time was spent)."""
        start = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[name] = self.seconds.get(name, 0.0) + time.perf_counter() - start
            write_text_atomic(self.path, json.dumps({"hardware": self.hardware, "seconds": self.seconds}, indent=2) + "\n")

    def minutes(self, name: str) -> float:
        """Minutes spent on the stage so far (0 when it never ran)."""
        return self.seconds.get(name, 0.0) / 60
