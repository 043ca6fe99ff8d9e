"""GPU benchmark of GNM training, in two parts that each fit one 10-minute device command.

speed: training-step speed of each recipe (the loop's own train_step, random input, the
    recipe's coefficients at changing steps) at batch 32 in fp32, bf16 autocast, bf16 +
    channels_last and bf16 + torch.compile (compile time reported apart), then the fastest
    eager setting at growing batches until memory runs out or images/s stop growing.
    Reports ms/step, images/s and peak GPU memory -> OUT/speed.json.
train: a quick MNIST-4 run sized to --minutes of wall clock: the gnm-mnist4-quick recipe at
    batch 32 with its schedule stretched to the number of steps that fit, judged every sixth
    of the run (S-Acc when scenegen.check is installed), then box AP on the test split.
    -> OUT/train.json (S-Acc over time, AP, speed), OUT/samples.png, OUT/recon.png,
    OUT/curves.png and OUT/model.pt (weights only, < 16 MB).

    python benchmarks/bench_gnm_gpu.py speed --out $OUT
    python benchmarks/bench_gnm_gpu.py train --out $OUT --minutes 8.5 [--data DIR --test-data DIR]

The rule checker fits its digit recogniser once (minutes) and caches it under $SCENEGEN_CACHE:
fit it before the device run (see docs/training.md) and carry the cache folder.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from gnm.config import RunConfig, apply_overrides, resolve_run_config  # noqa: E402
from gnm.model import GNM  # noqa: E402
from gnm.train.checkpoint import export_model, load_checkpoint, load_model  # noqa: E402
from gnm.train.distributed import DistContext  # noqa: E402
from gnm.train.loop import make_optimizer, train, train_step  # noqa: E402
from gnm.train.schedules import ScheduleEntry, coefficients  # noqa: E402

RECIPES = ROOT / "recipes"
SPEED_RECIPES = ("gnm-mnist4", "gnm-arrow")
# (name, amp, channels_last, compile)
SETTINGS = (("fp32", False, False, False), ("bf16", True, False, False),
            ("bf16+channels_last", True, True, False), ("bf16+compile", True, False, True))
BATCH_LADDER = (64, 128, 256, 512)


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed_steps(cfg: RunConfig, batch: int, device: torch.device, amp: bool, channels_last: bool,
                compile_: bool, steps: int = 12, warmup: int = 4) -> dict[str, float]:
    """Median ms/step of `steps` training steps after `warmup` (first-step time kept apart).
    amp and channels_last apply on CUDA only (as in the training loop)."""
    cuda = device.type == "cuda"
    amp, channels_last = amp and cuda, channels_last and cuda
    torch.manual_seed(0)
    memory_format = torch.channels_last if channels_last else torch.contiguous_format
    model = GNM(cfg.model).to(device, memory_format=memory_format)
    net = torch.compile(model) if compile_ else model
    optimizer = make_optimizer(cfg.train, model)
    ctx = DistContext(0, 1, device)
    x = torch.rand(batch, cfg.model.channels, cfg.model.image_size, cfg.model.image_size, device=device)
    if cuda:
        torch.cuda.reset_peak_memory_stats(device)
    times = []
    for i in range(warmup + steps):
        sync(device)
        start = time.perf_counter()
        train_step(net, optimizer, x, coefficients(cfg.schedule, 100 * i), ctx,
                   amp=amp, memory_format=memory_format, grad_clip=cfg.train.grad_clip)
        sync(device)
        times.append(time.perf_counter() - start)
    ms = 1000 * statistics.median(times[warmup:])
    return {"batch": batch, "ms_per_step": ms, "images_per_s": 1000 * batch / ms, "first_step_s": times[0],
            "peak_gib": torch.cuda.max_memory_allocated(device) / 2**30 if cuda else float("nan")}


def speed(out: Path, device: torch.device, recipes: list[str], max_batch: int, with_compile: bool) -> None:
    gpu = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    results: dict[str, Any] = {"torch": torch.__version__, "device": gpu, "recipes": {}}
    for name in recipes:
        cfg = resolve_run_config(RECIPES / f"{name}.yaml")
        rows = {}
        for label, amp, channels_last, compile_ in SETTINGS:
            if compile_ and not with_compile:
                continue
            rows[label] = timed_steps(cfg, 32, device, amp, channels_last, compile_)
            print(f"{name:10} {label:20} batch 32: {rows[label]['ms_per_step']:7.1f} ms/step "
                  f"{rows[label]['images_per_s']:7.0f} img/s {rows[label]['peak_gib']:6.2f} GiB "
                  f"(first step {rows[label]['first_step_s']:.1f} s)", flush=True)
        eager = min((k for k in rows if "compile" not in k), key=lambda k: rows[k]["ms_per_step"])
        _, amp, channels_last, _ = next(s for s in SETTINGS if s[0] == eager)
        best = rows[eager]
        ladder = []
        for batch in (b for b in BATCH_LADDER if b <= max_batch):
            try:
                row = timed_steps(cfg, batch, device, amp, channels_last, False, steps=6, warmup=2)
            except torch.cuda.OutOfMemoryError:
                torch.cuda.empty_cache()
                break
            ladder.append(row)
            print(f"{name:10} {eager:20} batch {batch}: {row['ms_per_step']:7.1f} ms/step "
                  f"{row['images_per_s']:7.0f} img/s {row['peak_gib']:6.2f} GiB", flush=True)
            if row["images_per_s"] < 1.05 * best["images_per_s"]:
                break
            best = row
        results["recipes"][name] = {"batch32": rows, "fastest_eager": eager, "batches": ladder, "best": best}
    (out / "speed.json").write_text(json.dumps(results, indent=2))


def stretched(cfg: RunConfig, steps: int) -> RunConfig:
    """The config with train.steps = steps and every schedule entry's steps scaled alike."""
    factor = steps / cfg.train.steps
    table = {name: ScheduleEntry(e.start_value, e.end_value, round(e.start_step * factor), round(e.end_step * factor))
             for name, e in cfg.schedule.items()}
    return replace(cfg, train=replace(cfg.train, steps=steps), schedule=table)


