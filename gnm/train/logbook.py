"""What a run records (rank 0 only): TensorBoard scalars and images under RUN/tb,
every logged value as one JSON line in RUN/metrics.jsonl, and RUN/curves.png drawn from it."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path

import torch
from torch.utils.tensorboard import SummaryWriter

from gnm.train.images import new_figure, save_figure

METRICS_NAME = "metrics.jsonl"
CURVES_NAME = "curves.png"


class Logbook:
    """Scalars go to TensorBoard and metrics.jsonl under '<group>/<name>' tags."""

    def __init__(self, run_dir: Path) -> None:
        self.run_dir = run_dir
        self.writer = SummaryWriter(str(run_dir / "tb"))
        self.metrics = open(run_dir / METRICS_NAME, "a")

    def scalars(self, step: int, group: str, values: Mapping[str, float]) -> None:
        for name, value in values.items():
            self.writer.add_scalar(f"{group}/{name}", value, step)
        self.metrics.write(json.dumps({"step": step, "group": group, **values}) + "\n")
        self.metrics.flush()

    def image(self, step: int, tag: str, image: torch.Tensor) -> None:
        """One uint8 image [C, H, W]."""
        self.writer.add_image(tag, image, step)

    def close(self) -> None:
        self.writer.close()
        self.metrics.close()


def read_metrics(run_dir: Path, group: str) -> list[dict[str, float]]:
    """The logged records of one group, in order (a resumed run appends to the same file)."""
    path = run_dir / METRICS_NAME
    if not path.is_file():
        return []
    records = (json.loads(line) for line in path.read_text().splitlines() if line.strip())
    return [r for r in records if r.get("group") == group]


def plot_curves(run_dir: Path, group: str = "loss") -> Path | None:
    """Draw every term of `group` against the step (symlog scale) into RUN/curves.png; None without records."""
    records = read_metrics(run_dir, group)
    names = sorted({k for r in records for k in r} - {"step", "group"})
    if not names:
        return None
    fig, ax = new_figure(9, 5)
    for name in names:
        points = [(r["step"], r[name]) for r in records if name in r]
        ax.plot(*zip(*points), linewidth=1, label=name)
    ax.set_yscale("symlog", linthresh=1.0)
    ax.set_xlabel("step")
    ax.legend(fontsize=7, ncol=2, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return save_figure(fig, run_dir / CURVES_NAME, dpi=80)
