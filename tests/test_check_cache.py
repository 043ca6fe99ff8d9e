"""The recogniser cache: its key follows every fit setting and the format version; the ensemble round-trips."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import torch

from scenegen.check import cache as cache_module
from scenegen.check.augment import AugmentSettings
from scenegen.check.cache import RecogniserConfig, load_or_fit
from scenegen.check.detect import DetectSettings
from scenegen.check.fit import FitSettings
from scenegen.check.recogniser import DigitEnsemble
from scenegen.check.trainset import TrainsetSettings
from scenegen.datasets.mnist4_10 import Mnist4_10Config
from scenegen.datasets.mnist_common import prepare

BASE = RecogniserConfig(128, 20, "0" * 64)


@pytest.mark.parametrize("changed", [
    dataclasses.replace(BASE, fit=FitSettings(epochs=9)),
    dataclasses.replace(BASE, fit=FitSettings(elastic=1.0)),
    dataclasses.replace(BASE, fit=FitSettings(nets=2)),
    dataclasses.replace(BASE, fit=FitSettings(trainset=TrainsetSettings(augment=AugmentSettings(rotate=5.0)))),
    dataclasses.replace(BASE, detect=DetectSettings(threshold=0.3)),
    dataclasses.replace(BASE, digits_sha256="1" * 64),
    dataclasses.replace(BASE, version=BASE.version - 1),
], ids=["epochs", "elastic", "nets", "augment", "detect", "digits", "version"])
def test_cache_key_changes_with_every_setting(changed: RecogniserConfig) -> None:
    assert changed.key() != BASE.key()
    assert BASE.key() == RecogniserConfig(128, 20, "0" * 64).key()


def test_ensemble_averages_its_nets_probabilities() -> None:
    torch.manual_seed(0)
    ensemble = DigitEnsemble(3).eval()
    crops = torch.rand(5, 1, 28, 28)
    with torch.no_grad():
        mean = torch.stack([torch.softmax(net(crops), dim=1) for net in ensemble.nets]).mean(dim=0)
        torch.testing.assert_close(torch.softmax(ensemble(crops), dim=1), mean)


def test_cached_ensemble_is_loaded_without_fitting(tmp_path: Path, monkeypatch) -> None:
    fit = FitSettings(nets=2)
    sha = prepare(Mnist4_10Config(), "train", {"digits": "bundled"}).pool().sha256
    folder = tmp_path / f"mnist-{RecogniserConfig(128, 20, sha, fit=fit).key()}"
    torch.manual_seed(1)
    saved = DigitEnsemble(2)
    cache_module._save(folder, saved, {})

    def refuse(*args, **kwargs) -> None:
        raise AssertionError("a cached recogniser was fitted again")

    monkeypatch.setattr(cache_module, "fit_net", refuse)
    net, config = load_or_fit(128, 20, "bundled", tmp_path, fit, progress=False)
    assert config.fit == fit and len(net.nets) == 2
    for a, b in zip(net.state_dict().values(), saved.state_dict().values()):
        torch.testing.assert_close(a, b)
