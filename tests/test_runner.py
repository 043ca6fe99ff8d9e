"""Shards on disk: byte-identical across worker counts, resumable, locked, verifiable; bad input is one line."""

from __future__ import annotations

import fcntl
import signal
import subprocess
import sys
import time
from pathlib import Path

import h5py
import numpy as np
import pytest

from scenegen.data import ShardDataset
from scenegen.errors import UserError
from scenegen.manifest import index, load_manifest, verify
from scenegen.shards import shard_attrs

from conftest import make, run_cli


def files(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.glob("shard-*.h5"))}


def test_same_seed_same_bytes_whatever_the_worker_count(tmp_path):
    one = make("mnist10", tmp_path / "w1", n=90, workers=1)
    two = make("mnist10", tmp_path / "w2", n=90, workers=2)
    assert one["complete"] and two["complete"] and len(one["shards"]) == 4
    assert files(tmp_path / "w1") == files(tmp_path / "w2")
    make("mnist10", tmp_path / "s1", n=90, seed=1)
    assert files(tmp_path / "s1") != files(tmp_path / "w1")


def test_shard_contents_and_attributes(tmp_path):
    make("mnist4-10", tmp_path, n=30, shard_size=30)
    path = tmp_path / "shard-00000.h5"
    attrs = shard_attrs(path)
    for key in ("dataset", "split", "schema_version", "generator_version", "seed", "shard_index", "config", "box_format"):
        assert key in attrs
    assert attrs["config"]["p_mnist4"] == 0.5
    with h5py.File(path) as f:
        assert f["images"].shape == (30, 128, 128, 1) and f["images"].dtype == np.uint8
        assert f["images"].chunks == (1, 128, 128, 1) and f["images"].compression == "gzip"
        assert f["boxes"].shape == (30, 10, 4) and f["labels"].dtype == np.int16
        n = f["num_objects"][()]
        labels = f["labels"][()]
        assert all((labels[i, k:] == -1).all() and (labels[i, :k] >= 0).all() for i, k in enumerate(n))
        assert set(f["variant"][()]) <= {4, 10}
        assert (f["num_objects"][()] == f["variant"][()]).all()


