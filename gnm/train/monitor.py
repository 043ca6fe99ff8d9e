"""The structure check during training: sample from the prior, judge with the rule checker.

The checker (scenegen.check) is optional while it is being built: if it cannot be imported,
or has no rules for the dataset, the monitor says so once and only saves sample grids.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from gnm.model import GenerativeModel
from gnm.train.images import grid
from scenegen.preview import save_png
from scenegen.errors import UserError

SAMPLE_CHUNK = 50


@dataclass(frozen=True)
class StructureResult:
    """S-Acc (None without a checker) with its 95% interval, and the saved sample grid."""

    s_acc: float | None
    ci95: tuple[float, float] | None
    n: int
    grid_path: Path


@torch.no_grad()
def sample_images(model: GenerativeModel, n: int, seed: int, device: torch.device) -> torch.Tensor:
    """n prior samples [n, C, H, W] in [0, 1] on the CPU, the same for the same weights and seed."""
    generator = torch.Generator(device=device).manual_seed(seed)
    chunks = [model.sample(min(SAMPLE_CHUNK, n - i), generator=generator).image.float().cpu() for i in range(0, n, SAMPLE_CHUNK)]
    return torch.cat(chunks)


class StructureMonitor:
    """Judges n prior samples per call; grids go to out_dir/STEM-STEP.png (stem "samples" in a run folder;
    evaluations that share a folder give each model its own stem)."""

    def __init__(self, dataset_name: str, dataset_config: dict[str, Any], n: int, seed: int, out_dir: Path,
                 say: Callable[[str], None], stem: str = "samples") -> None:
        self.dataset_name, self.dataset_config = dataset_name, dataset_config
        self.n, self.seed, self.out_dir, self.say, self.stem = n, seed, out_dir, say, stem
        self._checker: Any = None
        self._checker_missing = False

    def _get_checker(self) -> Any:
        if self._checker is None and not self._checker_missing:
            try:
                from scenegen.check import RuleChecker

                self._checker = RuleChecker.for_dataset(self.dataset_name, self.dataset_config)
            except (ImportError, UserError, NotImplementedError) as err:
                self._checker_missing = True
                self.say(f"structure check off: no rule checker for {self.dataset_name!r} ({err}); saving sample grids only")
        return self._checker

    def __call__(self, model: GenerativeModel, step: int, device: torch.device) -> StructureResult:
        images = sample_images(model, self.n, self.seed, device)
        grid_path = self.out_dir / f"{self.stem}-{step:08d}.png"
        save_png(grid_path, grid(images[:64]))
        checker = self._get_checker()
        if checker is None:
            return StructureResult(None, None, len(images), grid_path)
        from scenegen.check import summarize

        summary = summarize(checker.check(images))
        return StructureResult(summary.s_acc, tuple(summary.ci95), summary.n, grid_path)

