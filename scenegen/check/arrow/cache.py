"""Fitted Arrow Room recognisers on disk: one folder per (train splits, fit settings), fitted when missing.

Folder: <root>/arrow-room-<key>/ with detect.pt and object.pt (plain state dicts, loaded with
weights_only=True) and meta.json (the train config, the manifests' hashes, what the fit measured on
the held-out scenes). key: hash of the train splits' manifest.json files (each lists every shard's
SHA-256), the fit settings and VERSION. Root: as for the MNIST recogniser (scenegen.check.cache).
Rendering is slow, so the fit reads rendered splits instead of drawing scenes itself: `train` is one
split folder or a folder of them (valid scenes, and rule-breaking ones so that the recogniser also sees
objects where valid scenes never put them). Without one the most recently fitted recogniser serves.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import time
from pathlib import Path
from typing import Any

import torch

from scenegen.check.arrow.checker import ArrowChecker
from scenegen.check.arrow.evaluate import evaluate
from scenegen.check.arrow.fit import ArrowFitSettings, fit_nets, split_holdout
from scenegen.check.arrow.nets import DetectNet, ObjectNet
from scenegen.check.arrow.recogniser import ArrowRecogniser
from scenegen.check.arrow.trainset import concat, load_split
from scenegen.check.cache import ENV, cache_root
from scenegen.datasets.arrow_room import ArrowRoomConfig
from scenegen.errors import UserError
from scenegen.data import split_folders
from scenegen.manifest import MANIFEST, load_manifest, sha256_file, write_json_atomic, write_torch_atomic

PREFIX = "arrow-room-"
DETECT, OBJECT, META = "detect.pt", "object.pt", "meta.json"
VERSION = 1  # bump when a net, the crops or the targets change
MAKE_TRAIN = "scenegen make arrow-room --split train --n 1200 --out DIR"

log = logging.getLogger(__name__)


def train_splits(train: Path) -> list[Path]:
    """The split folders of train (one split, or a folder of them), each a complete Arrow Room split."""
    folders = split_folders(train)
    for folder in folders:
        manifest = load_manifest(folder)
        if manifest is None or not manifest.get("complete"):
            raise UserError(f"--train {folder}: not a complete split (no complete {MANIFEST}); make one with `{MAKE_TRAIN}`")
        if manifest.get("dataset") != "arrow-room":
            raise UserError(f"--train {folder}: expected arrow-room scenes, found {manifest.get('dataset')}")
    return folders


def train_key(folders: list[Path], settings: ArrowFitSettings) -> str:
    """The cache key of a fit: the train splits' manifest hashes, the settings and VERSION."""
    text = json.dumps({"manifests": sorted(sha256_file(f / MANIFEST) for f in folders), "fit": dataclasses.asdict(settings),
                       "version": VERSION}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def load_or_fit(train: Path | None, cache: Path | None = None, settings: ArrowFitSettings | None = None,
                progress: bool = True) -> tuple[ArrowRecogniser, dict[str, Any]]:
    """The recogniser fitted on split `train` (fitted and cached when missing), or with train None the
    latest cached one; returns it with its meta.json."""
    settings = settings or ArrowFitSettings()
    root = cache_root(cache)
    if train is None:
        folder = latest(root)
    else:
        splits = train_splits(Path(train))
        folder = root / f"{PREFIX}{train_key(splits, settings)}"
        if not (folder / OBJECT).is_file():
            _fit(splits, folder, settings, progress)
    meta = json.loads((folder / META).read_text())
    cfg = ArrowRoomConfig.from_dict(meta["config"])
    detect, objects = DetectNet(), ObjectNet(len(cfg.shapes), len(cfg.colors), len(cfg.materials))
    try:
        detect.load_state_dict(torch.load(folder / DETECT, map_location="cpu", weights_only=True))
        objects.load_state_dict(torch.load(folder / OBJECT, map_location="cpu", weights_only=True))
    except (RuntimeError, OSError, EOFError) as exc:
        raise UserError(f"the Arrow Room recogniser in {folder} is unreadable ({exc.__class__.__name__}); delete the folder "
                        f"and fit again with --train DIR")
    return ArrowRecogniser(detect, objects), meta


def latest(root: Path) -> Path:
    """The most recently fitted recogniser folder under root; a one-line error when there is none."""
    found = sorted((p.parent for p in root.glob(f"{PREFIX}*/{OBJECT}")), key=lambda p: (p / OBJECT).stat().st_mtime)
    if not found:
        raise UserError(f"no fitted Arrow Room checker in {root}; pass --train DIR, a rendered train split "
                        f"(`{MAKE_TRAIN}`), to fit one (a few minutes), or --cache / ${ENV} where one is")
    return found[-1]


def _fit(splits: list[Path], folder: Path, s: ArrowFitSettings, progress: bool) -> None:
    """Fit on the splits (minus the last scenes of each, held out), measure on the held-out scenes, save."""
    log.warning("fitting the Arrow Room recogniser once on %s; it will be cached in %s", ", ".join(map(str, splits)), folder)
    start = time.perf_counter()
    loaded = [load_split(f) for f in splits]
    cfg = loaded[0][1]
    if any(c != cfg for _, c in loaded):
        raise UserError(f"the train splits {', '.join(map(str, splits))} were made with different configs; fit on one config")
    parts = [(scenes, split_holdout(len(scenes.images), s)) for scenes, _ in loaded]
    fit_scenes = concat([scenes.subset(fit) for scenes, (fit, _) in parts])
    held = concat([scenes.subset(kept) for scenes, (_, kept) in parts])
    detect, objects = fit_nets(fit_scenes, cfg, s, progress)
    seconds = time.perf_counter() - start
    measured = evaluate(ArrowChecker(cfg, ArrowRecogniser(detect, objects)), held) if len(held.images) else {}
    meta = {"config": cfg.to_dict(), "train": [str(f) for f in splits],
            "train_manifest_sha256": [sha256_file(f / MANIFEST) for f in splits],
            "scenes": len(fit_scenes.images), "held_out": len(held.images), "fit": dataclasses.asdict(s), "version": VERSION,
            "fit_seconds": round(seconds, 1), "held_out_measures": measured}
    try:
        write_json_atomic(folder / META, meta)
        for name, net in ((DETECT, detect), (OBJECT, objects)):  # object.pt last: its presence marks a complete fit
            write_torch_atomic(folder / name, net.state_dict())
    except OSError as exc:
        raise UserError(f"cannot write the recogniser cache {folder} ({exc.strerror}); pass --cache DIR or set {ENV} to a writable folder")
