"""Checkpoints in a run folder: atomic writes, keep-the-last-N, best-by-S-Acc, RNG states.

A checkpoint is a dict of tensors and plain values, so torch.load(..., weights_only=True)
reads it:
    step          int, optimiser steps done (also fixes the data order: see gnm.train.data)
    model         the model's state_dict (GNM or a baseline: config.model.kind)
    optimizer     the optimiser state_dict (absent in model-only exports)
    rng           list, per rank, of {"cpu": uint8 tensor, "cuda": uint8 tensor or None}
    world_size, batch_size, skipped, best_s_acc (float or None)
    config        the RunConfig as plain data
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import torch
from torch import nn

from gnm.config import RunConfig, run_config_from_dict
from gnm.model import build_model
from scenegen.errors import UserError
from scenegen.manifest import write_torch_atomic

BEST_NAME = "best.pt"
_STEP_FILE = re.compile(r"ckpt-(\d+)\.pt")


def checkpoint_path(run_dir: Path, step: int) -> Path:
    return run_dir / f"ckpt-{step:08d}.pt"


def list_checkpoints(run_dir: Path) -> list[Path]:
    """The run's step checkpoints, oldest first."""
    found = [(int(m.group(1)), p) for p in run_dir.glob("ckpt-*.pt") if (m := _STEP_FILE.fullmatch(p.name))]
    return [p for _, p in sorted(found)]


def latest_checkpoint(run_dir: Path) -> Path | None:
    found = list_checkpoints(run_dir)
    return found[-1] if found else None


def prune_checkpoints(run_dir: Path, keep_last: int) -> None:
    """Delete all but the newest `keep_last` step checkpoints (best.pt is kept apart)."""
    for old in list_checkpoints(run_dir)[: -max(keep_last, 1)]:
        old.unlink()


def load_checkpoint(path: Path) -> dict[str, Any]:
    """A checkpoint's contents on the CPU, read with weights_only=True."""
    return torch.load(path, map_location="cpu", weights_only=True)


def capture_rng(device: torch.device) -> dict[str, torch.Tensor | None]:
    """This process's global torch RNG states (CPU, and the CUDA device when used)."""
    return {
        "cpu": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state(device) if device.type == "cuda" else None,
    }


def restore_rng(state: dict[str, torch.Tensor | None], device: torch.device) -> None:
    torch.set_rng_state(state["cpu"])
    if device.type == "cuda" and state["cuda"] is not None:
        torch.cuda.set_rng_state(state["cuda"], device)


def export_model(checkpoint: dict[str, Any], path: Path) -> None:
    """Write a model-only checkpoint (weights, config, step): what sampling and eval need."""
    keys = ("step", "model", "config", "best_s_acc")
    write_torch_atomic(path, {k: checkpoint[k] for k in keys if k in checkpoint})


def resolve_checkpoint(run: Path, which: str = "latest") -> Path:
    """A checkpoint file: `run` itself if it is a file, else run/best.pt for which='best',
    else the run's newest step checkpoint."""
    if run.is_file():
        return run
    if not run.is_dir():
        raise UserError(f"run {run} not found; pass a run folder made by `gnm train` or a .pt file")
    path = run / BEST_NAME if which == "best" else latest_checkpoint(run)
    if path is None or not path.is_file():
        raise UserError(f"run {run} has no {which} checkpoint yet; train it first (gnm train --out {run})")
    return path


def load_model(run: Path, device: torch.device, which: str = "latest") -> tuple[RunConfig, nn.Module, int]:
    """(config, model of its kind in eval mode on `device`, step) from a run folder or a checkpoint file."""
    path = resolve_checkpoint(run, which)
    state = load_checkpoint(path)
    cfg = run_config_from_dict(state["config"])
    model = build_model(cfg.model)
    model.load_state_dict(state["model"])
    return cfg, model.to(device).eval(), int(state["step"])
