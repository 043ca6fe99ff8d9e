"""Arrow Room render benchmark: images/min of the batched workers vs one `blenderproc run` per scene.

All ways render the same kind of scenes (128x128, --samples, Intel denoiser) in the same run:
  batched:    what `scenegen make arrow-room --workers W` does: the runner's process pool, one
              Blender worker per shard of the dataset's default size (250 scenes), W processes of
              one Cycles thread each, shards written to a temporary folder.
  naive:      one `blenderproc run SCRIPT` per scene through BlenderProc 2.8.0's own command line
              (its launcher process, temp folder and Blender subprocess), with
              `--custom-blender-path` pointing at a stand-in for the Blender binary: a Python that
              runs the script, whose BlenderProc import starts Blender (the bpy wheel). The script
              (blenderproc_run_scene.py) imports BlenderProc's whole API, initialises, builds the
              scene, renders it, writes it and exits. Two ways to run it:
      naive xW: W scenes at a time, one Cycles thread each (the same parallelism as batched);
      naive x1: a plain loop, one scene at a time, Cycles on all cores (Blender's default).
Not measured: downloading Blender and BlenderProc's pip check at start, which need internet; a
real Blender binary also reads its startup file and add-ons, which the bpy wheel does at import.
Targets (issue): batched >= 100 images/min on a 2-core CPU, and >= 5x naive. Prints results only.

Wall-clock rates depend on what else the machine runs, so the CPU seconds each way spends per image
(all its processes, from getrusage) are printed too, with the rate they imply on --workers idle
cores: that estimate does not move with the load average.

    python benchmarks/bench_arrow_render.py                  # 500 batched, 8 + 8 naive, 2 workers
    python benchmarks/bench_arrow_render.py --n 250 --naive-n 4
    python benchmarks/bench_arrow_render.py --gpu --workers 2  # images/min on the GPU (no naive way)
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Callable

import numpy as np

from scenegen.datasets.arrow_room import ArrowRoomConfig, sample_scene
from scenegen.errors import UserError
from scenegen.runner import MakeRequest, make_split

TARGET_PER_MIN = 100.0
TARGET_SPEEDUP = 5.0
SCENE_SCRIPT = Path(__file__).with_name("blenderproc_run_scene.py")

# `blenderproc run --custom-blender-path DIR` runs DIR/blender and wants a DIR/<major version> folder.
STAND_IN_BLENDER = """#!{python}
# Stands in for Blender 4.2's binary: runs the --python script with this Python, where importing bpy
# starts Blender. BlenderProc's in-Blender pip check needs internet: skipped as in blender_env.py.
import os, runpy, sys
os.environ.pop("INSIDE_OF_THE_INTERNAL_BLENDER_PYTHON_ENVIRONMENT", None)
os.environ["OUTSIDE_OF_THE_INTERNAL_BLENDER_PYTHON_ENVIRONMENT_BUT_IN_RUN_SCRIPT"] = "1"
runpy.run_path(sys.argv[sys.argv.index("--python") + 1], run_name="__main__")
"""


def blenderproc_cli() -> str:
    """BlenderProc's console script: the one pip put beside this Python, else the first on PATH."""
    beside = Path(sys.executable).with_name("blenderproc")
    found = str(beside) if beside.exists() else shutil.which("blenderproc")
    if found is None:
        raise SystemExit('no blenderproc command found; install the render extra: pip install -e ".[render]"')
    return found


def batched(cfg: ArrowRoomConfig, n: int, workers: int, tmp: Path, gpu: bool = False) -> None:
    """`scenegen make` of n scenes in shards of the default size on `workers` processes (one CPU thread each, or the GPU)."""
    request = MakeRequest("arrow-room", cfg, "train", n, tmp / "train", seed=0, workers=workers,
                          options={"gpu": True} if gpu else {"threads": 1})
    make_split(request, progress=False)


def stand_in_blender(tmp: Path) -> Path:
    """A folder `blenderproc run --custom-blender-path` accepts: ./blender and ./4.2/."""
    folder = tmp / "blender-4.2-bpy"
    (folder / "4.2").mkdir(parents=True)
    binary = folder / "blender"
    binary.write_text(STAND_IN_BLENDER.format(python=sys.executable))
    binary.chmod(0o755)
    return folder


