"""ShardDataset: a torch Dataset over a split folder of HDF5 shards, opened lazily in each worker."""

from __future__ import annotations

import bisect
import os
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import torch
from torch.utils.data import Dataset

from scenegen.errors import UserError
from scenegen.manifest import load_manifest
from scenegen.shards import shard_attrs


def split_folders(path: Path) -> list[Path]:
    """The split folders at `path`: itself if it holds shards, else its subfolders that do."""
    if not path.is_dir():
        raise UserError(f"{path} is not a folder; give a split folder made by `scenegen make` (e.g. data/mnist4/train)")
    if any(path.glob("shard-*.h5")):
        return [path]
    found = sorted(p for p in path.iterdir() if p.is_dir() and any(p.glob("shard-*.h5")))
    if not found:
        raise UserError(f"{path} holds no shards (shard-*.h5); make some with `scenegen make <dataset> --out {path}`")
    return found


class ShardDataset(Dataset):
    """Scenes of one split folder.

    ds[i] -> (image float [C, H, W] in [0, 1], target) with target = {"boxes": float32 [K, 4] pixel xyxy,
    "labels": int64 [K] (-1 = padding), "num_objects": int}, plus "frames": float32 [K, 4] for the MNIST
    family (the digit frame boxes). Attributes: dataset_name, config (dict),
    channels, image_size, max_objects, split. Files are opened on first use in each process, so the
    dataset can be handed to DataLoader workers (h5py handles must not cross a fork).
    """

    def __init__(self, folder: str | Path) -> None:
        folders = split_folders(Path(folder))
        if len(folders) > 1:
            names = ", ".join(p.name for p in folders)
            raise UserError(f"{folder} holds several splits ({names}); give one of them, e.g. {folders[0]}")
        self.folder = folders[0]
        manifest = load_manifest(self.folder)
        if manifest is not None:
            self.files = [self.folder / e["file"] for e in sorted(manifest["shards"], key=lambda e: e["index"])]
            counts = [int(e["n"]) for e in sorted(manifest["shards"], key=lambda e: e["index"])]
            info: dict[str, Any] = manifest
        else:
            self.files = sorted(self.folder.glob("shard-*.h5"))
            attrs = [shard_attrs(p) for p in self.files]
            counts = [a["n"] for a in attrs]
            info = attrs[0]
        if not self.files:
            raise UserError(f"{self.folder} lists no shards; re-run `scenegen make` or `scenegen index {self.folder}`")
        self.starts = np.cumsum([0, *counts]).tolist()
        self.dataset_name = str(info["dataset"])
        self.split = str(info["split"])
        self.config = dict(info["config"])
        with self._open(self.files[0]) as f:
            _, self.image_size, _, self.channels = f["images"].shape
            self.max_objects = int(f["labels"].shape[1])
        self._handles: dict[int, h5py.File] = {}
        self._pid = -1

    def __len__(self) -> int:
        return self.starts[-1]

    def __getitem__(self, index: int) -> tuple[torch.Tensor, dict[str, Any]]:
        if not 0 <= index < len(self):
            raise IndexError(index)
        shard = bisect.bisect_right(self.starts, index) - 1
        row = index - self.starts[shard]
        f = self._handle(shard)
        try:
            image = f["images"][row]
            boxes, labels, count = f["boxes"][row], f["labels"][row], f["num_objects"][row]
        except (OSError, KeyError) as exc:
            raise UserError(f"{self.files[shard]} is corrupt ({exc}); run `scenegen verify {self.folder}` and remake it")
        image_t = torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1).float().div_(255)
        target = {
            "boxes": torch.from_numpy(boxes.astype(np.float32)),
            "labels": torch.from_numpy(labels.astype(np.int64)),
            "num_objects": int(count),
        }
        if "frames" in f:  # MNIST family: the digit frame around each digit
            target["frames"] = torch.from_numpy(f["frames"][row].astype(np.float32))
        return image_t, target

    def _handle(self, shard: int) -> h5py.File:
        if self._pid != os.getpid():  # first use in this process (e.g. a fresh DataLoader worker)
            self._handles, self._pid = {}, os.getpid()
        if shard not in self._handles:
            self._handles[shard] = self._open(self.files[shard])
        return self._handles[shard]

    def _open(self, path: Path) -> h5py.File:
        try:
            return h5py.File(path, "r")
        except OSError as exc:
            raise UserError(f"{path} is missing, corrupt or truncated ({exc.__class__.__name__}); run `scenegen verify {self.folder}` and remake it")

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_handles"], state["_pid"] = {}, -1  # open handles never travel to another process
        return state
