"""Make one split as independent shard tasks: worker processes, resume, a folder lock, cluster task slices.

Shard i of a split holds scenes [i * shard_size, (i + 1) * shard_size) and draws every random choice
from its own generator (seed, split, i), so the bytes do not depend on how many workers made them.
"""

from __future__ import annotations

import fcntl
import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor, as_completed
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

from tqdm import tqdm

from scenegen.config import DatasetConfig
from scenegen.datasets import get_spec
from scenegen.errors import UserError
from scenegen.manifest import MANIFEST, build_header, load_manifest, sha256_file, write_json_atomic
from scenegen.seeds import shard_rng
from scenegen.shards import BOX_FORMAT, GENERATOR_VERSION, SCHEMA_VERSION, shard_attrs, shard_name, stack_scenes, write_shard


@dataclass(frozen=True)
class MakeRequest:
    """Everything that decides a split's bytes, plus how to spread the work.

    task_index/task_count: this invocation makes shards i with i % task_count == task_index
    (a cluster job array); with task_count > 1 the manifest is left to `scenegen index`.
    """

    dataset: str
    config: DatasetConfig
    split: str
    n: int
    out: Path
    seed: int = 0
    shard_size: int | None = None  # None: the dataset's default
    workers: int = 1
    options: dict[str, Any] | None = None
    overwrite: bool = False
    task_index: int = 0
    task_count: int = 1


@dataclass(frozen=True)
class ShardTask:
    """One shard to make in a worker process (picklable)."""

    dataset: str
    config: dict[str, Any]
    index: int
    n: int
    path: Path
    attrs: dict[str, Any]
    resources: Any


def make_split(req: MakeRequest, progress: bool = True) -> dict[str, Any]:
    """Make (or finish) a split; returns the manifest. Re-running keeps complete, verified shards."""
    if req.n < 1:
        raise UserError(f"--n must be at least 1, not {req.n}")
    if not 0 <= req.task_index < req.task_count:
        raise UserError(f"--shard-index {req.task_index} must lie in [0, --num-shards={req.task_count})")
    spec = get_spec(req.dataset)
    shard_size = spec.shard_size if req.shard_size is None else req.shard_size
    if shard_size < 1:
        raise UserError(f"--shard-size must be at least 1, not {shard_size}")
    header = build_header(req.dataset, req.split, req.seed, req.config.to_dict(), req.n, shard_size)
    folder = _create_folder(req.out)
    lock_name = ".lock" if req.task_count == 1 else f".lock-task-{req.task_index}-of-{req.task_count}"
    with _folder_lock(folder / lock_name):
        _claim_folder(folder, header, req.overwrite)
        counts = [min(shard_size, req.n - start) for start in range(0, req.n, shard_size)]
        mine = [i for i in range(len(counts)) if i % req.task_count == req.task_index]
        # the processes that will share the cores: no more than the shards (a 1-shard split gets every core)
        concurrent = max(1, min(req.workers, len(mine)))
        resources = spec.prepare(req.config, req.split, {**(req.options or {}), "workers": concurrent})
        provenance = resources.provenance()
        previous = load_manifest(folder)
        known = {e["file"]: e["sha256"] for e in (previous or {}).get("shards", [])}
        attrs = {
            "dataset": req.dataset, "split": req.split, "seed": req.seed, "config": header["config"],
            "schema_version": SCHEMA_VERSION, "generator_version": GENERATOR_VERSION, "box_format": BOX_FORMAT,
            "total_scenes": req.n, "shard_size": shard_size, "provenance": provenance,
            **(spec.extra_attrs(req.config) if spec.extra_attrs else {}),
        }
        for i in mine:  # temp files left by a killed run of this very slice
            for stale in folder.glob(f".{shard_name(i)}.tmp-*"):
                stale.unlink()
        done = {i: _kept_shard(folder / shard_name(i), attrs, i, counts[i], known) for i in mine}
        todo = [
            ShardTask(req.dataset, header["config"], i, counts[i], folder / shard_name(i), {**attrs, "shard_index": i}, resources)
            for i in mine
            if done[i] is None
        ]
        manifest = {**header, "provenance": provenance, "shards": [], "made": 0, "complete": False}
        bar = tqdm(total=sum(counts[i] for i in mine), initial=sum(counts[i] for i in mine if done[i]),
                   unit="scene", desc=f"{req.dataset}/{req.split}", disable=not progress)
        for index, entry in _run(todo, req.workers):
            done[index] = entry
            bar.update(entry["n"])
            if req.task_count == 1:
                _write_manifest(folder, manifest, done, len(counts))
        bar.close()
        if req.task_count == 1:
            return _write_manifest(folder, manifest, done, len(counts))
        return {**manifest, "shards": [e for e in done.values() if e], "made": sum(e["n"] for e in done.values() if e)}


