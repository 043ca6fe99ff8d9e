"""`gnm eval`: the five metrics of a trained run, one small function each in the METRICS table.

  sacc    S-Acc: share of n prior samples that the rule checker passes (gnm.train.monitor)
  dsteps  D-Steps: steps a fresh real-vs-generated classifier needs for 90% held-out accuracy (gnm.eval.dsteps)
  ll      IWAE log-likelihood with K posterior samples, nats per image (gnm.eval.ll, model.log_weights)
  ap      box AP of the inferred boxes: COCO 101-point and SPACE's 11-point (gnm.eval.ap)
  zwhat   test accuracy of a 2-layer MLP probe mapping z_what to its nearest object's class (gnm.eval.probe)

A metric a model cannot have (a baseline without `infer` has no boxes and no z_what), or that
cannot be computed here (no rule checker for the dataset), is reported as None (JSON null)
with a line under "notes", never as 0.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor
from torch.utils.data import Dataset, Subset

from gnm.config import RunConfig
from gnm.eval.ap import AP_KEYS, PRES_THRESHOLD, box_ap, ground_truth_boxes, present_detections, target_boxes
from gnm.eval.dsteps import DStepsConfig, ImageSource, mean_d_steps, plot_curves, sample_rows
from gnm.eval.ll import iwae_log_likelihood
from gnm.eval.probe import ProbeConfig, match_to_ground_truth, probe_accuracy
from gnm.train.data import eval_batches, open_dataset
from gnm.train.images import to_uint8
from gnm.train.monitor import StructureMonitor, sample_images
from scenegen.data import ShardDataset
from scenegen.errors import UserError


@dataclass(frozen=True)
class EvalOptions:
    """Settings of the costly parts; the defaults are the CLI's. Pictures go to out_dir."""

    out_dir: Path = Path(".")
    prefix: str = "eval"                 # the D-Steps curves are out_dir / f"{prefix}-dsteps.png"
    batch_size: int = 32
    seed: int = 0
    n_samples: int = 250                 # S-Acc prior samples (0: S-Acc not computed)
    ll_k: int = 100
    ll_rows: int = 32                    # images x posterior samples per log_weights call: bounds LL's memory
                                         # (GENESIS on Arrow Room needs ~50 MB a row; 320 rows ran a 24 GB machine out)
    ll_images: int | None = None         # the first N test images (None: all)
    dsteps_seeds: int = 3
    dsteps: DStepsConfig = DStepsConfig()
    probe: ProbeConfig = ProbeConfig()
    train_data: Path | None = None       # zwhat: the train split (None: the `train` folder next to the test one)
    zwhat_train_images: int | None = None  # the first N train scenes (None: all)

    def __post_init__(self) -> None:
        limits = (("--batch-size", self.batch_size, 1), ("--n-samples", self.n_samples, 0), ("--ll-k", self.ll_k, 1),
                  ("--ll-images", self.ll_images, 1), ("ll_rows", self.ll_rows, 1), ("--dsteps-seeds", self.dsteps_seeds, 1),
                  ("--dsteps-max-steps", self.dsteps.max_steps, 1), ("--zwhat-train-images", self.zwhat_train_images, 1))
        for option, value, least in limits:
            if value is not None and value < least:
                raise UserError(f"{option} {value}: must be at least {least}")


class NotAvailable(Exception):
    """A metric that cannot be computed for this model or setting; the message says why."""


@dataclass
class InferredSplit:
    """GNM.infer of every scene of a split (M cells) with its padded ground truth (K slots), on the CPU."""

    boxes: Tensor       # [N, M, 4] pixel xyxy
    pres_prob: Tensor   # [N, M] posterior z_pres probability
    what: Tensor        # [N, M, D] posterior mean z_what
    gt_boxes: Tensor    # [N, K, 4] pixel xyxy (frames for MNIST, see ap.target_boxes)
    gt_labels: Tensor   # [N, K] class, -1 = padding


@dataclass
class EvalContext:
    """What every metric function reads: the model, its data and the options."""

    model: Any
    cfg: RunConfig
    step: int
    device: torch.device
    options: EvalOptions
    splits: dict[str, ShardDataset]          # "test", and "train" when zwhat runs
    say: Callable[[str], None]
    _inferred: dict[str, InferredSplit] = field(default_factory=dict)

    def inferred(self, split: str) -> InferredSplit:
        """The split's inference, computed once (ap and zwhat share the test split's)."""
        if split not in self._inferred:
            limit = self.options.zwhat_train_images if split == "train" else None
            self._inferred[split] = infer_split(self.model, first(self.splits[split], limit),
                                                self.options.batch_size, self.device)
        return self._inferred[split]


