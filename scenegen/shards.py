"""The HDF5 shard schema: write a shard atomically, read it back, validate it. See docs/shard_format.md."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from scenegen.errors import UserError
from scenegen.scene import Scene

SCHEMA_VERSION = 1
GENERATOR_VERSION = "0.1.0"
BOX_FORMAT = "xyxy_pixels"
COMPRESSION = {"compression": "gzip", "compression_opts": 4}
REQUIRED = ("images", "boxes", "labels", "num_objects")


def shard_name(index: int) -> str:
    return f"shard-{index:05d}.h5"


def stack_scenes(scenes: list[Scene], max_objects: int) -> dict[str, np.ndarray]:
    """Scenes -> padded arrays: images [N,H,W,C], boxes [N,K,4], labels [N,K] (-1 pad), num_objects [N],
    every per-object extra as [N,K,...] (0 pad), every per-scene param as [N], every image extra as [N,H,W]."""
    n = len(scenes)
    first = scenes[0]
    arrays: dict[str, np.ndarray] = {
        "images": np.stack([s.image for s in scenes]).astype(np.uint8),
        "boxes": np.zeros((n, max_objects, 4), np.float32),
        "labels": np.full((n, max_objects), -1, np.int16),
        "num_objects": np.array([s.num_objects for s in scenes], np.int16),
    }
    for key, value in first.objects.items():
        arrays[key] = np.zeros((n, max_objects, *value.shape[1:]), value.dtype)
    for i, s in enumerate(scenes):
        if s.num_objects > max_objects:
            raise ValueError(f"scene {i} has {s.num_objects} objects, more than the {max_objects} a shard holds")
        k = s.num_objects
        arrays["boxes"][i, :k] = s.boxes
        arrays["labels"][i, :k] = s.labels
        for key, value in s.objects.items():
            arrays[key][i, :k] = value
    for key, value in first.params.items():
        dtype = np.float32 if isinstance(value, float) else np.int32
        arrays[key] = np.array([s.params[key] for s in scenes], dtype)
    for key in first.images_extra:
        arrays[key] = np.stack([s.images_extra[key] for s in scenes])
    return arrays


def write_shard(path: Path, arrays: dict[str, np.ndarray], attrs: dict[str, Any]) -> None:
    """Write one shard atomically: to a temp name in the same folder, then rename.

    Image-sized arrays are chunked one image per chunk and gzip-compressed.
    """
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        with h5py.File(tmp, "w") as f:
            for key, value in arrays.items():
                if value.shape[1:3] == arrays["images"].shape[1:3]:  # images and image-sized extras
                    f.create_dataset(key, data=value, chunks=(1, *value.shape[1:]), **COMPRESSION)
                else:
                    f.create_dataset(key, data=value)
            for key, value in attrs.items():
                f.attrs[key] = json.dumps(value) if isinstance(value, (dict, list)) else value
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def shard_attrs(path: Path) -> dict[str, Any]:
    """A shard's file attributes as plain values (JSON ones parsed) plus its scene count `n`.

    A UserError names a corrupt or foreign file."""
    try:
        with h5py.File(path, "r") as f:
            attrs = dict(f.attrs)
            missing = [k for k in REQUIRED if k not in f]
            attrs["n"] = int(f["images"].shape[0]) if "images" in f else 0
    except OSError as exc:
        raise _corrupt(path, exc)
    if missing:
        raise UserError(f"{path} lacks the datasets {missing}; it is not a scenegen shard")
    return {key: _plain(value) for key, value in attrs.items()}


def _corrupt(path: Path, exc: OSError) -> UserError:
    """The error that names a shard h5py cannot read."""
    return UserError(f"{path} is corrupt or truncated ({exc.__class__.__name__}); delete it and re-run `scenegen make` to remake it")


def _plain(value: Any) -> Any:
    """An attribute as a plain Python value: numpy scalars unwrapped, JSON objects parsed."""
    if hasattr(value, "item"):
        value = value.item()
    return json.loads(value) if isinstance(value, str) and value[:1] in "[{" else value


def read_images(path: Path) -> np.ndarray:
    """A shard's images only (uint8 [N, H, W, C]), without loading its other datasets."""
    try:
        with h5py.File(path, "r") as f:
            return f["images"][()]
    except OSError as exc:
        raise _corrupt(path, exc)


def read_arrays(path: Path) -> dict[str, np.ndarray]:
    """Every dataset of a shard, loaded into memory (for tests, checks and small shards)."""
    try:
        with h5py.File(path, "r") as f:
            return {key: f[key][()] for key in f}
    except OSError as exc:
        raise _corrupt(path, exc)
