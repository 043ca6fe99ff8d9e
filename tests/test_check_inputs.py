"""What `scenegen check` accepts as IMAGES, and clear errors for what it does not."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from typer.testing import CliRunner

from scenegen import shards
from scenegen.check.inputs import load_images, to_grey
from scenegen.cli import app
from scenegen.errors import UserError
from scenegen.shards import read_arrays, read_images

RNG = np.random.default_rng(0)
GREY = RNG.integers(0, 256, size=(3, 16, 16), dtype=np.uint8)  # [N, H, W] uint8
EXPECTED = GREY.astype(np.float32) / 255


@pytest.mark.parametrize("images", [
    GREY,
    GREY[..., None],  # [N, H, W, 1]
    GREY[:, None],  # [N, 1, H, W]
    np.repeat(GREY[..., None], 3, axis=-1),  # [N, H, W, 3]
    np.repeat(GREY[:, None], 3, axis=1),  # [N, 3, H, W]
    np.concatenate([np.repeat(GREY[..., None], 3, -1), np.full((3, 16, 16, 1), 255, np.uint8)], -1),  # RGBA
    EXPECTED,  # float [N, H, W]
    torch.from_numpy(EXPECTED)[:, None],  # tensor [N, 1, H, W]
    torch.from_numpy(EXPECTED).double(),
], ids=["u8-NHW", "u8-NHW1", "u8-N1HW", "u8-NHW3", "u8-N3HW", "u8-rgba", "f32-NHW", "tensor-N1HW", "f64"])
def test_every_layout_becomes_grey_float(images) -> None:
    grey = to_grey(images)
    assert grey.dtype == np.float32 and grey.shape == (3, 16, 16)
    np.testing.assert_allclose(grey, EXPECTED, atol=1e-6)


@pytest.mark.parametrize("images,message", [
    (GREY[0], "add a batch axis"),
    (np.zeros((2, 16, 16, 7)), "no channel axis"),
    (np.zeros((0, 16, 16)), "empty"),
    (EXPECTED * 255, "floats in \\[0, 1\\] or uint8"),
    (np.full((1, 4, 4), np.nan), "NaN"),
    (np.zeros((1, 4, 4), dtype=bool), "dtype bool"),
])
def test_bad_arrays_say_what_is_wrong(images, message) -> None:
    with pytest.raises(UserError, match=message):
        to_grey(images)


def test_npy_and_pt_files(tmp_path: Path) -> None:
    np.save(tmp_path / "a.npy", GREY)
    torch.save(torch.from_numpy(EXPECTED)[:, None], tmp_path / "b.pt")
    for name in ("a.npy", "b.pt"):
        loaded = load_images(tmp_path / name)
        np.testing.assert_allclose(loaded.images, EXPECTED, atol=1e-6)
        assert loaded.dataset is None


def test_png_folder_in_name_order(tmp_path: Path) -> None:
    for i, image in enumerate(GREY):
        Image.fromarray(image).save(tmp_path / f"{i:03d}.png")
    np.testing.assert_allclose(load_images(tmp_path).images, EXPECTED, atol=1e-6)


def test_shard_folder_and_file_bring_their_dataset_and_config(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["make", "mnist10", "--n", "6", "--shard-size", "4", "--out", str(tmp_path),
                                      "--digits", "bundled", "--workers", "1", "--set", "swap_mode=shared"])
    assert result.exit_code == 0, result.output
    folder = load_images(tmp_path / "train")
    assert folder.images.shape == (6, 128, 128) and folder.dataset == "mnist10"
    assert folder.config["swap_mode"] == "shared"
    one = load_images(tmp_path / "train" / "shard-00001.h5")
    assert one.images.shape == (2, 128, 128) and one.dataset == "mnist10"
    np.testing.assert_array_equal(one.images, folder.images[4:])


def test_shards_are_read_for_their_images_only(tmp_path: Path, monkeypatch) -> None:
    result = CliRunner().invoke(app, ["make", "mnist4", "--n", "3", "--out", str(tmp_path), "--digits", "bundled", "--workers", "1"])
    assert result.exit_code == 0, result.output
    shard = tmp_path / "train" / "shard-00000.h5"
    expected = read_arrays(shard)["images"]

    def refuse(path: Path) -> None:
        raise AssertionError("read_arrays loads every dataset of a shard")

    monkeypatch.setattr(shards, "read_arrays", refuse)
    np.testing.assert_array_equal(read_images(shard), expected)
    for path in (tmp_path / "train", shard):
        np.testing.assert_allclose(load_images(path).images, expected[..., 0] / 255, atol=1e-6)


@pytest.mark.parametrize("make,message", [
    (lambda p: p, "holds no images"),  # empty folder
    (lambda p: p / "missing.npy", "does not exist"),
    (lambda p: (p / "x.txt").write_text("hi") and p / "x.txt", "unknown kind of file"),
    (lambda p: (p / "x.pt").write_bytes(b"not a tensor") and p / "x.pt", "cannot be loaded"),
    (lambda p: torch.save({"a": torch.zeros(1)}, p / "d.pt") or p / "d.pt", "holds a dict"),
])
def test_bad_paths_say_what_to_give(tmp_path: Path, make, message) -> None:
    with pytest.raises(UserError, match=message):
        load_images(make(tmp_path))


def test_pngs_of_different_sizes(tmp_path: Path) -> None:
    Image.fromarray(GREY[0]).save(tmp_path / "a.png")
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(tmp_path / "b.png")
    with pytest.raises(UserError, match="differ in size"):
        load_images(tmp_path)


def test_check_cli_errors_are_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SCENEGEN_CACHE", str(tmp_path / "cache"))  # an empty cache, whatever this machine has fitted
    runner = CliRunner()
    np.save(tmp_path / "a.npy", GREY)
    unknown = runner.invoke(app, ["check", str(tmp_path / "a.npy"), "--dataset", "mnist7"])
    assert "unknown dataset 'mnist7'" in str(unknown.exception)
    no_name = runner.invoke(app, ["check", str(tmp_path / "a.npy")])
    assert "pass --dataset" in str(no_name.exception)
    arrow = runner.invoke(app, ["check", str(tmp_path / "a.npy"), "--dataset", "arrow-room"])
    assert "no fitted Arrow Room checker" in str(arrow.exception)  # Arrow Room has its own checker (check/arrow)