def first(dataset: Dataset, limit: int | None) -> Dataset:
    """The first `limit` items of a dataset (all of it for None)."""
    return dataset if limit is None or limit >= len(dataset) else Subset(dataset, range(limit))


@torch.no_grad()
def infer_split(model: Any, dataset: Dataset, batch_size: int, device: torch.device) -> InferredSplit:
    """model.infer over a dataset in order, with the ground truth stacked alongside."""
    parts: dict[str, list[Tensor]] = {name: [] for name in ("boxes", "pres_prob", "what", "gt_boxes", "gt_labels")}
    for images, targets in eval_batches(dataset, batch_size):
        inferred = model.infer(images.to(device))
        parts["boxes"].append(inferred.boxes.float().cpu())
        parts["pres_prob"].append(inferred.pres_prob.float().cpu())
        parts["what"].append(inferred.what.float().cpu())
        parts["gt_boxes"].append(torch.stack([target_boxes(t) for t in targets]))
        parts["gt_labels"].append(torch.stack([t["labels"] for t in targets]))
    return InferredSplit(**{name: torch.cat(values) for name, values in parts.items()})


def structure_accuracy(ctx: EvalContext) -> dict[str, Any]:
    """S-Acc of n prior samples (seeded) with its 95% Wilson interval; the sample grid goes to out_dir."""
    options = ctx.options
    if options.n_samples == 0:
        raise NotAvailable("--n-samples 0")
    test = ctx.splits["test"]
    monitor = StructureMonitor(test.dataset_name, test.config, options.n_samples, options.seed, options.out_dir, ctx.say,
                               stem=f"{options.prefix}-samples")
    check = monitor(ctx.model, ctx.step, ctx.device)
    if check.s_acc is None:
        raise NotAvailable(f"no rule checker for dataset {test.dataset_name!r}")
    return {"s_acc": check.s_acc, "s_acc_ci95": list(check.ci95), "s_acc_n": check.n, "s_acc_grid": str(check.grid_path)}


def _uint8_rows(images: Tensor) -> ImageSource:
    """An ImageSource of random rows of uint8 images [N, C, H, W], as float in [0, 1]."""
    draw = sample_rows(images)
    return lambda n, generator: draw(n, generator).float() / 255


def discriminator_steps(ctx: EvalContext) -> dict[str, Any]:
    """D-Steps: every test image against as many prior samples (both as 8-bit images), one classifier per seed."""
    options = ctx.options
    test = ctx.splits["test"]
    real = torch.cat([to_uint8(images) for images, _ in eval_batches(test, options.batch_size)])
    fake = to_uint8(sample_images(ctx.model, len(real), options.seed, ctx.device))
    seeds = tuple(range(options.dsteps_seeds))
    mean, runs = mean_d_steps(_uint8_rows(real), _uint8_rows(fake), seeds, options.dsteps, ctx.device)
    curves = plot_curves(runs, options.dsteps.target_accuracy, options.out_dir / f"{options.prefix}-dsteps.png")
    return {"dsteps": mean, "dsteps_per_seed": [r.steps for r in runs], "dsteps_censored": [r.censored for r in runs],
            "dsteps_max_steps": options.dsteps.max_steps, "dsteps_curves": str(curves),
            "dsteps_curve_points": [[list(point) for point in r.curve] for r in runs]}