def make_data(folder: Path, split: str, n: int) -> Path:
    """A split of MNIST-4 made with scenegen (bundled digits) unless it exists."""
    if not (folder / split).is_dir():
        subprocess.run([sys.executable, "-m", "scenegen", "make", "mnist4", "--n", str(n), "--split", split,
                        "--out", str(folder), "--digits", "bundled"], check=True, cwd=ROOT)
    return folder / split


def quick_train(out: Path, device: torch.device, minutes: float, data: Path, test_data: Path,
                recipe: str, overrides: list[str]) -> None:
    started = time.perf_counter()
    base = apply_overrides(resolve_run_config(RECIPES / f"{recipe}.yaml"), [
        "train.batch_size=32", f"train.device={device.type}", "train.num_workers=4", "train.log_every=50",
        "train.n_check_samples=250", *overrides])
    probe = timed_steps(base, base.train.batch_size, device, base.train.amp, base.train.channels_last,
                        base.train.compile, steps=10, warmup=3)
    reserve_s = 90  # checks, evaluation, pictures
    budget_s = minutes * 60 - (time.perf_counter() - started) - reserve_s
    steps = max(10, int(0.9 * budget_s * 1000 / probe["ms_per_step"]))
    cfg = stretched(base, steps)
    cfg = replace(cfg, train=replace(cfg.train, sample_every=max(1, steps // 6), ckpt_every=steps,
                                     image_every=max(1, steps // 6)))
    print(f"quick run: {steps} steps at {probe['ms_per_step']:.1f} ms/step (batch {cfg.train.batch_size})", flush=True)
    run = Path("/tmp/gnm-quick-run")
    shutil.rmtree(run, ignore_errors=True)
    t0 = time.perf_counter()
    result = train(cfg, data, run, say=print)
    train_s = time.perf_counter() - t0

    from gnm.cli import evaluate, reconstruct, sample  # the CLI commands as functions

    sample(run=run, n=64, out=out / "samples.png", seed=0, device=device.type)
    reconstruct(run=run, data=test_data, out=out / "recon.png", n=8, device=device.type)
    evaluate(run=run, data=test_data, json_out=out / "eval.json", batch_size=64,
             n_samples=cfg.train.n_check_samples, device=device.type)
    export_model(load_checkpoint(result.checkpoint), out / "model.pt")
    if (run / "curves.png").is_file():
        shutil.copy(run / "curves.png", out / "curves.png")
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    summary = {
        "steps": result.step, "skipped": result.skipped, "train_s": train_s, "probe": probe,
        "images_per_s": result.step * cfg.train.batch_size / train_s,
        "s_acc_over_time": [r for r in records if r["group"] == "check"],
        "loss_over_time": [{"step": r["step"], "loss": r["loss"], "elbo": r.get("elbo")} for r in records if r["group"] == "loss"][::4],
        "eval": json.loads((out / "eval.json").read_text()),
        "model_mib": (out / "model.pt").stat().st_size / 2**20,
        "load_check": load_model(out / "model.pt", device)[2],
    }
    (out / "eval.json").unlink()
    (out / "train.json").write_text(json.dumps(summary, indent=2))
    print(json.dumps({k: v for k, v in summary.items() if k not in ("loss_over_time",)}, indent=2))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("part", choices=("speed", "train"))
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--device", default="cuda", help="cuda, or cpu for a dry run of the script")
    parser.add_argument("--recipes", nargs="+", default=list(SPEED_RECIPES), help="speed: recipes to time")
    parser.add_argument("--max-batch", type=int, default=BATCH_LADDER[-1], help="speed: largest batch tried")
    parser.add_argument("--no-compile", action="store_true", help="speed: skip the torch.compile setting")
    parser.add_argument("--recipe", default="gnm-mnist4-quick", help="train: the recipe (batch 32 and the schedule stretched)")
    parser.add_argument("--minutes", type=float, default=8.5, help="train: wall clock of the whole part")
    parser.add_argument("--data", type=Path, default=None, help="train: MNIST-4 train split (default: made here)")
    parser.add_argument("--test-data", type=Path, default=None, help="train: MNIST-4 test split (default: made here)")
    parser.add_argument("overrides", nargs="*", help="train: key=value overrides of the quick recipe")
    args = parser.parse_intermixed_args()
    if args.device == "cuda" and not torch.cuda.is_available():
        sys.exit("error: no CUDA GPU here; pass --device cpu for a dry run")
    device = torch.device(args.device)
    args.out.mkdir(parents=True, exist_ok=True)
    if args.part == "speed":
        speed(args.out, device, args.recipes, args.max_batch, not args.no_compile)
        return
    data = args.data or make_data(Path("/tmp/gnm-bench-data"), "train", 30000)
    test_data = args.test_data or make_data(Path("/tmp/gnm-bench-data"), "test", 1000)
    quick_train(args.out, device, args.minutes, data, test_data, args.recipe, args.overrides)


if __name__ == "__main__":
    main()
