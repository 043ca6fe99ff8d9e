"""Arrow Room render benchmark: images/min of the batched workers vs one Blender start per scene.

Both ways render the same kind of scenes (128x128, --samples, Intel denoiser) on --workers
concurrent processes with one Cycles thread each, in the same run:
  batched: what `scenegen make arrow-room --workers W` does: the runner's process pool, one Blender
           worker per shard that renders its whole shard (start-up paid once per shard), shards
           written to a temporary folder.
  naive:   a fresh Blender process per scene (import bpy + BlenderProc, build the scene, render one
           image, exit): what one `blenderproc run` per scene costs. `blenderproc run` itself
           cannot run offline (it downloads its own Blender), so its start-up is, if anything,
           longer than measured here.
Targets (issue): batched >= 100 images/min on a 2-core CPU, and >= 5x naive. Prints results only.

Wall-clock rates depend on what else the machine runs, so the CPU seconds each way spends per image
(all its processes, from getrusage) are printed too, with the rate they imply on --workers idle
cores: that estimate does not move with the load average.

    python benchmarks/bench_arrow_render.py                     # 60 batched, 8 naive, 2 workers
    python benchmarks/bench_arrow_render.py --n 120 --naive-n 10
"""

from __future__ import annotations

import argparse
import os
import resource
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from scenegen.datasets.arrow_room import ArrowRoomConfig, sample_scene
from scenegen.datasets.arrow_room.client import RenderWorker
from scenegen.runner import MakeRequest, make_split

TARGET_PER_MIN = 100.0
TARGET_SPEEDUP = 5.0


def batched(cfg: ArrowRoomConfig, n: int, workers: int) -> float:
    """Seconds for `scenegen make` of n scenes in `workers` shards on `workers` processes."""
    with tempfile.TemporaryDirectory(prefix="bench-arrow-") as tmp:
        request = MakeRequest("arrow-room", cfg, "train", n, Path(tmp) / "train", seed=0,
                              shard_size=-(-n // workers), workers=workers, options={"threads": 1})
        start = time.perf_counter()
        make_split(request, progress=False)
        return time.perf_counter() - start


def naive_one(cfg: ArrowRoomConfig, seed: int) -> None:
    scene = sample_scene(cfg, np.random.default_rng(seed))
    with RenderWorker(cfg, device="cpu", threads=1) as worker:
        worker.render([scene.to_render(cfg)])


def naive(cfg: ArrowRoomConfig, n: int, workers: int) -> float:
    """Seconds for n scenes, each in its own fresh Blender process, `workers` at a time."""
    start = time.perf_counter()
    with ThreadPoolExecutor(workers) as pool:
        list(pool.map(lambda s: naive_one(cfg, s), range(n)))
    return time.perf_counter() - start


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def timed(fn, *args) -> tuple[float, float]:
    """(wall seconds, CPU seconds of finished child processes) of fn(*args)."""
    cpu = children_cpu()
    start = time.perf_counter()
    fn(*args)
    return time.perf_counter() - start, children_cpu() - cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=60, help="scenes for the batched way")
    parser.add_argument("--naive-n", type=int, default=8, help="scenes for the naive way")
    parser.add_argument("--workers", type=int, default=2, help="concurrent render processes (default 2: this CI's cores)")
    parser.add_argument("--samples", type=int, default=32)
    args = parser.parse_args()
    cfg = ArrowRoomConfig(samples=args.samples)
    print(f"cores: {os.cpu_count()}, load average before: {os.getloadavg()[0]:.1f}, samples: {args.samples}, workers: {args.workers}")
    t_naive, cpu_naive = timed(naive, cfg, args.naive_n, args.workers)
    t_batched, cpu_batched = timed(batched, cfg, args.n, args.workers)
    rows = {"batched": (args.n, t_batched, cpu_batched), "naive": (args.naive_n, t_naive, cpu_naive)}
    rate = {}
    for name, (n, wall, cpu) in rows.items():
        rate[name] = (60 * n / wall, 60 * n * args.workers / cpu)
        print(f"{name:8s} {n:4d} images in {wall:6.1f} s = {rate[name][0]:6.1f} images/min wall-clock; "
              f"{cpu / n:5.2f} CPU s/image = {rate[name][1]:6.1f} images/min on {args.workers} idle cores")
    for label, k in (("wall-clock", 0), ("CPU-time", 1)):
        per_min, speedup = rate["batched"][k], rate["batched"][k] / rate["naive"][k]
        print(f"{label:10s}: batched {per_min:6.1f} images/min (target >= {TARGET_PER_MIN:.0f}: "
              f"{'met' if per_min >= TARGET_PER_MIN else 'NOT met'}), {speedup:4.1f}x naive "
              f"(target >= {TARGET_SPEEDUP:.0f}x: {'met' if speedup >= TARGET_SPEEDUP else 'NOT met'})")
    print(f"load average after: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
