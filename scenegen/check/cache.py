"""Fitted recognisers on disk: one folder per recogniser config hash, fitted when missing, written atomically.

Folder: <root>/mnist-<hash>/ with recogniser.pt (a plain state dict, loaded with weights_only=True)
and meta.json. Root: the `cache` argument, else $SCENEGEN_CACHE, else ~/.cache/scenegen/checkers.
One recogniser serves MNIST-4, MNIST-10 and MNIST-4-10 alike: its hash covers image size, digit size,
the train digits' SHA-256 and every detection and fitting setting, not the layout rules.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch

from scenegen.check.detect import DetectSettings
from scenegen.check.fit import FitSettings, fit_net, training_data
from scenegen.check.recogniser import DigitEnsemble
from scenegen.datasets.mnist4_10 import Mnist4_10Config
from scenegen.datasets.mnist_common import prepare
from scenegen.errors import UserError
from scenegen.manifest import write_text_atomic, write_torch_atomic

ENV = "SCENEGEN_CACHE"
WEIGHTS, META = "recogniser.pt", "meta.json"
VERSION = 2  # bump when the network, its training or the crop normalisation changes (2: an ensemble of nets)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RecogniserConfig:
    """Everything that decides a recogniser's weights."""

    image_size: int
    digit_size: int
    digits_sha256: str
    detect: DetectSettings = field(default_factory=DetectSettings)
    fit: FitSettings = field(default_factory=FitSettings)
    version: int = VERSION

    def key(self) -> str:
        text = json.dumps(dataclasses.asdict(self), sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:16]


def cache_root(cache: Path | None = None) -> Path:
    if cache is not None:
        return Path(cache)
    env = os.environ.get(ENV)
    return Path(env) if env else Path.home() / ".cache" / "scenegen" / "checkers"


def load_or_fit(image_size: int, digit_size: int, digits: str, cache: Path | None = None, fit: FitSettings | None = None,
                detect: DetectSettings | None = None, progress: bool = True) -> tuple[DigitEnsemble, RecogniserConfig]:
    """The cached classifier for this image and digit size and digit source; fitted and cached when missing."""
    train_cfg = Mnist4_10Config(image_size=image_size, digit_size=digit_size)
    resources = prepare(train_cfg, "train", {"digits": digits})
    config = RecogniserConfig(image_size, digit_size, resources.pool().sha256, detect or DetectSettings(), fit or FitSettings())
    folder = cache_root(cache) / f"mnist-{config.key()}"
    net = DigitEnsemble(config.fit.nets)
    if (folder / WEIGHTS).is_file():
        try:
            net.load_state_dict(torch.load(folder / WEIGHTS, map_location="cpu", weights_only=True))
            return net.eval(), config
        except (RuntimeError, OSError, EOFError) as exc:
            log.warning("recogniser cache %s unreadable (%s); fitting again", folder, exc.__class__.__name__)
    log.warning("fitting the digit recogniser once (%s, digit size %d); it will be cached in %s",
                resources.source.describe(), digit_size, folder)
    start = time.perf_counter()
    crops, labels = training_data(train_cfg, resources, config.fit, config.detect, progress)
    net = fit_net(crops, labels, config.fit, progress)
    meta = {**dataclasses.asdict(config), "digits": resources.source.describe(), "crops": len(labels),
            "fit_seconds": round(time.perf_counter() - start, 1)}
    _save(folder, net, meta)
    return net, config


def _save(folder: Path, net: DigitEnsemble, meta: dict) -> None:
    """Write meta.json, then the weights, each to a temp name and renamed (readers never see half a file)."""
    try:
        write_text_atomic(folder / META, json.dumps(meta, indent=1))
        write_torch_atomic(folder / WEIGHTS, net.state_dict())
    except OSError as exc:
        raise UserError(f"cannot write the recogniser cache {folder} ({exc.strerror}); pass --cache DIR or set {ENV} to a writable folder")
