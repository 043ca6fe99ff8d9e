"""`gnm viz`: the paper's qualitative figures as PNG files (see gnm.viz.figures and gnm.viz.compare)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from gnm.config import RunConfig
from gnm.train.monitor import sample_images
from gnm.viz.compare import labelled_row, stack_rows
from gnm.viz.figures import componentwise, global_traversal, resample_structure, slots, where_traversal
from scenegen.errors import UserError
from scenegen.preview import save_png

ROWS = 6      # scenes (or walks) per figure
COLUMNS = 8   # steps of a traversal, draws of z_s


@dataclass(frozen=True)
class Figure:
    """draw(model, generator, images [B, C, H, W] of a split or None) -> uint8 grid [3, H', W'];
    needs: the model method it calls (`infer`: GNM and SPACE-style; `decompose`: GENESIS)."""

    draw: Callable[[Any, torch.Generator, Tensor | None], Tensor]
    needs_images: bool
    paper: str
    needs: str = "infer"


FIGURES: dict[str, Figure] = {
    "componentwise": Figure(lambda m, g, x: componentwise(m, ROWS, g), False,
                            "Figure 3: prior scenes built up object by object, back to front, with z_where boxes"),
    "where": Figure(lambda m, g, x: where_traversal(m, x[0]), True,
                    "Figure 5 (left): one object's z_where (scale, aspect, x, y) traversed"),
    "global": Figure(lambda m, g, x: global_traversal(m, ROWS, COLUMNS, g), False,
                     "Figure 5 (right): z_g walked between prior draws"),
    "resample-prior": Figure(lambda m, g, x: resample_structure(m, COLUMNS, g, n=ROWS), False,
                             "Figures 10-11: z_g from the prior fixed per row, z_s ~ p(z_s | z_g) drawn again"),
    "resample-posterior": Figure(lambda m, g, x: resample_structure(m, COLUMNS, g, images=x[:ROWS]), True,
                                 "Figures 10-11: z_g inferred from the first image of each row, z_s drawn again"),
    "slots-prior": Figure(lambda m, g, x: slots(m, g, n=ROWS), False,
                          "GENESIS: prior samples split into their slots (mask x component)", needs="decompose"),
    "slots": Figure(lambda m, g, x: slots(m, g, images=x[:ROWS]), True,
                    "GENESIS: scenes, reconstructions and their slots (mask x component)", needs="decompose"),
}

BETA_KEYS = ("beta_g", "beta")  # the KL weight of GNM and of the baselines


def figure_names(requested: str, model: Any) -> list[str]:
    """'all' (every figure the model can draw) or a comma list of FIGURES names -> the names; an
    unknown name, or one the model cannot draw, is a UserError."""
    kind = type(model).__name__
    drawable = [name for name, figure in FIGURES.items() if hasattr(model, figure.needs)]
    names = drawable if requested == "all" else [n.strip() for n in requested.split(",") if n.strip()]
    unknown = [n for n in names if n not in FIGURES]
    if unknown or (not names and requested != "all"):
        raise UserError(f"--figure {requested!r}: unknown figure {unknown[0] if unknown else ''!r}; "
                        f"choose from all, {', '.join(FIGURES)}, beta")
    if not drawable:
        raise UserError(f"a {kind} model has none of these figures (they need an object model: GNM or GENESIS); use --figure beta")
    unable = [n for n in names if n not in drawable]
    if unable:
        raise UserError(f"--figure {unable[0]} needs a model with {FIGURES[unable[0]].needs}(); a {kind} model draws "
                        + ", ".join(drawable))
    return names


def draw_figures(model: Any, names: list[str], images: Tensor | None, seed: int, out_dir: Path) -> list[Path]:
    """Draw each named figure of one model into out_dir/NAME.png (images: scenes of a split, or None)."""
    missing = [n for n in names if FIGURES[n].needs_images and images is None]
    if missing:
        raise UserError(f"figure {missing[0]!r} shows inferred scenes: pass --data SPLIT (e.g. data/mnist4/test)")
    paths = []
    for name in names:
        generator = torch.Generator(device=next(model.parameters()).device).manual_seed(seed)
        paths.append(save_png(out_dir / f"{name}.png", FIGURES[name].draw(model, generator, images)))
    return paths


def run_label(run: Path, cfg: RunConfig) -> str:
    """'RUN  beta_g=2' (the final value of the run's KL weight)."""
    betas = [f"{key}={cfg.schedule[key].end_value:g}" for key in BETA_KEYS if key in cfg.schedule]
    return "  ".join([run.name, *betas])


def draw_beta(runs: list[tuple[str, torch.nn.Module]], n: int, seed: int, device: torch.device, out: Path) -> Path:
    """Figure 4 (left): n prior samples of each labelled model, one row each, the same seed for all."""
    rows = [labelled_row(sample_images(model, n, seed, device), label) for label, model in runs]
    return save_png(out, stack_rows(rows))