def naive(cfg: ArrowRoomConfig, n: int, concurrent: int, threads: int, tmp: Path) -> list[Path]:
    """n scenes (seeds 0..n-1), each its own `blenderproc run`, `concurrent` at a time, Cycles on `threads`
    threads (0: all); returns the .npz each wrote (image uint8 [S,S,3], mask uint8 [S,S])."""
    blender, cli = stand_in_blender(tmp / f"naive-{concurrent}"), blenderproc_cli()

    def one(seed: int) -> Path:
        job, out = tmp / f"job-{concurrent}-{seed}.json", tmp / f"scene-{concurrent}-{seed}.npz"
        scene = sample_scene(cfg, np.random.default_rng(seed))
        job.write_text(json.dumps({"config": cfg.to_dict(), "scene": scene.to_render(cfg)}))
        subprocess.run([cli, "run", "--custom-blender-path", str(blender), "--temp-dir", str(tmp),
                        str(SCENE_SCRIPT), str(job), str(out), str(threads)],
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
        if not out.exists():  # the exit status says nothing (BlenderProc crashes at exit): judge by the file
            raise RuntimeError(f"blenderproc run wrote no {out.name}; run it by hand to see why")
        return out

    with ThreadPoolExecutor(concurrent) as pool:
        return list(pool.map(one, range(n)))


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def timed(fn: Callable[[], object]) -> tuple[float, float]:
    """(wall seconds, CPU seconds of finished child processes and theirs) of fn()."""
    cpu = children_cpu()
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start, children_cpu() - cpu


def measure(args: argparse.Namespace, cfg: ArrowRoomConfig, tmp: Path) -> dict[str, tuple[int, float, float]]:
    """{way: (images, wall seconds, CPU seconds)} for the ways args asks for."""
    w = args.workers
    if args.gpu:  # the first GPU render loads (on new GPUs: compiles) Cycles' kernels: time it apart
        first = timed(lambda: batched(cfg, 2, 1, tmp / "first", gpu=True))[0]
        print(f"GPU start-up: 2 images in {first:.1f} s (Blender start, kernel load or compile, 2 renders)")
        ways = [("batched", args.n, lambda: batched(cfg, args.n, w, tmp, gpu=True))]
    else:
        ways = [(f"naive x{w}", args.naive_n, lambda: naive(cfg, args.naive_n, w, 1, tmp)),
                ("naive x1", args.naive_n, lambda: naive(cfg, args.naive_n, 1, 0, tmp)),
                ("batched", args.n, lambda: batched(cfg, args.n, w, tmp))]
    return {way: (n, *timed(fn)) for way, n, fn in ways}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=500, help="scenes for the batched way (default: 2 shards of 250)")
    parser.add_argument("--naive-n", type=int, default=8, help="scenes for each naive way")
    parser.add_argument("--workers", type=int, default=2, help="concurrent render processes (default 2: this CI's cores)")
    parser.add_argument("--samples", type=int, default=32)
    parser.add_argument("--gpu", action="store_true", help="time the batched way on the GPU only (--workers processes share it)")
    args = parser.parse_args()
    cfg = ArrowRoomConfig(samples=args.samples)
    w = args.workers
    print(f"cores: {os.cpu_count()}, load average before: {os.getloadavg()[0]:.1f}, samples: {args.samples}, workers: {w}")
    with tempfile.TemporaryDirectory(prefix="bench-arrow-") as name:
        try:
            rows = measure(args, cfg, Path(name))
        except UserError as exc:  # e.g. --gpu without a GPU: one line, no traceback
            raise SystemExit(f"error: {exc}")
    rate = {}
    for name, (n, wall, cpu) in rows.items():
        rate[name] = (60 * n / wall, 60 * n * w / cpu)
        print(f"{name:9s} {n:4d} images in {wall:6.1f} s = {rate[name][0]:6.1f} images/min wall-clock; "
              f"{cpu / n:5.2f} CPU s/image = {rate[name][1]:6.1f} images/min on {w} idle cores")
    per_min = rate["batched"][0]
    print(f"batched: {per_min:.1f} images/min wall-clock (target >= {TARGET_PER_MIN:.0f}: "
          f"{'met' if per_min >= TARGET_PER_MIN else 'NOT met'})")
    for naive_way in () if args.gpu else (f"naive x{w}", "naive x1"):
        for label, k in (("wall-clock", 0), ("CPU-time", 1)):
            speedup = rate["batched"][k] / rate[naive_way][k]
            print(f"  vs {naive_way:9s} {label:10s}: {speedup:4.1f}x (target >= {TARGET_SPEEDUP:.0f}x: "
                  f"{'met' if speedup >= TARGET_SPEEDUP else 'NOT met'})")
    print(f"load average after: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
