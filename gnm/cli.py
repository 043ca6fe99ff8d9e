"""`gnm`: train, sample, reconstruct, eval and info; thin shells over gnm.train and gnm.eval.

Bad input (a UserError anywhere below) is reported as one line on stderr with exit code 1.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any, Optional, TypeVar

import numpy as np
import torch
import typer

from gnm.config import config_for_run, resolve_run_config
from gnm.eval.ap import box_ap, ground_truth_boxes, infer_detections
from gnm.model import GNM, count_parameters
from gnm.train.checkpoint import load_model
from gnm.train.data import eval_batches, open_dataset
from gnm.train.distributed import resolve_device
from gnm.train.images import grid, rgb, to_uint8, with_boxes
from scenegen.preview import save_png
from gnm.train.loop import train as run_training
from gnm.train.monitor import StructureMonitor, sample_images
from scenegen.errors import UserError

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="Generative Neurosymbolic Machines: train, sample, reconstruct, evaluate.")

F = TypeVar("F", bound=Callable[..., Any])

RUN_HELP = "A run folder made by `gnm train` (its newest checkpoint is used) or a checkpoint .pt file."
DEVICE_HELP = "auto, cpu or cuda."


def _one_line_errors(command: F) -> F:
    """Report a UserError as `error: ...` on stderr and exit 1, without a traceback."""

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except UserError as err:
            typer.echo(f"error: {err}", err=True)
            raise typer.Exit(1) from None

    return wrapper  # type: ignore[return-value]


@app.command()
@_one_line_errors
def train(
    data: Path = typer.Option(..., help="Training split folder of shards (e.g. data/mnist4/train)."),
    recipe: Optional[Path] = typer.Option(None, help="Recipe YAML (e.g. recipes/gnm-mnist4.yaml); not needed to resume."),
    out: Optional[Path] = typer.Option(None, help="Run folder (default runs/RECIPE); an existing run is resumed."),
    device: Optional[str] = typer.Option(None, help="auto, cpu or cuda (default: the recipe's train.device)."),
    steps: Optional[int] = typer.Option(None, help="Total training steps (same as train.steps=N)."),
    overrides: Optional[list[str]] = typer.Argument(None, help="key=value config overrides, e.g. train.batch_size=16."),
) -> None:
    """Train a GNM (or resume the run in --out). Under torchrun, every rank runs this."""
    if out is None:
        if recipe is None:
            raise UserError("pass --recipe to start a run, or --out RUN to resume one")
        out = Path("runs") / recipe.stem
    extra = [*(overrides or []), *([f"train.steps={steps}"] if steps else []), *([f"train.device={device}"] if device else [])]
    cfg, resuming = config_for_run(out, recipe, extra)
    if resuming and recipe is not None:
        typer.echo(f"{out} holds a run: resuming it with its saved config ({recipe} not read)", err=True)
    result = run_training(cfg, data, out)
    s_acc = f", S-Acc {result.s_acc:.3f}" if result.s_acc is not None else ""
    typer.echo(f"{out}: step {result.step}, {result.skipped} skipped steps{s_acc}; checkpoint {result.checkpoint}")


@app.command()
@_one_line_errors
def sample(
    run: Path = typer.Option(..., help=RUN_HELP),
    n: int = typer.Option(250, help="Number of scenes."),
    out: Optional[Path] = typer.Option(None, help=".png (grid) or .npy (uint8 [N, H, W, C]); default RUN/samples.png."),
    seed: int = typer.Option(0, help="Seed of the prior samples."),
    device: str = typer.Option("auto", help=DEVICE_HELP),
) -> None:
    """Generate scenes from the prior (z_g sampled, the mode below it)."""
    dev = resolve_device(device)
    _, model, step = load_model(run, dev)
    out = out or (run if run.is_dir() else run.parent) / "samples.png"
    images = sample_images(model, n, seed, dev)
    if out.suffix == ".npy":
        out.parent.mkdir(parents=True, exist_ok=True)
        np.save(out, to_uint8(images).permute(0, 2, 3, 1).numpy())
    elif out.suffix == ".png":
        save_png(out, grid(images))
    else:
        raise UserError(f"--out {out}: use a .png or .npy file name")
    typer.echo(f"{n} samples of step {step} -> {out}")


@app.command()
@_one_line_errors
def reconstruct(
    run: Path = typer.Option(..., help=RUN_HELP),
    data: Path = typer.Option(..., help="Split folder of shards (e.g. data/mnist4/test)."),
    out: Path = typer.Option(Path("recon.png"), help="PNG: inputs above reconstructions with inferred boxes."),
    n: int = typer.Option(8, help="Number of scenes (the first n of the folder)."),
    device: str = typer.Option("auto", help=DEVICE_HELP),
) -> None:
    """Reconstruct the first scenes of a folder and draw the inferred z_where boxes."""
    dev = resolve_device(device)
    cfg, model, _ = load_model(run, dev)
    images, _ = next(iter(eval_batches(open_dataset(data, cfg), n)))
    inferred = model.infer(images.to(dev))
    boxed = with_boxes(inferred.image, inferred.boxes, inferred.pres > 0.5)
    save_png(out, grid(torch.cat([rgb(to_uint8(images)), boxed]), nrow=len(images)))
    typer.echo(f"{len(images)} reconstructions -> {out}")


@app.command("eval")
@_one_line_errors
def evaluate(
    run: Path = typer.Option(..., help=RUN_HELP),
    data: Path = typer.Option(..., help="Test split folder of shards (e.g. data/mnist4/test)."),
    json_out: Optional[Path] = typer.Option(None, "--json", help="Also write the results to this JSON file."),
    batch_size: int = typer.Option(32, help="Scenes per inference batch."),
    n_samples: int = typer.Option(250, help="Prior samples judged for S-Acc (when the rule checker is installed; 0: none)."),
    device: str = typer.Option("auto", help=DEVICE_HELP),
) -> None:
    """Box AP (COCO 101-point and 11-point) of the inferred boxes on a folder; S-Acc of prior samples."""
    dev = resolve_device(device)
    cfg, model, step = load_model(run, dev)
    dataset = open_dataset(data, cfg)
    detections, truth = [], []
    for images, targets in eval_batches(dataset, batch_size):
        detections += infer_detections(model, images.to(dev))
        truth += ground_truth_boxes(targets)
    results: dict[str, Any] = {"step": step, "n_images": len(truth), **box_ap(detections, truth)}
    if n_samples > 0:
        structure = StructureMonitor(dataset.dataset_name, dataset.config, n_samples, 0,
                                     run if run.is_dir() else run.parent, lambda msg: typer.echo(msg, err=True))
        check = structure(model, step, dev)
        if check.s_acc is not None:
            results.update(s_acc=check.s_acc, s_acc_ci95=list(check.ci95), s_acc_n=check.n)
    for key, value in results.items():
        typer.echo(f"{key:>14}: {value:.4f}" if isinstance(value, float) else f"{key:>14}: {value}")
    if json_out is not None:
        json_out.write_text(json.dumps(results, indent=2) + "\n")


@app.command()
@_one_line_errors
def info(
    recipe: Path = typer.Option(..., help="Recipe YAML."),
    overrides: Optional[list[str]] = typer.Argument(None, help="key=value config overrides."),
) -> None:
    """Parameter count per model component of a recipe."""
    cfg = resolve_run_config(recipe, overrides or [])
    counts = count_parameters(GNM(cfg.model))
    typer.echo(f"{recipe.stem} (dataset {cfg.dataset})")
    for name, count in counts.items():
        typer.echo(f"{name:>12}: {count:>10,}")
