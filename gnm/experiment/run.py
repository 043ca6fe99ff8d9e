"""`gnm experiment TABLE`: make the data, train the rows that are missing, evaluate them, write the table.

Everything of one scale lives under one folder, shared by all tables (GNM on MNIST-10 is a row of
Tables 1, 2 and 4 and is trained once):

    OUT/data/DATASET/{train,test}   scenegen splits (resumed when interrupted)
    OUT/runs/RECIPE/                gnm runs (skipped when finished, resumed when not)
    OUT/evals/RECIPE.json           gnm eval results (reused when they cover the run's step and metrics)
    OUT/samples/RECIPE.png          prior samples of each model
    OUT/TABLE.md, OUT/TABLE.csv     the table in the paper's layout
    OUT/TABLE-dsteps-DATASET.png    discriminator learning curves per model (Figure 4, right)
    OUT/timing.json                 wall-clock minutes of each stage (the tables print them)
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from gnm.config import RUN_CONFIG_NAME, RunConfig, load_run_config, resolve_run_config, save_run_config
from gnm.eval.dsteps import DStepsConfig
from gnm.eval.run import EvalOptions, evaluate
from gnm.experiment.report import ResultGrid, write_curves, write_table
from gnm.experiment.scales import Scale, move_entry, scaled_schedule
from gnm.experiment.tables import Table, recipe_name
from gnm.experiment.timing import StageTimes
from gnm.model import MODEL_KINDS
from gnm.train.checkpoint import latest_checkpoint, load_checkpoint, load_model
from gnm.train.distributed import resolve_device
from gnm.train.images import grid
from gnm.train.loop import train
from gnm.train.monitor import sample_images
from scenegen.datasets import get_spec
from scenegen.manifest import write_text_atomic
from scenegen.preview import save_png
from scenegen.runner import MakeRequest, make_split

Say = Callable[[str], None]
SAMPLE_GRID = 36


def ensure_split(dataset: str, split: str, n: int, data_root: Path) -> Path:
    """A split of n default-config scenes in data_root/DATASET/SPLIT, made or resumed by scenegen."""
    folder = data_root / dataset / split
    workers = os.cpu_count() or 1
    make_split(MakeRequest(dataset, get_spec(dataset).config_type(), split, n, folder, workers=workers,
                           options={"digits": "auto", "gpu": False}))
    return folder


def scaled_config(recipe: Path, dataset: str, scale: Scale, device: str) -> RunConfig:
    """The recipe's config with the scale's length, train settings and schedule applied."""
    cfg = resolve_run_config(recipe, [f"train.device={device}"])
    if scale.steps is None:
        return cfg
    steps = round(scale.steps[dataset] * scale.kind_steps.get(cfg.model.kind, 1.0))
    kind = MODEL_KINDS[cfg.model.kind]
    accepted = {*kind.required_coeffs, *kind.optional_coeffs}
    bookkeeping = {"image_every": steps, "ckpt_every": steps, "sample_every": steps}
    train_cfg = dataclasses.replace(cfg.train, steps=steps, lr_scale=move_entry("lr_scale", cfg.train.lr_scale, steps, scale),
                                    **{**bookkeeping, **scale.train})
    return dataclasses.replace(cfg, train=train_cfg, schedule=scaled_schedule(cfg.schedule, accepted, steps, scale))


def ensure_trained(cfg: RunConfig, train_dir: Path, run_dir: Path, say: Say) -> None:
    """Train the run to cfg.train.steps unless it got there before (an unfinished run resumes)."""
    if (run_dir / RUN_CONFIG_NAME).is_file():
        cfg = load_run_config(run_dir / RUN_CONFIG_NAME)
        last = latest_checkpoint(run_dir)
        if last is not None and int(load_checkpoint(last)["step"]) >= cfg.train.steps:
            say(f"{run_dir.name}: trained ({cfg.train.steps} steps), skipped")
            return
    else:
        run_dir.mkdir(parents=True, exist_ok=True)
        save_run_config(cfg, run_dir / RUN_CONFIG_NAME)
    say(f"{run_dir.name}: training {cfg.train.steps} steps on {train_dir}")
    train(cfg, train_dir, run_dir, say)


def eval_options(scale: Scale, out_dir: Path, prefix: str, train_dir: Path) -> EvalOptions:
    """EvalOptions of the scale (dsteps_max_steps goes into the D-Steps protocol)."""
    settings = dict(scale.eval)
    dsteps = DStepsConfig(max_steps=settings.pop("dsteps_max_steps", DStepsConfig.max_steps))
    return EvalOptions(out_dir=out_dir, prefix=prefix, dsteps=dsteps, train_data=train_dir, **settings)


def ensure_evaluated(run_dir: Path, test_dir: Path, train_dir: Path, metrics: tuple[str, ...], scale: Scale,
                     out: Path, device: torch.device, say: Say) -> dict[str, Any]:
    """gnm eval results of the run's newest checkpoint, computed for the metrics not yet in OUT/evals/RUN.json."""
    path = out / "evals" / f"{run_dir.name}.json"
    cfg, model, step = load_model(run_dir, device)
    done = json.loads(path.read_text()) if path.is_file() else {}
    if done.get("step") != step:
        done = {}
    missing = [m for m in metrics if m not in done.get("metrics_done", [])]
    if missing:
        say(f"{run_dir.name}: evaluating {', '.join(missing)}")
        options = eval_options(scale, path.parent, run_dir.name, train_dir)
        fresh = evaluate(model, cfg, step, test_dir, missing, options, device, say)
        notes = {**done.get("notes", {}), **fresh.pop("notes", {})}
        done = {**done, **fresh, "step": step, "notes": notes, "metrics_done": [*done.get("metrics_done", []), *missing]}
        write_text_atomic(path, json.dumps(done, indent=2) + "\n")
    grid_path = out / "samples" / f"{run_dir.name}.png"
    if not grid_path.is_file():
        save_png(grid_path, grid(sample_images(model, SAMPLE_GRID, 0, device)))
    return done


def run_table(table: Table, datasets: tuple[str, ...], scale: Scale, out: Path, recipes: Path,
              device: str, say: Say) -> list[Path]:
    """Train and evaluate every row of the table that has a recipe, on each dataset; write the table
    and the D-Steps curves. Returns the files written."""
    results: ResultGrid = {}
    dev = resolve_device(device)
    times = StageTimes(out / "timing.json", dev)
    for dataset in datasets:
        say(f"== {dataset}")
        with times.stage(f"data/{dataset}"):
            train_dir = ensure_split(dataset, "train", scale.train_scenes[dataset], out / "data")
            test_dir = ensure_split(dataset, "test", scale.test_scenes[dataset], out / "data")
        for row in table.rows:
            recipe = recipes / f"{recipe_name(row.model, dataset)}.yaml"
            if not recipe.is_file():
                say(f"{recipe.stem}: no recipe {recipe}, row left empty")
                results[row.label, dataset] = None
                continue
            run_dir = out / "runs" / recipe.stem
            with times.stage(f"train/{recipe.stem}"):
                ensure_trained(scaled_config(recipe, dataset, scale, str(dev)), train_dir, run_dir, say)
            with times.stage(f"eval/{recipe.stem}"):
                results[row.label, dataset] = ensure_evaluated(run_dir, test_dir, train_dir, table.eval_metrics,
                                                               scale, out, dev, say)
    written = write_table(table, datasets, results, times, out)
    if "dsteps" in table.eval_metrics:
        written += [write_curves(table, dataset, results, out) for dataset in datasets]
    return written
