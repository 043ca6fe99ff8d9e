"""Benchmark: make a 60,000-scene MNIST-10 split with 1 and 2 workers against writing the same bytes with h5py alone.

Prints scenes/s for each and the ratio to the ceiling (h5py writing the identical arrays with the same
chunking and compression, one process). Targets (issue 2): the 60k split in under 30 s with the
default workers, at least half of the ceiling.

    python benchmarks/bench_make.py [--n 60000]
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

from scenegen.datasets import get_spec
from scenegen.runner import MakeRequest, make_split
from scenegen.shards import read_arrays, write_shard


def make(out: Path, n: int, workers: int) -> float:
    cfg = get_spec("mnist10").config_type()
    request = MakeRequest("mnist10", cfg, "train", n, out, workers=workers, options={"digits": "bundled"})
    start = time.perf_counter()
    make_split(request, progress=False)
    return time.perf_counter() - start


def raw_write(folder: Path, out: Path) -> float:
    """Seconds for h5py alone to write the same arrays (loaded beforehand) with the same layout."""
    shards = [(p.name, read_arrays(p)) for p in sorted(folder.glob("shard-*.h5"))]
    out.mkdir()
    start = time.perf_counter()
    for name, arrays in shards:
        write_shard(out / name, arrays, {})
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=60000)
    n = parser.parse_args().n
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        timings = {w: make(root / f"w{w}", n, w) for w in (1, 2)}
        ceiling = raw_write(root / "w2", root / "raw")
        print(f"h5py alone (ceiling): {n / ceiling:8.0f} scenes/s  ({ceiling:.1f} s)")
        for workers, seconds in timings.items():
            print(f"scenegen make, {workers} worker(s): {n / seconds:8.0f} scenes/s  ({seconds:.1f} s)  "
                  f"ratio to ceiling {ceiling / seconds:.2f}")
        same = all((root / "w1" / p.name).read_bytes() == p.read_bytes() for p in (root / "w2").glob("shard-*.h5"))
        print(f"1 and 2 workers wrote identical bytes: {same}")
        shutil.rmtree(root / "raw")


if __name__ == "__main__":
    main()
