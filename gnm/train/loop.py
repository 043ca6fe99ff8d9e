"""The training loop: the same code for one process alone and for each rank under torchrun.

Per step: schedule coefficients and learning rate (train.lr_scale) -> forward (bf16 autocast
on CUDA) -> backward -> grad-norm clip -> optimiser step, unless the loss or gradient norm is
non-finite on any rank (then the step is skipped and counted; max_nonfinite in a row stop the
run). Around the steps, rank 0 logs, draws pictures, judges prior samples and writes
checkpoints; everything it does besides training runs under a forked RNG, so logging never
changes what is trained.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.nn.parallel import DistributedDataParallel
from tqdm import tqdm

from gnm.config import RUN_CONFIG_NAME, RunConfig, TrainConfig, save_run_config, to_plain
from gnm.model import GNMSample, build_model
from gnm.model.runtime import keep_freed_memory
from gnm.train.checkpoint import (
    BEST_NAME,
    capture_rng,
    checkpoint_path,
    export_model,
    latest_checkpoint,
    load_checkpoint,
    prune_checkpoints,
    restore_rng,
)
from gnm.train.data import open_dataset, train_batches
from gnm.train.distributed import DistContext, distributed
from gnm.train.images import grid, rgb, to_uint8, with_boxes
from gnm.train.logbook import Logbook, plot_curves
from gnm.train.monitor import StructureMonitor, StructureResult, sample_images
from gnm.train.schedules import coefficients
from scenegen.errors import UserError
from scenegen.manifest import write_torch_atomic

N_PICTURES = 8


class TrainingDiverged(UserError):
    """Too many non-finite losses in a row."""


@dataclass(frozen=True)
class TrainResult:
    """Where a run ended: steps done, steps skipped as non-finite, its newest checkpoint, last S-Acc."""

    step: int
    skipped: int
    checkpoint: Path | None
    s_acc: float | None


def make_optimizer(cfg: TrainConfig, model: torch.nn.Module) -> torch.optim.Optimizer:
    if cfg.optimizer == "adam":
        return torch.optim.Adam(model.parameters(), lr=cfg.lr)
    return torch.optim.RMSprop(model.parameters(), lr=cfg.lr)


def learning_rate(cfg: TrainConfig, step: int) -> float:
    """The learning rate of optimiser step `step` (0-based): cfg.lr * cfg.lr_scale at that step."""
    return cfg.lr * cfg.lr_scale.at(step)


def set_learning_rate(optimizer: torch.optim.Optimizer, lr: float) -> None:
    """Use `lr` for every parameter group from the next optimiser step on."""
    for group in optimizer.param_groups:
        group["lr"] = lr


def noise_seed(seed: int, rank: int, step: int) -> int:
    """Seed of a rank's sampling noise from `step` on (distinct per rank, run seed and step)."""
    return int(np.random.SeedSequence([seed, rank, step]).generate_state(1)[0])


def train_step(
    net: torch.nn.Module, optimizer: torch.optim.Optimizer, images: torch.Tensor, coeffs: dict[str, float],
    ctx: DistContext, *, amp: bool, memory_format: torch.memory_format, grad_clip: float,
) -> tuple[bool, Any, torch.Tensor]:
    """One optimisation step on images [B, C, H, W]: forward (bf16 autocast if amp), backward,
    grad-norm clip (grad_clip <= 0: none), optimiser step unless the loss or the gradient norm
    is non-finite on any rank. Returns (applied, the model's output, gradient norm)."""
    x = images.to(ctx.device, non_blocking=True).contiguous(memory_format=memory_format)
    with torch.autocast(ctx.device.type, dtype=torch.bfloat16, enabled=amp):
        out = net(x, coeffs)
    optimizer.zero_grad(set_to_none=True)
    out.loss.backward()  # also when non-finite, so that DDP's collectives stay matched
    params = [p for group in optimizer.param_groups for p in group["params"]]
    norm = torch.nn.utils.clip_grad_norm_(params, grad_clip if grad_clip > 0 else math.inf)
    applied = ctx.all_true(torch.isfinite(out.loss.detach()) & torch.isfinite(norm))
    if applied:
        optimizer.step()
    return applied, out, norm


class _TermMeter:
    """Running sums of the loss terms over a logging window, kept on the device."""

    def __init__(self) -> None:
        self.sums: dict[str, torch.Tensor] = {}
        self.count = 0

    def add(self, loss: torch.Tensor, terms: dict[str, torch.Tensor]) -> None:
        for name, value in {"loss": loss, **terms}.items():
            value = value.detach().float()
            self.sums[name] = self.sums[name] + value if name in self.sums else value
        self.count += 1

    def pop_means(self, ctx: DistContext) -> dict[str, float]:
        """Window means averaged over ranks; resets the window."""
        if not self.count:
            return {}
        names = sorted(self.sums)
        means = ctx.mean(torch.stack([self.sums[n] for n in names]) / self.count)
        self.sums, self.count = {}, 0
        return dict(zip(names, means.tolist()))