def _write_manifest(folder: Path, manifest: dict, done: dict[int, dict | None], total_shards: int) -> dict:
    entries = [done[i] for i in sorted(done) if done[i] is not None]
    made = sum(e["n"] for e in entries)
    manifest = {**manifest, "shards": entries, "made": made, "complete": len(entries) == total_shards}
    write_json_atomic(folder / MANIFEST, manifest)
    return manifest


def _kept_shard(path: Path, attrs: dict, index: int, n: int, known: dict[str, str]) -> dict | None:
    """The manifest entry of an existing, complete shard of this very run; None if it must be made."""
    if not path.exists():
        return None
    try:
        found = shard_attrs(path)
    except UserError:
        return None  # corrupt: make it again
    expected = {**attrs, "shard_index": index}
    same = all(found.get(k) == v for k, v in expected.items()) and found["n"] == n
    digest = sha256_file(path)
    if not same or (path.name in known and known[path.name] != digest):
        return None
    return {"file": path.name, "index": index, "n": n, "sha256": digest}


def _run(tasks: list[ShardTask], workers: int) -> Iterator[tuple[int, dict]]:
    """Make the shards, in this process or in `workers` spawned processes; yields as each finishes."""
    if workers <= 1 or len(tasks) <= 1:
        for task in tasks:
            yield task.index, make_shard_file(task)
        return
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=min(workers, len(tasks)), mp_context=context) as pool:
        futures = [pool.submit(make_shard_file, task) for task in tasks]
        for future in as_completed(futures):
            entry = future.result()
            yield entry["index"], entry


def make_shard_file(task: ShardTask) -> dict[str, Any]:
    """Generate and write one shard; returns its manifest entry."""
    spec = get_spec(task.dataset)
    cfg = spec.config_type.from_dict(task.config)
    rng = shard_rng(task.attrs["seed"], task.attrs["split"], task.index)
    scenes = spec.make_shard(cfg, task.attrs["split"], rng, task.n, task.resources)
    write_shard(task.path, stack_scenes(scenes, spec.max_objects(cfg)), task.attrs)
    return {"file": task.path.name, "index": task.index, "n": task.n, "sha256": sha256_file(task.path)}


def _create_folder(folder: Path) -> Path:
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UserError(f"cannot create {folder} ({exc.strerror}); choose a writable --out")
    if not os.access(folder, os.W_OK):
        raise UserError(f"{folder} is not writable; choose a writable --out")
    return folder


def _claim_folder(folder: Path, header: dict[str, Any], overwrite: bool) -> None:
    """Refuse a folder that holds another dataset, config or seed, or foreign files (unless overwrite)."""
    if overwrite:
        for path in folder.glob("shard-*.h5"):
            path.unlink()
        (folder / MANIFEST).unlink(missing_ok=True)
        return
    previous = load_manifest(folder)
    if previous is None:
        shards = sorted(folder.glob("shard-*.h5"))
        if shards:  # a cluster task slice without manifest yet: compare with one of its shards
            attrs = shard_attrs(shards[0])
            previous = build_header(attrs["dataset"], attrs["split"], attrs["seed"], attrs["config"],
                                    attrs["total_scenes"], attrs["shard_size"])
    if previous is not None:
        differs = [k for k in header if previous.get(k) != header[k]]
        if differs:
            raise UserError(
                f"{folder} holds a split made with other {', '.join(differs)}; use another --out, or --overwrite to replace it"
            )
        return
    foreign = [p.name for p in folder.iterdir() if not p.name.startswith(".")]
    if foreign:
        raise UserError(f"{folder} is not empty and holds no scenegen split ({foreign[0]} ...); use an empty --out or --overwrite")


@contextmanager
def _folder_lock(path: Path) -> Iterator[None]:
    """Hold an exclusive lock on `path` or refuse at once: two runs never write one folder together."""
    with open(path, "a+") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise UserError(f"another `scenegen make` is writing to {path.parent}; wait for it to finish or choose another --out")
        yield
