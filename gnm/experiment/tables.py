"""The paper's result tables as data: which model rows, on which datasets, with which metrics.

A row's recipe is recipes/{row.model}-{dataset suffix}.yaml (e.g. convdraw8-mnist10.yaml); a row
without a recipe for a dataset is printed as "n/i" (not implemented).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Row:
    """label: as the paper prints it; model: the recipe name's prefix."""

    label: str
    model: str


@dataclass(frozen=True)
class Table:
    """name (file names); title; datasets (column groups, in the paper's order); rows; metrics as
    (column header, result key)."""

    name: str
    title: str
    datasets: tuple[str, ...]
    rows: tuple[Row, ...]
    metrics: tuple[tuple[str, str], ...]
    eval_metrics: tuple[str, ...]  # the `gnm eval` metrics these columns come from


GENERATION = (("S-Acc", "s_acc"), ("D-Steps", "dsteps"), ("LL", "ll"))
GENERATION_EVAL = ("sacc", "dsteps", "ll")
RECIPE_SUFFIX = {"arrow-room": "arrow"}  # scenegen dataset name -> recipe suffix, where they differ

TABLES: dict[str, Table] = {table.name: table for table in (
    Table(
        "table1", "Table 1: scene structure accuracy (S-Acc), discriminability (D-Steps), log-likelihood (LL)",
        ("arrow-room", "mnist10", "mnist4"),
        (Row("GNM", "gnm"), Row("GENESIS", "genesis"), Row("ConvDRAW", "convdraw4"), Row("ConvDRAW-8", "convdraw8"),
         Row("VAE", "vae")),
        GENERATION, GENERATION_EVAL),
    Table(
        "table2", "Table 2: ablations",
        ("arrow-room", "mnist10"),
        (Row("GNM-Struct", "gnm"), Row("GNM-Gaussian", "gnm-gaussian"), Row("GNM-NoMLP", "gnm-nomlp"),
         Row("ConvDRAW", "convdraw4"), Row("ConvDRAW-MLP", "convdraw-mlp")),
        GENERATION, GENERATION_EVAL),
    Table(
        "table3", "Table 3: MNIST-4-10",
        ("mnist4-10",),
        (Row("GNM", "gnm"), Row("GNM-8", "gnm8"), Row("GNM-β-2", "gnm-beta2"), Row("GNM-8-β-2", "gnm8-beta2"),
         Row("GENESIS", "genesis"), Row("ConvDRAW", "convdraw4"), Row("ConvDRAW-8", "convdraw8"),
         Row("ConvDRAW-β-10", "convdraw4-beta10"), Row("ConvDRAW-8-β-10", "convdraw8-beta10")),
        GENERATION, GENERATION_EVAL),
    Table(
        "table4", "Table 4: representation (box AP, COCO 101-point; z_what probe accuracy)",
        ("mnist10", "mnist4"),
        (Row("GNM", "gnm"), Row("SPACE", "space")),
        (("AP@0.5", "ap50"), ("AP@[.5:.95]", "ap50_95"), ("z_what acc", "zwhat_acc")), ("ap", "zwhat")),
)}


def recipe_name(model: str, dataset: str) -> str:
    """The recipe stem of a row on a dataset, e.g. ('gnm8', 'mnist4-10') -> 'gnm8-mnist4-10'."""
    return f"{model}-{RECIPE_SUFFIX.get(dataset, dataset)}"
