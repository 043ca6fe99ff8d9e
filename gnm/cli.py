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
from gnm.eval.dsteps import DStepsConfig
from gnm.eval.run import METRICS, EvalOptions, parse_metrics, evaluate as evaluate_metrics
from gnm.model import build_model, count_parameters
from gnm.train.checkpoint import load_model
from gnm.train.data import eval_batches, open_dataset
from gnm.train.distributed import resolve_device
from gnm.train.images import grid, rgb, to_uint8, with_boxes
from scenegen.preview import save_png
from gnm.train.loop import train as run_training
from gnm.train.monitor import sample_images
from gnm.train.schedules import coefficients
from gnm.experiment.run import run_table
from gnm.experiment.scales import SCALES
from gnm.experiment.tables import TABLES
from gnm.viz import FIGURES, ROWS, draw_beta, draw_figures, figure_names, run_label
from scenegen.errors import UserError
from scenegen.manifest import write_text_atomic

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
    """Reconstruct the first scenes of a folder and draw the inferred z_where boxes (object models);
    models without boxes show the reconstruction of a posterior sample."""
    dev = resolve_device(device)
    cfg, model, step = load_model(run, dev)
    images, _ = next(iter(eval_batches(open_dataset(data, cfg), n)))
    if hasattr(model, "infer"):
        inferred = model.infer(images.to(dev))
        drawn = with_boxes(inferred.image, inferred.boxes, inferred.pres > 0.5)
    else:
        with torch.no_grad():
            drawn = rgb(to_uint8(model(images.to(dev), coefficients(cfg.schedule, step)).recon))
    save_png(out, grid(torch.cat([rgb(to_uint8(images)), drawn]), nrow=len(images)))
    typer.echo(f"{len(images)} reconstructions -> {out}")


@app.command("eval")
@_one_line_errors
def evaluate(
    run: Path = typer.Option(..., help=RUN_HELP),
    data: Path = typer.Option(..., help="Test split folder of shards (e.g. data/mnist4/test)."),
    metrics: str = typer.Option(",".join(METRICS), help=f"Comma list of metrics out of {','.join(METRICS)}."),
    json_out: Optional[Path] = typer.Option(None, "--json", help="Also write the results to this JSON file; pictures go next to it."),
    batch_size: int = typer.Option(32, help="Scenes per inference batch."),
    n_samples: int = typer.Option(250, help="sacc: prior samples judged by the rule checker (0: none)."),
    ll_k: int = typer.Option(100, help="ll: posterior samples per image (IWAE)."),
    ll_images: Optional[int] = typer.Option(None, help="ll: only the first N test images (default: all)."),
    dsteps_seeds: int = typer.Option(3, help="dsteps: classifiers trained, one per seed 0..N-1."),
    dsteps_max_steps: int = typer.Option(DStepsConfig.max_steps, help="dsteps: step cap (a run not reaching 90% is censored there)."),
    train_data: Optional[Path] = typer.Option(None, help="zwhat: train split for the probe (default: the `train` folder next to --data)."),
    zwhat_train_images: Optional[int] = typer.Option(None, help="zwhat: only the first N train scenes (default: all)."),
    seed: int = typer.Option(0, help="Seed of every sampling step."),
    device: str = typer.Option("auto", help=DEVICE_HELP),
) -> None:
    """S-Acc, D-Steps, IWAE log-likelihood, box AP (COCO 101-point and 11-point) and the z_what probe."""
    names = parse_metrics(metrics)
    run_dir = run if run.is_dir() else run.parent
    out_dir, prefix = (json_out.parent, json_out.stem) if json_out is not None else (run_dir, "eval")
    options = EvalOptions(out_dir=out_dir, prefix=prefix, batch_size=batch_size, seed=seed, n_samples=n_samples,
                          ll_k=ll_k, ll_images=ll_images, dsteps_seeds=dsteps_seeds,
                          dsteps=DStepsConfig(max_steps=dsteps_max_steps), train_data=train_data,
                          zwhat_train_images=zwhat_train_images)
    dev = resolve_device(device)
    cfg, model, step = load_model(run, dev)
    results = evaluate_metrics(model, cfg, step, data, names, options, dev, lambda msg: typer.echo(msg, err=True))
    for key, value in results.items():
        typer.echo(f"{key:>16}: {_shown(value)}")
    if json_out is not None:
        write_text_atomic(json_out, json.dumps(results, indent=2) + "\n")


