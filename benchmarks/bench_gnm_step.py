"""GNM training-step benchmark: forward + backward + grad clip + RMSprop step on random input.

Prints ms/step (median wall time of --steps timed steps after --warmup; also the fastest step
and the median process CPU time per step, guides on a shared machine: with --threads 1 the CPU
time is what the step takes on an idle core), images/s and the speed-up over
the authors' release figures quoted in the issue (1.0 s/step at batch 32 and 0.22 s/step at
batch 8 for MNIST-4, 1.8 s/step at batch 32 for Arrow; target: >= 1.5x). With --device cuda
it also prints peak GPU memory. Prints results only; no asserts.

By default glibc malloc is told to keep freed memory (gnm.model.runtime.keep_freed_memory,
about a quarter of a CPU step); --default-malloc measures without it.

    python benchmarks/bench_gnm_step.py                 # CPU, 2 threads
    python benchmarks/bench_gnm_step.py --device cuda
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from gnm.model import GNM, PRESETS
from gnm.model.runtime import keep_freed_memory

RELEASE_S_PER_STEP = {("mnist", 32): 1.0, ("mnist", 8): 0.22, ("arrow", 32): 1.8}
TARGET_SPEEDUP = 1.5
# Coefficients of an early-training step (the compositing cost is the same with alpha forced or not).
COEFFS = {"tau": 1.0, "rho": 0.1, "beta_g": 0.01, "beta_b": 50.0, "alpha_force": -1.0}


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def bench(preset: str, batch: int, device: torch.device, steps: int, warmup: int) -> dict[str, float]:
    """Time `steps` training steps of one preset and batch size; return ms/step and peak memory."""
    torch.manual_seed(0)
    cfg = PRESETS[preset]
    model = GNM(cfg).to(device)
    opt = torch.optim.RMSprop(model.parameters(), lr=1e-4)
    x = torch.rand(batch, cfg.channels, cfg.image_size, cfg.image_size, device=device)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    times, cpu_times = [], []
    for i in range(warmup + steps):
        sync(device)
        start, cpu_start = time.perf_counter(), time.process_time()
        opt.zero_grad(set_to_none=True)
        model(x, COEFFS).loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sync(device)
        if i >= warmup:
            times.append(time.perf_counter() - start)
            cpu_times.append(time.process_time() - cpu_start)
    result = {"ms": 1000 * statistics.median(times), "min_ms": 1000 * min(times),
              "cpu_ms": 1000 * statistics.median(cpu_times)}
    if device.type == "cuda":
        result["peak_mib"] = torch.cuda.max_memory_allocated(device) / 2**20
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--presets", nargs="+", default=["mnist", "arrow"])
    parser.add_argument("--batches", nargs="+", type=int, default=[32, 8])
    parser.add_argument("--default-malloc", action="store_true", help="leave glibc malloc at its defaults")
    args = parser.parse_args()
    tuned = not args.default_malloc and keep_freed_memory()
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    print(f"torch {torch.__version__}, device {device}, threads {torch.get_num_threads()}, "
          f"malloc keeps freed memory: {tuned}, median of {args.steps} steps after {args.warmup} warm-up")
    print(f"{'preset':7} {'batch':>5} {'ms/step':>9} {'min ms':>8} {'cpu ms':>8} {'img/s':>7} {'release ms':>10} "
          f"{'speed-up':>8} {'peak MiB':>9}")
    for preset in args.presets:
        for batch in args.batches:
            r = bench(preset, batch, device, args.steps, args.warmup)
            release = RELEASE_S_PER_STEP.get((preset, batch))
            speedup = f"{1000 * release / r['ms']:7.2f}x" if release else "       -"
            release_ms = f"{1000 * release:10.0f}" if release else "         -"
            peak = f"{r['peak_mib']:9.0f}" if "peak_mib" in r else "        -"
            print(f"{preset:7} {batch:5d} {r['ms']:9.1f} {r['min_ms']:8.1f} {r['cpu_ms']:8.1f} "
                  f"{1000 * batch / r['ms']:7.1f} {release_ms} {speedup} {peak}", flush=True)
    print(f"target: speed-up >= {TARGET_SPEEDUP}x against the release figures")


if __name__ == "__main__":
    main()
