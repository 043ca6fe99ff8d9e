"""ShardDataset reads real shards (also in DataLoader worker processes) and preview draws them."""

from __future__ import annotations

import h5py
import numpy as np
import pytest
import torch
from PIL import Image
from torch.utils.data import DataLoader

from scenegen.data import ShardDataset
from scenegen.errors import UserError
from scenegen.preview import preview

from conftest import run_cli


def test_items_match_the_shards(mnist4_split):
    ds = ShardDataset(mnist4_split)
    assert len(ds) == 60 and ds.dataset_name == "mnist4" and ds.split == "train"
    assert (ds.channels, ds.image_size, ds.max_objects) == (1, 128, 4)
    assert ds.config["digit_size"] == 20
    with h5py.File(mnist4_split / "shard-00001.h5") as f:
        image, boxes, labels = f["images"][3], f["boxes"][3], f["labels"][3]
    x, target = ds[25 + 3]
    assert x.shape == (1, 128, 128) and x.dtype == torch.float32 and 0 <= x.min() and x.max() <= 1
    assert torch.equal(x, torch.from_numpy(image).permute(2, 0, 1).float() / 255)
    assert np.array_equal(target["boxes"].numpy(), boxes) and target["labels"].tolist() == labels.tolist()
    assert target["num_objects"] == 4 and target["frames"].shape == (4, 4)
    with pytest.raises(IndexError):
        ds[60]


def test_dataloader_workers_read_everything(mnist4_split):
    ds = ShardDataset(mnist4_split)
    ds[0]  # a handle opened in the parent must not leak into the workers
    sequential = torch.stack([ds[i][0] for i in range(len(ds))])
    loader = DataLoader(ds, batch_size=16, num_workers=2, shuffle=False)
    batches = torch.cat([images for images, _ in loader])
    assert torch.equal(batches, sequential)


def test_a_folder_without_shards_is_a_user_error(tmp_path):
    with pytest.raises(UserError, match="holds no shards"):
        ShardDataset(tmp_path)


def test_preview_png_shows_the_grid(mnist4_split, tmp_path):
    path = preview(mnist4_split, tmp_path / "grid.png", n=16)
    with Image.open(path) as png:
        assert png.size == (4 * 256 + 5 * 2, 4 * 256 + 5 * 2)  # 4x4 tiles upscaled 2x, 2 px padding
        pixels = np.asarray(png.convert("RGB"))
    green = (pixels[:, :, 1] > 200) & (pixels[:, :, 0] < 100)
    assert green.sum() > 16 * 4 * 20  # box outlines drawn


def test_cli_make_preview_info(tmp_path):
    run_cli("make", "mnist4", "--n", "20", "--out", str(tmp_path / "d"), "--digits", "bundled", "--workers", "1", check=True)
    proc = run_cli("preview", str(tmp_path / "d"), "--n", "4", "--out", str(tmp_path / "p.png"), check=True)
    assert (tmp_path / "p.png").exists() and "wrote" in proc.stdout
    info = run_cli("info", str(tmp_path / "d"), check=True).stdout
    assert "mnist4 / train: 20 of 20 scenes" in info and "bundled 5k MNIST" in info
