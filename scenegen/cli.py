"""The `scenegen` command line: make, preview, info, verify, index, check, calibrate (thin shells over library functions)."""

from __future__ import annotations

import dataclasses
import json
import os
import sys
from pathlib import Path
from typing import Any, Optional

import typer

from scenegen.config import DatasetConfig
from scenegen.datasets import MODULES, get_spec
from scenegen.datasets.mnist_common import MNIST_FAMILY
from scenegen.errors import UserError

app = typer.Typer(
    help="Synthetic structured-scene datasets (MNIST-4, MNIST-10, MNIST-4-10, Arrow Room) as HDF5 shards, "
    "with ground truth and an automatic rule checker.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)

DEFAULT_N = {"train": 60000, "val": 6000, "test": 6000}
ARROW_ROOM = "arrow-room"
CHECKED = (*MNIST_FAMILY, ARROW_ROOM)  # the datasets with a rule checker and --violate
TRAIN_HELP = ("Arrow Room: a rendered train split (`scenegen make arrow-room --split train`) to fit the recogniser on "
              "when it is not cached yet (default: the latest fitted one).")


def build_config(dataset: str, values: dict[str, Any], overrides: list[str]) -> DatasetConfig:
    """The dataset's config from CLI values plus `key=value` overrides, each typed like its default."""
    config_type = get_spec(dataset).config_type
    fields = {f.name: f for f in dataclasses.fields(config_type)}
    values = {k: v for k, v in values.items() if k != "dataset"}  # a saved config names its dataset
    inapplicable = [k for k, v in values.items() if v is not None and k not in fields]
    if inapplicable:
        raise UserError(f"--{inapplicable[0].replace('_', '-')} does not apply to {dataset}; leave it out")
    chosen = {k: v for k, v in values.items() if v is not None}
    for item in overrides:
        key, sep, raw = item.partition("=")
        if not sep or key not in fields:
            raise UserError(f"--set {item!r}: expected KEY=VALUE with KEY one of {', '.join(sorted(fields))}")
        chosen[key] = _parse_like(raw, getattr(config_type(), key), key)
    try:
        return config_type(**chosen)
    except (TypeError, ValueError) as exc:
        raise UserError(f"invalid {dataset} config: {exc}")


def _parse_like(raw: str, default: Any, key: str) -> Any:
    try:
        if isinstance(default, bool):
            return {"true": True, "false": False, "1": True, "0": False}[raw.lower()]
        if isinstance(default, (int, float)):
            return type(default)(raw)
        if isinstance(default, (tuple, list)):
            return tuple(json.loads(raw))
    except (KeyError, ValueError, json.JSONDecodeError):
        raise UserError(f"--set {key}={raw}: expected a value like {default!r}")
    return raw


def _slurm_default(name: str, fallback: int) -> int:
    value = os.environ.get(name)
    return int(value) if value and value.isdigit() else fallback


@app.command()
def make(
    dataset: str = typer.Argument(..., help=f"Dataset to make: {', '.join(MODULES)}."),
    n: Optional[int] = typer.Option(None, "--n", help="Scenes in the split (default: 60000 train, 6000 val/test)."),
    split: str = typer.Option("train", help="Split name: train, val or test (test scenes use MNIST's test digits)."),
    out: Optional[Path] = typer.Option(None, help="Dataset folder; the split goes to OUT/SPLIT. Default: ./data/DATASET."),
    seed: int = typer.Option(0, help="Seed of every random choice; the same command and seed give identical bytes."),
    shard_size: Optional[int] = typer.Option(None, help="Scenes per shard file (default: the dataset's, 2000 for MNIST, 250 for Arrow Room: one Blender worker renders one shard)."),
    workers: int = typer.Option(os.cpu_count() or 1, help="Worker processes (default: all cores)."),
    image_size: Optional[int] = typer.Option(None, help="Image side in pixels (default 128)."),
    digit_size: Optional[int] = typer.Option(None, help="MNIST: side of the resized 28x28 digit frame (default 20)."),
    digits: str = typer.Option("auto", help="MNIST digits: auto (full MNIST if local or downloadable, else bundled), bundled, download, or PATH to a torchvision MNIST root / folder of the four IDX files."),
    set_: list[str] = typer.Option([], "--set", help="Any other config value, KEY=VALUE (e.g. swap_mode=shared, p_mnist4=0.3); repeatable."),
    overwrite: bool = typer.Option(False, help="Replace a split made with another config in OUT/SPLIT."),
    num_shards: int = typer.Option(_slurm_default("SLURM_ARRAY_TASK_COUNT", 1), "--num-shards", help="Cluster jobs sharing this split (default: $SLURM_ARRAY_TASK_COUNT or 1); run `scenegen index` after all finished."),
    shard_index: int = typer.Option(_slurm_default("SLURM_ARRAY_TASK_ID", 0), "--shard-index", help="This job's number in [0, --num-shards) (default: $SLURM_ARRAY_TASK_ID or 0)."),
    gpu: bool = typer.Option(False, help="Arrow Room: render with Cycles on CUDA/OptiX; fails if Blender finds no GPU."),
    samples: Optional[int] = typer.Option(None, help="Arrow Room: Cycles samples per pixel (default 32)."),
    violate: Optional[str] = typer.Option(None, help="Make scenes that break exactly one rule: MNIST e.g. class_order, symmetry, missing_digit; Arrow Room a kind (e.g. points_at_pair, five_objects) or a rule name (an unknown name lists them all)."),
) -> None:
    """Make one split of a dataset as HDF5 shards plus manifest.json (resumes an interrupted run)."""
    from scenegen.runner import MakeRequest, make_split

    cfg = build_config(dataset, {"image_size": image_size, "digit_size": digit_size, "samples": samples}, set_)
    folder = (out or Path("data") / dataset) / split
    if gpu and dataset != "arrow-room":
        raise UserError(f"--gpu renders Arrow Room; {dataset} is made on the CPU")
    options = {"digits": digits, "gpu": gpu}
    if violate is not None:
        options["violate"] = violate
    if violate is not None and dataset not in CHECKED:
        raise UserError(f"--violate exists for {', '.join(CHECKED)}, not for {dataset}")
    request = MakeRequest(
        dataset=dataset, config=cfg, split=split, n=DEFAULT_N.get(split, 6000) if n is None else n, out=folder,
        seed=seed, shard_size=shard_size, workers=workers, options=options, overwrite=overwrite,
        task_index=shard_index, task_count=num_shards,
    )
    manifest = make_split(request)
    source = manifest.get("provenance", {}).get("digits")
    if source:
        typer.echo(f"digits: {source}")
    status = "complete" if manifest.get("complete") else f"this job's part written; run `scenegen index {folder}` when all jobs finished"
    typer.echo(f"{folder}: {manifest['made']} scenes in {len(manifest['shards'])} shards ({status})")


@app.command()
def preview(
    folder: Path = typer.Argument(..., help="A split folder (e.g. data/mnist4/train)."),
    n: int = typer.Option(64, "--n", help="Scenes to draw."),
    out: Path = typer.Option(Path("preview.png"), help="PNG file to write."),
) -> None:
    """Draw the first scenes of a split with their ground-truth boxes and classes into a PNG grid."""
    from scenegen.data import split_folders
    from scenegen.preview import preview as draw

    path = draw(split_folders(folder)[0], out, n)
    typer.echo(f"wrote {path}")


@app.command()
def info(folder: Path = typer.Argument(..., help="A dataset folder or one split folder.")) -> None:
    """What is there: dataset, splits, scene counts, config and digit source."""
    from scenegen.data import split_folders
    from scenegen.manifest import load_manifest

    for split_folder in split_folders(folder):
        manifest = load_manifest(split_folder)
        if manifest is None:
            typer.echo(f"{split_folder}: shards without manifest; run `scenegen index {split_folder}`")
            continue
        size = sum((split_folder / e["file"]).stat().st_size for e in manifest["shards"] if (split_folder / e["file"]).exists())
        state = "complete" if manifest.get("complete") else "INCOMPLETE"
        typer.echo(f"{split_folder}: {manifest['dataset']} / {manifest['split']}: {manifest['made']} of {manifest['n']} scenes, "
                   f"{len(manifest['shards'])} shards, {size / 1e6:.1f} MB, seed {manifest['seed']}, {state}")
        typer.echo(f"  config: {json.dumps(manifest['config'], sort_keys=True)}")
        for key, value in sorted(manifest.get("provenance", {}).items()):
            typer.echo(f"  {key}: {value}")


@app.command()
def verify(folder: Path = typer.Argument(..., help="A dataset folder or one split folder.")) -> None:
    """Re-hash every shard against its manifest; exit 1 naming each bad file."""
    from scenegen.data import split_folders
    from scenegen.manifest import verify as check

    problems = [p for split_folder in split_folders(folder) for p in check(split_folder)]
    for problem in problems:
        typer.echo(problem, err=True)
    if problems:
        raise typer.Exit(1)
    typer.echo(f"{folder}: every shard matches its manifest")


@app.command()
def index(folder: Path = typer.Argument(..., help="A split folder whose shards were made by several jobs.")) -> None:
    """(Re)build manifest.json from the shards in a split folder."""
    from scenegen.manifest import index as rebuild

    manifest = rebuild(folder)
    state = "complete" if manifest["complete"] else f"incomplete: {manifest['made']} of {manifest['n']} scenes"
    typer.echo(f"{folder}: indexed {len(manifest['shards'])} shards ({state})")


@app.command()
def check(
    images: Path = typer.Argument(..., help="A split folder or shard file, a folder of PNGs, or a .npy / .pt array [N,H,W], [N,H,W,C] or [N,C,H,W] (uint8 0-255 or float 0-1)."),
    dataset: Optional[str] = typer.Option(None, help=f"Whose rules: {', '.join(CHECKED)} (default: the dataset the shards record)."),
    json_out: Optional[Path] = typer.Option(None, "--json", help="Write the report (S-Acc, interval, reasons, every verdict with its objects) to this JSON file."),
    grid: Optional[Path] = typer.Option(None, help="Write the first 64 images with detected digits, framed green (pass) or red (fail), to this PNG."),
    set_: list[str] = typer.Option([], "--set", help="Config value of the rules, KEY=VALUE (e.g. swap_mode=shared); shards supply their own."),
    digits: str = typer.Option("auto", help="MNIST digits to fit the recogniser on when it is not cached yet (as for `make`)."),
    cache: Optional[Path] = typer.Option(None, help="Recogniser cache folder (default: $SCENEGEN_CACHE or ~/.cache/scenegen/checkers)."),
    train: Optional[Path] = typer.Option(None, help=TRAIN_HELP),
) -> None:
    """Judge whether images obey their dataset's rules: S-Acc with a 95% Wilson interval and failures per rule."""
    from scenegen.check import RuleChecker
    from scenegen.check.inputs import load_images
    from scenegen.check.report import format_summary, report, summarize, verdict_grid, write_json

    loaded = load_images(images)
    name = dataset or loaded.dataset
    if name is None:
        raise UserError(f"{images} does not record its dataset; pass --dataset ({', '.join(CHECKED)})")
    cfg = build_config(name, loaded.config if name == loaded.dataset and loaded.config else {}, set_)
    pixels = loaded.rgb if name == ARROW_ROOM else loaded.images
    verdicts = RuleChecker.for_dataset(name, cfg.to_dict(), cache=cache, digits=digits, train=train).check(pixels)
    for line in format_summary(name, summarize(verdicts)):
        typer.echo(line)
    if json_out is not None:
        typer.echo(f"wrote {write_json(json_out, report(name, verdicts))}")
    if grid is not None:
        typer.echo(f"wrote {verdict_grid(grid, pixels, verdicts, names=cfg.shapes if name == ARROW_ROOM else None)}")


@app.command()
def calibrate(
    dataset: str = typer.Option(..., help=f"Dataset whose checker to calibrate: {', '.join(CHECKED)}."),
    n: int = typer.Option(500, "--n", help="Test scenes per row (real, and each violation); Arrow Room: at most this many of each split."),
    json_out: Optional[Path] = typer.Option(None, "--json", help="Where to write the table (default: calibration-DATASET.json)."),
    seed: int = typer.Option(0, help="Seed of the calibration scenes."),
    set_: list[str] = typer.Option([], "--set", help="Config value, KEY=VALUE (e.g. swap_mode=shared); repeatable."),
    digits: str = typer.Option("auto", help="MNIST digits of the scenes and of the recogniser's fit (as for `make`)."),
    cache: Optional[Path] = typer.Option(None, help="Recogniser cache folder (default: $SCENEGEN_CACHE or ~/.cache/scenegen/checkers)."),
    train: Optional[Path] = typer.Option(None, help=TRAIN_HELP),
    test: Optional[Path] = typer.Option(None, help="Arrow Room: rendered test splits, one folder or a folder of them: real scenes "
                                        "(`make --split test`) and each violation (`make --split KIND --violate KIND`)."),
) -> None:
    """Pass rates of the checker on real test scenes (target >= 0.99; Arrow Room 0.98) and on each rule violation (target <= 0.02)."""
    from scenegen.check.calibrate import calibrate as run
    from scenegen.check.calibrate import format_table
    from scenegen.check.report import write_json

    if n < 1:
        raise UserError(f"--n must be at least 1, not {n}")
    if dataset == ARROW_ROOM:
        from scenegen.check.arrow.calibrate import calibrate as run_arrow

        if test is None:
            raise UserError("arrow-room calibrates on rendered scenes: pass --test DIR (see `scenegen calibrate --help`)")
        if set_:
            raise UserError("arrow-room calibrates with the config its test splits were made with; leave out --set")
        result = run_arrow(test, train, n, cache=cache)
    else:
        result = run(dataset, n, build_config(dataset, {}, set_).to_dict(), digits=digits, cache=cache, seed=seed)
    for line in format_table(result):
        typer.echo(line)
    typer.echo(f"wrote {write_json(json_out or Path(f'calibration-{dataset}.json'), result)}")
    if not result["meets_all"]:
        raise typer.Exit(1)


def main() -> None:
    """Entry point: a UserError becomes one line on stderr and exit status 2."""
    try:
        app()
    except UserError as exc:
        typer.echo(f"error: {exc}", err=True)
        sys.exit(2)
