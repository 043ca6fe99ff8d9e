"""One user seed -> an independent numpy Generator per (split, shard index)."""

from __future__ import annotations

import zlib

import numpy as np


def split_code(split: str) -> int:
    """A stable integer for a split name (the same on every machine and Python run)."""
    return zlib.crc32(split.encode())


def shard_rng(seed: int, split: str, shard_index: int) -> np.random.Generator:
    """The generator that draws every random choice of one shard."""
    return np.random.default_rng(np.random.SeedSequence([seed, split_code(split), shard_index]))
