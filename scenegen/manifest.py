"""manifest.json per split folder: what the shards are, their scene counts and SHA-256; verify; index."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

from scenegen.errors import UserError
from scenegen.shards import shard_attrs

MANIFEST = "manifest.json"


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def write_text_atomic(path: Path, text: str) -> Path:
    """Write text to a temp file beside `path` (parents made), then rename over it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.write_text(text)
    os.replace(tmp, path)
    return path


def write_torch_atomic(path: Path, obj: Any) -> Path:
    """torch.save obj (tensors and plain values) to a temp file beside `path` (parents made), flushed to
    disk, then renamed over `path`: checkpoints and fitted recognisers are never half written."""
    import torch  # here, not at the top: manifest commands (index, verify) need no torch

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    with open(tmp, "wb") as handle:
        torch.save(obj, handle)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)
    return path


def write_json_atomic(path: Path, value: Any) -> None:
    """Write JSON atomically (write_text_atomic)."""
    write_text_atomic(path, json.dumps(value, indent=2, sort_keys=True) + "\n")


def load_manifest(folder: Path) -> dict[str, Any] | None:
    """The folder's manifest, None when it has none; a UserError for an unreadable one."""
    path = folder / MANIFEST
    if not path.exists():
        return None
    try:
        manifest = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise UserError(f"{path} is unreadable ({exc}); rebuild it with `scenegen index {folder}`")
    if not isinstance(manifest, dict) or "shards" not in manifest:
        raise UserError(f"{path} is not a scenegen manifest; rebuild it with `scenegen index {folder}`")
    return manifest


def verify(folder: Path) -> list[str]:
    """Re-hash every shard against the manifest; one line per problem (empty: all good)."""
    manifest = load_manifest(folder)
    if manifest is None:
        raise UserError(f"{folder} has no {MANIFEST}; make the split with `scenegen make` or run `scenegen index {folder}`")
    problems = []
    for entry in manifest["shards"]:
        path = folder / entry["file"]
        if not path.exists():
            problems.append(f"{path}: missing")
        elif sha256_file(path) != entry["sha256"]:
            problems.append(f"{path}: SHA-256 differs from the manifest (corrupt or modified)")
    if not manifest.get("complete", False):
        problems.append(f"{folder}: the split is incomplete ({manifest.get('made', '?')} of {manifest.get('n', '?')} scenes); re-run the same `scenegen make` command to finish it")
    return problems


def index(folder: Path) -> dict[str, Any]:
    """Rebuild the manifest from the shards' own attributes (e.g. after a split was made by several jobs)."""
    shards = sorted(folder.glob("shard-*.h5"))
    if not shards:
        raise UserError(f"{folder} holds no shard-*.h5 files; nothing to index")
    entries, first = [], None
    for path in shards:
        attrs = shard_attrs(path)
        key = {k: attrs[k] for k in ("dataset", "split", "seed", "config", "total_scenes", "shard_size")}
        if first is None:
            first = key
        elif key != first:
            raise UserError(f"{path} belongs to another run (dataset, split, seed or config differ); move it out of {folder}")
        entries.append({"file": path.name, "index": int(attrs["shard_index"]), "n": attrs["n"], "sha256": sha256_file(path)})
    assert first is not None
    made = sum(e["n"] for e in entries)
    expected = -(-first["total_scenes"] // first["shard_size"])
    manifest = {
        **build_header(first["dataset"], first["split"], first["seed"], first["config"], first["total_scenes"], first["shard_size"]),
        "shards": entries,
        "made": made,
        "complete": len(entries) == expected and made == first["total_scenes"],
        "provenance": shard_attrs(shards[0]).get("provenance", {}),
    }
    write_json_atomic(folder / MANIFEST, manifest)
    return manifest


def build_header(dataset: str, split: str, seed: int, config: dict, n: int, shard_size: int) -> dict[str, Any]:
    """The manifest fields that identify a run; resuming requires them to match."""
    from scenegen.shards import GENERATOR_VERSION, SCHEMA_VERSION

    return {
        "dataset": dataset,
        "split": split,
        "seed": seed,
        "config": config,
        "n": n,
        "shard_size": shard_size,
        "schema_version": SCHEMA_VERSION,
        "generator_version": GENERATOR_VERSION,
    }