class Trainer:
    """One run in one process: build, restore, train, record."""

    def __init__(self, cfg: RunConfig, data_dir: Path, run_dir: Path, ctx: DistContext, say: Callable[[str], None]):
        self.cfg, self.tc, self.run_dir, self.ctx, self.device = cfg, cfg.train, run_dir, ctx, ctx.device
        self.say = say if ctx.is_main else (lambda _msg: None)
        self.dataset = open_dataset(data_dir, cfg)
        cuda = self.device.type == "cuda"
        self.amp = cuda and self.tc.amp
        self.memory_format = torch.channels_last if cuda and self.tc.channels_last else torch.contiguous_format
        if cuda:
            torch.backends.cudnn.benchmark = True

        torch.manual_seed(self.tc.seed)  # same initial weights on every rank
        self.model = build_model(cfg.model).to(self.device, memory_format=self.memory_format)
        self.optimizer = make_optimizer(self.tc, self.model)
        self.step, self.skipped, self.streak = 0, 0, 0
        self.best_s_acc: float | None = None
        self.last_s_acc: float | None = None
        self.last_checkpoint: Path | None = None
        self._restore()

        net: torch.nn.Module = self.model
        if ctx.world_size > 1:
            net = DistributedDataParallel(
                net, device_ids=[self.device.index] if cuda else None,
                find_unused_parameters=self.tc.find_unused_parameters,
            )
        self.net = torch.compile(net) if self.tc.compile else net
        self.meter = _TermMeter()
        self.logbook: Logbook | None = None
        self.monitor = StructureMonitor(
            self.dataset.dataset_name, self.dataset.config, self.tc.n_check_samples, self.tc.seed, run_dir, self.say
        )

    # ------------------------------------------------------------ state

    def _restore(self) -> None:
        """Continue from the run folder's newest checkpoint, or seed a fresh run's noise."""
        path = latest_checkpoint(self.run_dir)
        if path is None:
            torch.manual_seed(noise_seed(self.tc.seed, self.ctx.rank, 0))
            return
        state = load_checkpoint(path)
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.step, self.skipped, self.best_s_acc = state["step"], state["skipped"], state["best_s_acc"]
        self.last_checkpoint = path
        if (state["world_size"], state["batch_size"]) == (self.ctx.world_size, self.tc.batch_size):
            restore_rng(state["rng"][self.ctx.rank], self.device)
        else:
            self.say(f"note: {path.name} was written with {state['world_size']} processes and batch "
                     f"{state['batch_size']}; noise and data order continue differently from here")
            torch.manual_seed(noise_seed(self.tc.seed, self.ctx.rank, self.step))
        self.say(f"resuming {self.run_dir} from step {self.step} ({path.name})")

    def _save(self, is_best: bool) -> None:
        rng = self.ctx.gather(capture_rng(self.device))  # collective: every rank takes part
        path = checkpoint_path(self.run_dir, self.step)
        self.last_checkpoint = path
        if self.ctx.is_main:
            self._write(path, rng, is_best)
        self.ctx.barrier()  # the file exists for every rank from here on

    def _write(self, path: Path, rng: list[dict[str, Any]], is_best: bool) -> None:
        state: dict[str, Any] = {
            "step": self.step,
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "rng": rng,
            "world_size": self.ctx.world_size,
            "batch_size": self.tc.batch_size,
            "skipped": self.skipped,
            "best_s_acc": self.best_s_acc,
            "config": to_plain(self.cfg),
        }
        write_torch_atomic(path, state)
        prune_checkpoints(self.run_dir, self.tc.keep_last)
        if is_best:
            export_model(state, self.run_dir / BEST_NAME)

    def _count(self, applied: bool) -> None:
        if applied:
            self.streak = 0
            return
        self.skipped += 1
        self.streak += 1
        if self.streak >= self.tc.max_nonfinite:
            last = self.last_checkpoint or "none written yet"
            raise TrainingDiverged(
                f"stopped at step {self.step}: {self.streak} non-finite losses in a row; "
                f"last good checkpoint: {last}; lower train.lr or check the data"
            )

    # ------------------------------------------------------------ side work (rank 0)

    @contextmanager
    def _aside(self) -> Iterator[None]:
        """Eval mode, and the RNG state put back afterwards."""
        with torch.random.fork_rng(devices=[self.device] if self.device.type == "cuda" else []):
            self.model.eval()
            try:
                yield
            finally:
                self.model.train()

    def _log_scalars(self, coeffs: dict[str, float], lr: float, norm: torch.Tensor, window_s: float,
                     window_steps: int) -> None:
        losses = self.meter.pop_means(self.ctx)  # collective
        if not self.ctx.is_main:
            return
        assert self.logbook is not None
        if losses:
            self.logbook.scalars(self.step, "loss", losses)
        self.logbook.scalars(self.step, "schedule", coeffs)
        self.logbook.scalars(self.step, "speed", {
            "images_per_s": window_steps * self.tc.batch_size / window_s,
            "ms_per_step": 1000 * window_s / window_steps,
        })
        self.logbook.scalars(self.step, "train", {"grad_norm": float(norm), "skipped": self.skipped, "lr": lr})

    def _log_pictures(self, images: torch.Tensor, out: Any) -> None:
        """This step's inputs above their reconstructions (with the inferred boxes, for models
        that have boxes); prior samples."""
        assert self.logbook is not None
        n = min(N_PICTURES, len(images))
        sample = out.sample
        recon = (with_boxes(out.recon[:n], sample.boxes[:n], sample.pres[:n] > 0.5) if isinstance(sample, GNMSample)
                 else rgb(to_uint8(out.recon[:n])))
        self.logbook.image(self.step, "reconstruction", grid(torch.cat([rgb(to_uint8(images[:n])), recon]), nrow=n))
        with self._aside():
            self.logbook.image(self.step, "prior_samples", grid(sample_images(self.model, n, self.tc.seed, self.device), nrow=n))

    def _check_structure(self) -> bool:
        """Judge prior samples on rank 0; True (on every rank) when S-Acc is a new best."""
        result: StructureResult | None = None
        if self.ctx.is_main:
            assert self.logbook is not None
            with self._aside():
                result = self.monitor(self.model, self.step, self.device)
            if result.s_acc is not None:
                low, high = result.ci95
                self.logbook.scalars(self.step, "check", {"s_acc": result.s_acc, "ci95_low": low, "ci95_high": high})
                self.say(f"step {self.step}: S-Acc {result.s_acc:.3f} (95% CI {low:.3f}-{high:.3f}, n={result.n}), "
                         f"samples in {result.grid_path.name}")
        self.last_s_acc = self.ctx.from_main(result.s_acc if result else None)
        if self.last_s_acc is None or (self.best_s_acc is not None and self.last_s_acc <= self.best_s_acc):
            return False
        self.best_s_acc = self.last_s_acc
        return True

    # ------------------------------------------------------------ the run

    def run(self) -> TrainResult:
        total = self.tc.steps
        if self.step >= total:
            self.say(f"{self.run_dir} is already at step {self.step} of {total}; pass --steps to train longer")
            return TrainResult(self.step, self.skipped, self.last_checkpoint, None)
        if self.ctx.is_main:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            save_run_config(self.cfg, self.run_dir / RUN_CONFIG_NAME)
            self.logbook = Logbook(self.run_dir)
        batches = train_batches(self.dataset, self.tc.batch_size, self.tc.seed, self.step, self.ctx.rank,
                                self.ctx.world_size, self.tc.num_workers, pin_memory=self.device.type == "cuda")
        bar = tqdm(total=total, initial=self.step, unit="step", dynamic_ncols=True, disable=not self.ctx.is_main)
        window_start, window_steps = time.perf_counter(), 0
        try:
            self.model.train()
            while self.step < total:
                images = next(batches)
                coeffs = coefficients(self.cfg.schedule, self.step)
                lr = learning_rate(self.tc, self.step)
                set_learning_rate(self.optimizer, lr)
                applied, out, norm = train_step(self.net, self.optimizer, images, coeffs, self.ctx, amp=self.amp,
                                                memory_format=self.memory_format, grad_clip=self.tc.grad_clip)
                if applied:
                    self.meter.add(out.loss, out.terms)
                self.step += 1
                window_steps += 1
                bar.update(1)
                self._count(applied)
                done = self.step == total
                if self.step % self.tc.log_every == 0 or done:
                    self._log_scalars(coeffs, lr, norm, time.perf_counter() - window_start, window_steps)
                    window_start, window_steps = time.perf_counter(), 0
                if self.ctx.is_main and (self.step % self.tc.image_every == 0 or done):
                    self._log_pictures(images, out)
                is_best = False
                if self.tc.n_check_samples and (self.step % self.tc.sample_every == 0 or done):
                    is_best = self._check_structure()
                if self.step % self.tc.ckpt_every == 0 or done or is_best:
                    self._save(is_best)
        finally:
            bar.close()
            if self.logbook is not None:
                self.logbook.close()
                plot_curves(self.run_dir)
        return TrainResult(self.step, self.skipped, self.last_checkpoint, self.last_s_acc)


def train(cfg: RunConfig, data_dir: Path, run_dir: Path, say: Callable[[str], None] = tqdm.write) -> TrainResult:
    """Train (or resume) the run in `run_dir` on the shards in `data_dir`; under torchrun,
    every rank calls this."""
    with distributed(cfg.train.device) as ctx:
        if ctx.device.type == "cpu":
            keep_freed_memory()
        return Trainer(cfg, data_dir, run_dir, ctx, say).run()
