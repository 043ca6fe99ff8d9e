"""Data for training and evaluation: open a shard folder, stream training batches whose
order is a pure function of (seed, step), and iterate a folder in order for evaluation.

The training order is DistributedSampler's (seeded by train.seed, reshuffled each epoch,
split across ranks); resuming at step s skips straight to s's place in its epoch, so
k steps + resume + k steps reads exactly the batches of 2k steps.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import DataLoader, Dataset, DistributedSampler

from gnm.config import RunConfig
from scenegen.data import ShardDataset
from scenegen.errors import UserError


def open_dataset(folder: Path, cfg: RunConfig | None = None) -> ShardDataset:
    """The shard folder as a Dataset; with `cfg`, check that it holds the recipe's dataset."""
    dataset = ShardDataset(folder)
    if cfg is None:
        return dataset
    if dataset.dataset_name != cfg.dataset:
        raise UserError(
            f"{folder} holds dataset {dataset.dataset_name!r} but the recipe is for {cfg.dataset!r}; "
            f"use the matching recipe or data folder"
        )
    data_shape = (dataset.channels, dataset.image_size)
    if data_shape != (cfg.model.channels, cfg.model.image_size):
        raise UserError(
            f"{folder} holds {data_shape[0]}-channel {data_shape[1]}px images but the model takes "
            f"{cfg.model.channels}-channel {cfg.model.image_size}px ones; fix model.channels / model.image_size"
        )
    return dataset


def _images_only(batch: list[tuple[torch.Tensor, dict[str, Any]]]) -> torch.Tensor:
    return torch.stack([image for image, _ in batch])


def _images_and_targets(batch: list[tuple[torch.Tensor, dict[str, Any]]]) -> tuple[torch.Tensor, list[dict]]:
    return torch.stack([image for image, _ in batch]), [target for _, target in batch]


def train_batches(
    dataset: Dataset, batch_size: int, seed: int, start_step: int, rank: int, world_size: int, num_workers: int,
    pin_memory: bool = False,
) -> Iterator[torch.Tensor]:
    """Endless per-rank image batches [batch_size / world_size, C, H, W], starting at step `start_step`."""
    if batch_size % world_size:
        raise UserError(f"train.batch_size={batch_size} is not divisible by the {world_size} processes")
    per_rank = batch_size // world_size
    sampler = DistributedSampler(dataset, num_replicas=world_size, rank=rank, shuffle=True, seed=seed, drop_last=True)
    steps_per_epoch = len(sampler) // per_rank
    if steps_per_epoch == 0:
        raise UserError(f"the data holds {len(dataset)} images, fewer than one batch of {batch_size}")
    epoch, skip = divmod(start_step, steps_per_epoch)
    while True:
        sampler.set_epoch(epoch)
        order = list(sampler)[skip * per_rank : steps_per_epoch * per_rank]
        yield from DataLoader(
            dataset,
            batch_size=per_rank,
            sampler=order,
            num_workers=num_workers,
            collate_fn=_images_only,
            pin_memory=pin_memory,
            generator=torch.Generator().manual_seed(seed),  # keeps the global RNG untouched
        )
        epoch, skip = epoch + 1, 0


def eval_batches(dataset: Dataset, batch_size: int, num_workers: int = 0) -> DataLoader:
    """The folder in order: (images [B, C, H, W], list of B target dicts)."""
    return DataLoader(dataset, batch_size=batch_size, shuffle=False, num_workers=num_workers, collate_fn=_images_and_targets)
