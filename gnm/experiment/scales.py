"""How big an experiment is: split sizes, training length and settings, evaluation effort.

`paper` runs every recipe as it is (the paper's lengths, ~1.1M steps) on scenegen's default
split sizes with the full evaluation protocol. `quick` exercises the whole pipeline on this
2-core CPU in about an hour: small splits, short runs with Adam at batch 8 (the settings of
recipes/gnm-mnist4-quick.yaml, measured to give working boxes on MNIST-4 in 3,000 steps), and a
cheap evaluation. Its numbers say that the pipeline works, not how good the models are.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from gnm.train.schedules import ScheduleEntry


@dataclass(frozen=True)
class Scale:
    """train/test_scenes and steps per dataset (steps None: each recipe's own); kind_steps: share of
    those steps for a model kind (default 1); train: train-section overrides; compress: schedule
    entries (and train.lr_scale) moved to fractions of the run (see `move_entry`); added: schedule
    entries (fractions of the run) added where the model kind reads them; eval:
    gnm.eval.run.EvalOptions fields."""

    train_scenes: Mapping[str, int]
    test_scenes: Mapping[str, int]
    steps: Mapping[str, int] | None = None
    kind_steps: Mapping[str, float] = field(default_factory=dict)
    train: Mapping[str, Any] = field(default_factory=dict)
    compress: Mapping[str, tuple[float, float]] = field(default_factory=dict)
    added: Mapping[str, tuple[float, float, float, float]] = field(default_factory=dict)
    eval: Mapping[str, Any] = field(default_factory=dict)


MNIST_FAMILY = ("mnist4", "mnist10", "mnist4-10")
AUX = ("beta_aux_pres", "beta_aux_where", "beta_aux_what", "beta_aux_depth")

SCALES: dict[str, Scale] = {
    "quick": Scale(
        train_scenes={**dict.fromkeys(MNIST_FAMILY, 2000), "arrow-room": 200},
        test_scenes={**dict.fromkeys(MNIST_FAMILY, 200), "arrow-room": 50},
        steps={**dict.fromkeys(MNIST_FAMILY, 1500), "arrow-room": 500},
        # a GENESIS step costs 15-25 GNM steps on a CPU (K full-resolution component decoders; at 0.2 its
        # 300 MNIST-10 steps took half of the measured quick table1)
        kind_steps={"genesis": 0.05},
        train={"batch_size": 8, "optimizer": "adam", "lr": 3.0e-4, "log_every": 50, "n_check_samples": 0,
               "num_workers": 1},
        # (start, end) step of each annealed coefficient as fractions of the run (gnm-mnist4-quick's shape)
        compress={"rho": (0.0, 1 / 3), "tau": (0.07, 0.67), "beta_g": (0.0, 1.0), "beta": (0.0, 1.0),
                  "beta_b": (0.0, 0.5), "alpha_force": (0.15, 0.15), "beta_aux_where": (0.0, 1 / 6),
                  "lr_scale": (1 / 3, 1 / 3)},
        # the auxiliary KLs warm up from 0: at full weight they switch every z_pres off at once (docs/training.md).
        # Over a third (500 MNIST steps, as gnm-mnist4-quick): over a sixth, GNM on MNIST-4 lost every object by
        # step 100 in one quick table1, and 2 seeds probed with both dipped deeper and recovered later
        added={name: (0.0, 1.0, 0.0, 1 / 3) for name in AUX},
        eval={"n_samples": 100, "ll_k": 10, "ll_images": 50, "dsteps_seeds": 1, "dsteps_max_steps": 1000,
              "zwhat_train_images": 500},
    ),
    "paper": Scale(
        train_scenes=dict.fromkeys((*MNIST_FAMILY, "arrow-room"), 60000),
        test_scenes=dict.fromkeys((*MNIST_FAMILY, "arrow-room"), 6000),
    ),
}


def move_entry(name: str, entry: ScheduleEntry, steps: int, scale: Scale) -> ScheduleEntry:
    """The entry with its values kept and its steps moved to scale.compress[name] fractions of a
    run of `steps` (unchanged when the scale does not compress it)."""
    if name not in scale.compress:
        return entry
    start, end = scale.compress[name]
    return ScheduleEntry(entry.start_value, entry.end_value, round(start * steps), round(end * steps))


def scaled_schedule(schedule: Mapping[str, ScheduleEntry], accepted: set[str], steps: int,
                    scale: Scale) -> dict[str, ScheduleEntry]:
    """A recipe's schedule for a run of `steps`: every entry moved by `move_entry`; entries of
    scale.added join when `accepted` (the coefficients the model kind reads) has them, replacing a
    recipe entry of the same name only if the recipe does not anneal it (then its warm-up ends at
    the recipe's value)."""
    out = {name: move_entry(name, entry, steps, scale) for name, entry in schedule.items()}
    for name, (v0, v1, start, end) in scale.added.items():
        if name in accepted and (name not in schedule or schedule[name].start_value == schedule[name].end_value):
            final = schedule[name].end_value if name in schedule else v1
            out[name] = ScheduleEntry(v0, final, round(start * steps), round(end * steps))
    return out
