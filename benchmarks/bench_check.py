"""Benchmark: `RuleChecker.check` on 10,000 generated 128x128 images (target: under 60 s on the 2-core CPU).

The images are real test scenes made in memory (MNIST-10 by default: ten digits each, the most work per
image). The recogniser is loaded from the cache, or fitted once first (not timed). Prints seconds,
images/s, the CPU seconds, the ratio to the target, torch's thread count and the machine's load average (on a shared
machine the wall time depends on it).

    python benchmarks/bench_check.py [--dataset mnist10] [--n 10000] [--digits bundled]
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np
import torch

from scenegen.check import RuleChecker, summarize
from scenegen.seeds import shard_rng

TARGET_SECONDS = 60.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", default="mnist10")
    parser.add_argument("--n", type=int, default=10_000)
    parser.add_argument("--digits", default="bundled")
    args = parser.parse_args()

    checker = RuleChecker.for_dataset(args.dataset, digits=args.digits)
    spec, cfg = checker.spec, checker.cfg
    scenes = spec.make_shard(cfg, "test", shard_rng(0, "bench", 0), args.n, spec.prepare(cfg, "test", {"digits": args.digits}))
    images = np.stack([s.image[:, :, 0] for s in scenes])  # uint8 [N, 128, 128]

    start, cpu = time.perf_counter(), time.process_time()
    verdicts = checker.check(images)
    seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
    summary = summarize(verdicts)
    print(f"{args.dataset}: checked {args.n} images in {seconds:.1f} s ({cpu:.1f} s of CPU) = {args.n / seconds:.0f} images/s "
          f"(target {TARGET_SECONDS:.0f} s for 10,000: {seconds / args.n * 10_000 / TARGET_SECONDS:.2f} of it); "
          f"S-Acc of these real scenes {summary.s_acc:.3f}; {torch.get_num_threads()} torch threads, "
          f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")


if __name__ == "__main__":
    main()