def test_resume_after_a_killed_run(tmp_path):
    """Kill `scenegen make` after its first shard; re-running finishes with the same bytes as one clean run."""
    args = ["make", "mnist4", "--n", "3000", "--shard-size", "100", "--workers", "1", "--digits", "bundled"]
    proc = subprocess.Popen([sys.executable, "-m", "scenegen", *args, "--out", str(tmp_path / "killed")],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    manifest_path = tmp_path / "killed" / "train" / "manifest.json"
    deadline = time.time() + 120
    while time.time() < deadline and not (manifest_path.exists() and load_manifest(manifest_path.parent)["shards"]):
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    partial = load_manifest(manifest_path.parent)
    assert not partial["complete"] and 0 < partial["made"] < 3000
    assert verify(manifest_path.parent)[-1].endswith("to finish it")  # verify says it is incomplete
    run_cli(*args, "--out", str(tmp_path / "killed"), check=True)
    run_cli(*args, "--out", str(tmp_path / "clean"), check=True)
    assert files(tmp_path / "killed" / "train") == files(tmp_path / "clean" / "train")
    assert load_manifest(manifest_path.parent)["complete"]
    assert not [p for p in (tmp_path / "killed" / "train").iterdir() if ".tmp" in p.name]


def test_rerun_keeps_verified_shards_and_remakes_corrupt_ones(tmp_path):
    make("mnist4", tmp_path, n=50)
    first = tmp_path / "shard-00000.h5"
    before = {p.name: p.stat().st_mtime_ns for p in tmp_path.glob("shard-*.h5")}
    original = first.read_bytes()
    first.write_bytes(original[: len(original) // 2])  # truncated
    assert any("shard-00000.h5" in p for p in verify(tmp_path))
    make("mnist4", tmp_path, n=50)
    assert first.read_bytes() == original
    assert (tmp_path / "shard-00001.h5").stat().st_mtime_ns == before["shard-00001.h5"]
    assert verify(tmp_path) == []


def test_verify_and_loader_name_a_corrupt_shard(tmp_path):
    make("mnist4", tmp_path, n=50)
    path = tmp_path / "shard-00001.h5"
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF  # flip one byte in the middle of the file
    path.write_bytes(bytes(data))
    proc = run_cli("verify", str(tmp_path))
    assert proc.returncode == 1 and "shard-00001.h5" in proc.stderr and "SHA-256" in proc.stderr
    path.write_bytes(bytes(data[:1000]))  # truncated past the header
    ds = ShardDataset(tmp_path)
    with pytest.raises(UserError, match="shard-00001.h5"):
        for i in range(len(ds)):
            ds[i]


def test_a_second_run_on_a_locked_folder_is_refused(tmp_path):
    tmp_path.mkdir(exist_ok=True)
    with open(tmp_path / ".lock", "a+") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        with pytest.raises(UserError, match="another `scenegen make` is writing"):
            make("mnist4", tmp_path, n=10)
    make("mnist4", tmp_path, n=10)  # lock released: fine


def test_two_cluster_jobs_then_index_equal_one_run(tmp_path):
    for task in (0, 1):
        proc = run_cli("make", "mnist10", "--n", "70", "--shard-size", "20", "--digits", "bundled", "--workers", "1",
                       "--out", str(tmp_path / "jobs"), "--num-shards", "2", "--shard-index", str(task), check=True)
        assert "scenegen index" in proc.stdout
    split = tmp_path / "jobs" / "train"
    assert load_manifest(split) is None
    manifest = index(split)
    assert manifest["complete"] and manifest["made"] == 70 and len(manifest["shards"]) == 4
    make("mnist10", tmp_path / "one", n=70, shard_size=20)
    assert files(split) == files(tmp_path / "one")
    assert verify(split) == []


@pytest.mark.parametrize(
    "args,message",
    [
        (["make", "mnist5", "--n", "5"], "unknown dataset 'mnist5'"),
        (["make", "mnist4", "--n", "0"], "--n must be at least 1"),
        (["make", "mnist4", "--n", "5", "--digits", "{tmp}"], "no MNIST files"),
        (["make", "mnist4", "--n", "5", "--set", "colour=red"], "expected KEY=VALUE"),
        (["make", "mnist4", "--n", "5", "--out", "{tmp}/a_file/x"], "cannot create"),
        (["make", "mnist4", "--n", "5", "--out", "{tmp}/foreign"], "not empty"),
        (["make", "mnist4", "--n", "7", "--out", "{tmp}/made"], "made with other n"),
        (["verify", "{tmp}/nothing"], "not a folder"),
        (["preview", "{tmp}/foreign"], "holds no shards"),
    ],
)
def test_bad_input_is_one_clear_line(tmp_path, monkeypatch, args, message):
    monkeypatch.chdir(tmp_path)  # the default --out (./data/DATASET) must not meet a split made before
    (tmp_path / "a_file").write_text("x")
    (tmp_path / "foreign" / "train").mkdir(parents=True)
    (tmp_path / "foreign" / "train" / "notes.txt").write_text("mine")
    make("mnist4", tmp_path / "made" / "train", n=5)
    proc = run_cli(*[a.replace("{tmp}", str(tmp_path)) for a in args])
    assert proc.returncode != 0
    assert message in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
    assert (tmp_path / "foreign" / "train" / "notes.txt").read_text() == "mine"  # nothing lost


def test_overwrite_replaces_a_split_of_another_config(tmp_path):
    make("mnist4", tmp_path / "train", n=5)
    proc = run_cli("make", "mnist4", "--n", "8", "--digits", "bundled", "--out", str(tmp_path), "--overwrite", "--workers", "1")
    assert proc.returncode == 0, proc.stderr
    assert load_manifest(tmp_path / "train")["made"] == 8


def test_prepare_is_told_how_many_processes_will_share_the_cores(tmp_path, monkeypatch):
    """Arrow Room gives each render process cores / processes threads: a 1-shard split must get every core."""
    import dataclasses

    import scenegen.runner as runner

    real = runner.get_spec("mnist10")
    seen: list[int] = []

    def spy(cfg, split, options):
        seen.append(options["workers"])
        return real.prepare(cfg, split, options)

    monkeypatch.setattr(runner, "get_spec", lambda name: dataclasses.replace(real, prepare=spy))
    make("mnist10", tmp_path / "one", n=20, shard_size=20, workers=2)
    make("mnist10", tmp_path / "three", n=60, shard_size=20, workers=2)
    assert seen == [1, 2]
