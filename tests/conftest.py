"""Shared fixtures: small real splits made with the bundled digits."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from scenegen.datasets import get_spec
from scenegen.runner import MakeRequest, make_split


def make(dataset: str, out: Path, n: int = 60, split: str = "train", workers: int = 1, shard_size: int = 25, seed: int = 0, **kw):
    """Make a split with the bundled digits; returns its manifest."""
    cfg = get_spec(dataset).config_type(**kw)
    request = MakeRequest(dataset, cfg, split, n, out, seed=seed, shard_size=shard_size, workers=workers, options={"digits": "bundled"})
    return make_split(request, progress=False)


def run_cli(*args: str, check: bool = False) -> subprocess.CompletedProcess:
    """Run `python -m scenegen ARGS` as a user would; returns the finished process."""
    proc = subprocess.run([sys.executable, "-m", "scenegen", *args], capture_output=True, text=True, timeout=300)
    if check and proc.returncode != 0:
        raise AssertionError(f"scenegen {' '.join(args)} failed:\n{proc.stderr}")
    return proc


@pytest.fixture(scope="session")
def mnist4_split(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("mnist4") / "train"
    make("mnist4", folder, n=60)
    return folder