def _shown(value: Any) -> str:
    """One result as printed: floats to 4 decimals, None as n/a, lists and notes item by item."""
    if isinstance(value, float):
        return f"{value:.4f}"
    if value is None:
        return "n/a"
    if isinstance(value, list):
        return "[" + ", ".join(_shown(v) for v in value) + "]"
    if isinstance(value, dict):
        return "; ".join(f"{k} {v}" for k, v in value.items())
    return str(value)


@app.command()
@_one_line_errors
def info(
    recipe: Path = typer.Option(..., help="Recipe YAML."),
    overrides: Optional[list[str]] = typer.Argument(None, help="key=value config overrides."),
) -> None:
    """Parameter count per model component of a recipe."""
    cfg = resolve_run_config(recipe, overrides or [])
    counts = count_parameters(build_model(cfg.model))
    typer.echo(f"{recipe.stem} (dataset {cfg.dataset}, model {cfg.model.kind})")
    for name, count in counts.items():
        typer.echo(f"{name:>12}: {count:>10,}")


@app.command()
@_one_line_errors
def viz(
    run: list[Path] = typer.Option(..., help=RUN_HELP + " Repeat --run for --figure beta (one row per run)."),
    figure: str = typer.Option("all", help=f"all, or a comma list of {', '.join(FIGURES)}; or beta (several runs)."),
    data: Optional[Path] = typer.Option(None, help="Split folder whose first scenes the where / resample-posterior figures infer."),
    out: Optional[Path] = typer.Option(None, help="Folder of the PNGs (default RUN/figures); for beta, the PNG file (default beta.png)."),
    n: int = typer.Option(8, help="beta: prior samples per run."),
    seed: int = typer.Option(0, help="Seed of every random draw in the figures."),
    device: str = typer.Option("auto", help=DEVICE_HELP),
) -> None:
    """The paper's qualitative figures as PNGs (Figures 3, 4 left, 5, 10-11)."""
    dev = resolve_device(device)
    if figure == "beta":
        runs = [(run_label(r, cfg), model) for r in run for cfg, model, _ in [load_model(r, dev)]]
        typer.echo(f"beta -> {draw_beta(runs, n, seed, dev, out or Path('beta.png'))}")
        return
    if len(run) != 1:
        raise UserError(f"--figure {figure} draws one run; pass --run once (several runs only for --figure beta)")
    cfg, model, _ = load_model(run[0], dev)
    names = figure_names(figure, model)
    images = next(iter(eval_batches(open_dataset(data, cfg), ROWS)))[0].to(dev) if data is not None else None
    out_dir = out or (run[0] if run[0].is_dir() else run[0].parent) / "figures"
    for name, path in zip(names, draw_figures(model, names, images, seed, out_dir)):
        typer.echo(f"{name:>20} -> {path}  ({FIGURES[name].paper})")


@app.command()
@_one_line_errors
def experiment(
    table: str = typer.Argument(..., help=f"The paper's table to reproduce: {', '.join(TABLES)}."),
    datasets: Optional[str] = typer.Option(None, help="Comma list of datasets (default: the table's, as in the paper)."),
    scale: str = typer.Option("quick", help=f"{' or '.join(SCALES)}: quick exercises everything on a CPU in about an hour; paper uses the paper's sizes."),
    out: Optional[Path] = typer.Option(None, help="Folder of data, runs, evals and tables (default experiments/SCALE), shared by all tables."),
    recipes: Path = typer.Option(Path("recipes"), help="Folder of the recipes (recipes/MODEL-DATASET.yaml)."),
    device: str = typer.Option("auto", help=DEVICE_HELP),
) -> None:
    """Train the table's missing rows, evaluate them and write the table (Markdown, CSV) and D-Steps curves."""
    if table not in TABLES:
        raise UserError(f"unknown table {table!r}; choose from {', '.join(TABLES)}")
    if scale not in SCALES:
        raise UserError(f"unknown scale {scale!r}; choose from {', '.join(SCALES)}")
    if not recipes.is_dir():
        raise UserError(f"recipe folder {recipes} not found; run from the repository root or pass --recipes DIR")
    chosen = tuple(d.strip() for d in datasets.split(",")) if datasets else TABLES[table].datasets
    unknown = [d for d in chosen if d not in SCALES[scale].train_scenes]
    if unknown:
        raise UserError(f"unknown dataset {unknown[0]!r}; choose from {', '.join(SCALES[scale].train_scenes)}")
    written = run_table(TABLES[table], chosen, SCALES[scale], out or Path("experiments") / scale, recipes, device,
                        lambda msg: typer.echo(msg, err=True))
    for path in written:
        typer.echo(f"-> {path}")
