"""The table as Markdown and CSV in the paper's layout, and the discriminator curves (Figure 4, right)."""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from gnm.experiment.tables import Table, recipe_name
from gnm.experiment.timing import StageTimes
from gnm.train.images import new_figure, save_figure
from scenegen.manifest import write_text_atomic

# (row label, dataset) -> the run's eval results, or None when the row has no recipe (not implemented)
ResultGrid = dict[tuple[str, str], "Mapping[str, Any] | None"]
NOT_IMPLEMENTED = "n/i"
NOT_APPLICABLE = "n/a"
DECIMALS = {"s_acc": 3, "ll": 0, "ap50": 3, "ap50_95": 3, "zwhat_acc": 3}


def cell(results: Mapping[str, Any] | None, key: str) -> str:
    """One table cell: the value formatted as the paper prints it; D-Steps censored at the cap as '>=cap'."""
    if results is None:
        return NOT_IMPLEMENTED
    value = results.get(key)
    if value is None:
        return NOT_APPLICABLE
    if key == "dsteps":
        return f">={value:.0f}" if all(results.get("dsteps_censored") or [False]) else f"{value:.0f}"
    return f"{value:.{DECIMALS.get(key, 3)}f}"


def table_rows(table: Table, datasets: tuple[str, ...], results: ResultGrid) -> list[list[str]]:
    """Header row ('Model', 'DATASET METRIC', ...) then one row per model."""
    header = ["Model", *(f"{d} {name}" for d in datasets for name, _ in table.metrics)]
    body = [[row.label, *(cell(results.get((row.label, d)), key) for d in datasets for _, key in table.metrics)]
            for row in table.rows]
    return [header, *body]


def markdown_table(rows: list[list[str]]) -> list[str]:
    """Markdown lines of a header row and body rows."""
    return ["| " + " | ".join(rows[0]) + " |", "|" + "---|" * len(rows[0]), *("| " + " | ".join(r) + " |" for r in rows[1:])]


def dataset_minutes(table: Table, dataset: str, times: StageTimes) -> float:
    """Minutes spent on one dataset of the table: its splits, then training and evaluating every row."""
    stems = [recipe_name(row.model, dataset) for row in table.rows]
    return times.minutes(f"data/{dataset}") + sum(times.minutes(f"{stage}/{s}") for s in stems for stage in ("train", "eval"))


def time_rows(table: Table, datasets: tuple[str, ...], results: ResultGrid, times: StageTimes) -> list[list[str]]:
    """Minutes per dataset: making the splits, then 'train + eval' per model row, then the dataset's sum."""
    header = ["minutes", "data", *(row.label for row in table.rows), "all"]
    body = []
    for d in datasets:
        stems = [recipe_name(row.model, d) for row in table.rows]
        cells = [f"{times.minutes(f'train/{s}'):.1f} + {times.minutes(f'eval/{s}'):.1f}"
                 if results.get((row.label, d)) is not None else NOT_IMPLEMENTED for row, s in zip(table.rows, stems)]
        body.append([d, f"{times.minutes(f'data/{d}'):.1f}", *cells, f"{dataset_minutes(table, d, times):.1f}"])
    return [header, *body]


def write_table(table: Table, datasets: tuple[str, ...], results: ResultGrid, times: StageTimes,
                out: Path) -> list[Path]:
    """OUT/TABLE.md (the table, its n/i and n/a legend and notes, then the time each stage took) and
    OUT/TABLE.csv (the table)."""
    rows = table_rows(table, datasets, results)
    notes = sorted({f"- {label} on {d}: {note}" for (label, d), res in results.items() if res
                    for note in res.get("notes", {}).values()})
    cells = {c for r in rows[1:] for c in r}
    legend = ([f"{NOT_IMPLEMENTED}: model not implemented (no recipe)."] if NOT_IMPLEMENTED in cells else []) + \
             ([f"{NOT_APPLICABLE}: metric not applicable or not computable."] if NOT_APPLICABLE in cells else [])
    total = sum(dataset_minutes(table, d, times) for d in datasets)
    timing = [f"Time: {total:.0f} minutes of wall-clock in all, on {times.hardware}; per stage (train + eval per "
              "model, each summed over every `gnm experiment` call that worked on it):", "",
              *markdown_table(time_rows(table, datasets, results, times))]
    sections = [[table.title], markdown_table(rows), [" ".join(legend), *notes] if legend or notes else [], timing]
    buffer = io.StringIO()
    csv.writer(buffer).writerows(rows)
    return [write_text_atomic(out / f"{table.name}.md", "\n\n".join("\n".join(s) for s in sections if s) + "\n"),
            write_text_atomic(out / f"{table.name}.csv", buffer.getvalue())]


def write_curves(table: Table, dataset: str, results: ResultGrid, out: Path) -> Path:
    """Held-out accuracy of the real-vs-generated classifier against its step, one line per model
    (seed 0's run), as OUT/TABLE-dsteps-DATASET.png."""
    fig, ax = new_figure(6, 4)
    for row in table.rows:
        curves = (results.get((row.label, dataset)) or {}).get("dsteps_curve_points")
        if curves and curves[0]:
            steps, accuracy = zip(*curves[0])
            ax.plot(steps, accuracy, marker="o", markersize=3, linewidth=1.2, label=row.label)  # markers: a one-point curve shows
    ax.axhline(0.9, color="grey", linestyle="--", linewidth=1)
    ax.set(xlabel="discriminator step", ylabel="held-out accuracy", ylim=(0.4, 1.0), title=f"{dataset}: D-Steps")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    return save_figure(fig, out / f"{table.name}-dsteps-{dataset}.png")
