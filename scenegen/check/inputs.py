"""What `scenegen check` accepts as IMAGES: shard folders and files, PNG folders, .npy / .pt arrays, tensors.

Everything becomes one float32 array [N, H, W, C] in [0, 1] (C = 1 grey or 3 colour; `images` averages
colour to grey for the MNIST checker, `rgb` repeats grey for Arrow Room's), plus the dataset name and
config when the images come from shards that record them.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from scenegen.errors import UserError

CHANNELS = (1, 3, 4)  # grey, RGB, RGBA (alpha is dropped)
PNG = ".png"
GREY_MODES = ("1", "L", "LA", "I", "I;16", "F")  # PNG modes read as grey
LAYOUTS = "[N, H, W], [N, H, W, C] or [N, C, H, W] with C in 1, 3, 4"


@dataclass(frozen=True)
class LoadedImages:
    """pixels: float32 [N, H, W, C] in [0, 1] (C = 1 or 3, as stored); dataset/config: as recorded by shards, else None."""

    pixels: np.ndarray
    dataset: str | None = None
    config: dict[str, Any] | None = None

    @property
    def images(self) -> np.ndarray:
        """float32 [N, H, W], colour averaged to grey."""
        return to_grey(self.pixels)

    @property
    def rgb(self) -> np.ndarray:
        """float32 [N, H, W, 3], grey repeated."""
        return to_rgb(self.pixels)


def channels_last(images: torch.Tensor | np.ndarray) -> np.ndarray:
    """Any accepted layout and dtype (uint8 0-255, or float 0-1) -> float32 [N, H, W, C] in [0, 1], C in 1, 3 (alpha dropped)."""
    array = _unit_range(images.detach().cpu().numpy() if isinstance(images, torch.Tensor) else np.asarray(images))
    if array.ndim == 4:
        if array.shape[1] in CHANNELS and array.shape[-1] not in CHANNELS:
            array = np.moveaxis(array, 1, -1)
        elif array.shape[-1] not in CHANNELS:
            raise UserError(f"images of shape {list(array.shape)} have no channel axis of size 1, 3 or 4; give {LAYOUTS}")
        array = array[..., :3]
    elif array.ndim == 3:
        array = array[..., None]
    else:
        raise UserError(f"images of shape {list(array.shape)}: expected {LAYOUTS} (add a batch axis for one image)")
    if array.shape[0] == 0:
        raise UserError("no images to check (the array is empty)")
    return np.ascontiguousarray(array)


def to_grey(images: torch.Tensor | np.ndarray) -> np.ndarray:
    """Any accepted layout and dtype -> float32 [N, H, W] in [0, 1], colour averaged."""
    return np.ascontiguousarray(channels_last(images).mean(axis=-1, dtype=np.float32))


def to_rgb(images: torch.Tensor | np.ndarray) -> np.ndarray:
    """Any accepted layout and dtype -> float32 [N, H, W, 3] in [0, 1], grey repeated."""
    array = channels_last(images)
    return array if array.shape[-1] == 3 else np.repeat(array, 3, axis=-1)


def _unit_range(array: np.ndarray) -> np.ndarray:
    """uint8 0-255 or float 0-1 (slight overshoot clipped) -> float32 in [0, 1]."""
    if array.dtype == np.uint8:
        return array.astype(np.float32) / 255
    if not np.issubdtype(array.dtype, np.number) or np.issubdtype(array.dtype, np.complexfloating):
        raise UserError(f"images of dtype {array.dtype}: expected uint8 (0-255) or float (0-1)")
    array = array.astype(np.float32)
    if array.size and not np.isfinite(array).all():
        raise UserError("images contain NaN or infinite values")
    if array.size and (array.max() > 1.5 or array.min() < -0.5):
        raise UserError(f"float images range over [{array.min():.3g}, {array.max():.3g}]; give floats in [0, 1] or uint8 0-255")
    return np.clip(array, 0, 1)


def load_images(path: Path) -> LoadedImages:
    """Read IMAGES: a shard folder or file, a folder of PNGs, or a .npy / .pt array file."""
    if path.is_dir():
        if any(path.glob("shard-*.h5")) or any(p.is_dir() for p in path.iterdir()):
            return _from_shard_folder(path)
        return _from_png_folder(path)
    if not path.exists():
        raise UserError(f"{path} does not exist; give a shard folder or file, a folder of PNGs, or a .npy / .pt file")
    suffix = path.suffix.lower()
    if suffix == ".h5":
        return _from_shard_file(path)
    if suffix == ".npy":
        try:
            return LoadedImages(channels_last(np.load(path, allow_pickle=False)))
        except ValueError as exc:
            raise UserError(f"{path} is not a plain numpy array ({exc}); save it with np.save(path, array)")
    if suffix == ".pt":
        try:
            value = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as exc:  # torch raises several types for foreign or corrupt files
            raise UserError(f"{path} cannot be loaded as a tensor ({exc.__class__.__name__}); save it with torch.save(tensor, path)")
        if not isinstance(value, torch.Tensor):
            raise UserError(f"{path} holds a {type(value).__name__}, not a tensor; save the image tensor itself")
        return LoadedImages(channels_last(value))
    raise UserError(f"{path}: unknown kind of file; give a shard folder or .h5 file, a folder of PNGs, or a .npy / .pt file")


def _from_shard_folder(path: Path) -> LoadedImages:
    from scenegen.data import ShardDataset
    from scenegen.shards import read_images

    ds = ShardDataset(path)
    images = np.concatenate([read_images(f) for f in ds.files])
    return LoadedImages(channels_last(images), ds.dataset_name, ds.config)


def _from_shard_file(path: Path) -> LoadedImages:
    from scenegen.shards import read_images, shard_attrs

    attrs = shard_attrs(path)
    return LoadedImages(channels_last(read_images(path)), str(attrs["dataset"]), dict(attrs["config"]))


def _from_png_folder(path: Path) -> LoadedImages:
    files = sorted(p for p in path.iterdir() if p.suffix.lower() == PNG)
    if not files:
        raise UserError(f"{path} holds no images (no shard-*.h5 and no *.png files); point at a shard folder or a folder of PNGs")
    opened = [Image.open(f) for f in files]
    mode = "L" if all(im.mode in GREY_MODES for im in opened) else "RGB"
    arrays = [np.asarray(im.convert(mode)) for im in opened]
    sizes = {a.shape for a in arrays}
    if len(sizes) > 1:
        raise UserError(f"the PNGs in {path} differ in size ({', '.join(f'{w}x{h}' for h, w in sorted(sizes))}); give images of one size")
    return LoadedImages(channels_last(np.stack(arrays)))