def log_likelihood(ctx: EvalContext) -> dict[str, Any]:
    """Mean IWAE estimate of log p(x) (nats per image, summed over pixels) with its standard error."""
    options = ctx.options
    test = first(ctx.splits["test"], options.ll_images)
    images_per_call = min(options.batch_size, options.ll_rows)
    samples_per_call = max(1, options.ll_rows // images_per_call)
    per_image = torch.cat([
        iwae_log_likelihood(ctx.model.log_weights, images.to(ctx.device), options.ll_k, samples_per_call).cpu()
        for images, _ in eval_batches(test, images_per_call)
    ])
    sem = float(per_image.std() / math.sqrt(len(per_image))) if len(per_image) > 1 else None
    return {"ll": float(per_image.mean()), "ll_sem": sem, "ll_k": options.ll_k, "ll_n_images": len(per_image)}


def box_average_precision(ctx: EvalContext) -> dict[str, Any]:
    """The AP_KEYS of the present cells' boxes on the test split (gnm.eval.ap)."""
    test = ctx.inferred("test")
    return box_ap(present_detections(test.boxes, test.pres_prob), ground_truth_boxes(test.gt_boxes, test.gt_labels))


def labelled_latents(inferred: InferredSplit, max_distance: float) -> tuple[Tensor, Tensor]:
    """z_what [L, D] of the present cells lying near a ground-truth object, with that object's class [L]."""
    labels = match_to_ground_truth(inferred.boxes, inferred.pres_prob > PRES_THRESHOLD,
                                   inferred.gt_boxes, inferred.gt_labels, max_distance)
    keep = labels >= 0
    return inferred.what[keep], labels[keep]


def zwhat_probe(ctx: EvalContext) -> dict[str, Any]:
    """Probe accuracy on test latents after training on train latents (labels: nearest object's class)."""
    probe = ctx.options.probe
    train_z, train_y = labelled_latents(ctx.inferred("train"), probe.max_distance)
    test_z, test_y = labelled_latents(ctx.inferred("test"), probe.max_distance)
    if not len(train_z) or not len(test_z):
        raise NotAvailable(f"no present cell within {probe.max_distance} px of an object "
                           f"({len(train_z)} train, {len(test_z)} test latents)")
    classes = int(max(train_y.max(), test_y.max())) + 1
    accuracy = probe_accuracy(train_z, train_y, test_z, test_y, classes, probe, ctx.options.seed)
    return {"zwhat_acc": accuracy, "zwhat_n_train": len(train_z), "zwhat_n_test": len(test_z)}


@dataclass(frozen=True)
class Metric:
    """compute(ctx) -> its values; needs: the model method it relies on; keys: its headline values."""

    compute: Callable[[EvalContext], dict[str, Any]]
    needs: str
    keys: tuple[str, ...]


METRICS: dict[str, Metric] = {
    "sacc": Metric(structure_accuracy, "sample", ("s_acc",)),
    "dsteps": Metric(discriminator_steps, "sample", ("dsteps",)),
    "ll": Metric(log_likelihood, "log_weights", ("ll",)),
    "ap": Metric(box_average_precision, "infer", AP_KEYS),
    "zwhat": Metric(zwhat_probe, "infer", ("zwhat_acc",)),
}


def parse_metrics(text: str) -> list[str]:
    """'sacc,ll' -> ['sacc', 'll'] (in the given order, without repeats); an unknown name is a UserError."""
    names = [name.strip() for name in text.split(",") if name.strip()]
    unknown = [name for name in names if name not in METRICS] or ([] if names else [text])
    if unknown:
        raise UserError(f"unknown metric {unknown[0]!r} in --metrics; choose from {','.join(METRICS)}")
    return list(dict.fromkeys(names))


def train_split(test_folder: Path, train_data: Path | None) -> Path:
    """--train-data, else the `train` folder next to the test split's."""
    if train_data is not None:
        return train_data
    sibling = test_folder.parent / "train"
    if not sibling.is_dir():
        raise UserError(f"zwhat trains its probe on train-split latents and {sibling} does not exist: pass --train-data")
    return sibling


def _to_stderr(message: str) -> None:
    print(message, file=sys.stderr)


def evaluate(model: Any, cfg: RunConfig, step: int, data: Path, metrics: list[str], options: EvalOptions,
             device: torch.device, say: Callable[[str], None] = _to_stderr) -> dict[str, Any]:
    """Each metric on the test split `data`, seeded by options.seed one by one; the results as one flat dict."""
    available = {name: hasattr(model, METRICS[name].needs) for name in metrics}
    splits = {"test": open_dataset(data, cfg)}
    if available.get("zwhat"):
        splits["train"] = open_dataset(train_split(data, options.train_data), cfg)
    ctx = EvalContext(model, cfg, step, device, options, splits, say)
    results: dict[str, Any] = {"step": step, "n_images": len(splits["test"])}
    notes: dict[str, str] = {}
    for name in metrics:
        metric = METRICS[name]
        torch.manual_seed(options.seed)
        try:
            if not available[name]:
                raise NotAvailable(f"{type(model).__name__} has no {metric.needs}()")
            results.update(metric.compute(ctx))
        except NotAvailable as why:
            results.update(dict.fromkeys(metric.keys))
            notes[name] = f"n/a: {why}"
    return {**results, "notes": notes} if notes else results
