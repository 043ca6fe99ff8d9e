"""Run configuration: typed dataclasses, YAML recipes (which may `base:` another recipe),
dotted `key=value` overrides, and the resolved config saved in each run folder.

A recipe is a YAML mapping with the sections of RunConfig:

    base: gnm-mnist4            # optional: another recipe in the same folder, merged underneath
    dataset: mnist4             # the dataset name the shards must hold
    model: {preset: mnist, draw_steps: 4}
    train: {batch_size: 32, steps: 1100000}
    schedule:                   # name: [start_value, end_value, start_step, end_step]
      rho: [0.1, 0.001, 0, 4000]

A null value removes that key of the base (how a baseline recipe drops GNM's schedule entries).
Every value is parsed to its field's type; an unknown key is a UserError naming the key.
"""

from __future__ import annotations

import dataclasses
import typing
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from gnm.model import MODEL_KINDS, PRESETS, ModelConfig
from gnm.train.schedules import ScheduleEntry
from scenegen.errors import UserError


@dataclass(frozen=True)
class TrainConfig:
    """Optimisation and bookkeeping. batch_size is global: under DDP each of the world_size
    processes takes batch_size / world_size images per step. The learning rate of step s is
    lr * lr_scale.at(s), lr_scale a schedule-table row (default: constant 1). amp (bf16 autocast)
    and channels_last take effect on CUDA only. n_check_samples=0 turns the structure check off."""

    steps: int = 1_100_000
    batch_size: int = 32
    optimizer: Literal["rmsprop", "adam"] = "rmsprop"
    lr: float = 1e-4
    lr_scale: ScheduleEntry = ScheduleEntry(1.0, 1.0, 0, 0)  # [start, end, start_step, end_step], as `schedule`
    grad_clip: float = 1.0
    log_every: int = 50
    image_every: int = 2000
    ckpt_every: int = 5000
    keep_last: int = 3
    sample_every: int = 10000
    n_check_samples: int = 250
    max_nonfinite: int = 20
    device: str = "auto"
    num_workers: int = 2
    seed: int = 0
    amp: bool = True
    channels_last: bool = True
    compile: bool = False
    find_unused_parameters: bool = False


@dataclass(frozen=True)
class RunConfig:
    """Everything a run needs besides its data: the dataset name it expects, the model,
    the training settings and the schedule table of annealed loss coefficients (entries for
    every coefficient the model's kind requires, and any of its optional ones)."""

    dataset: str
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    schedule: Mapping[str, ScheduleEntry] = field(default_factory=dict)

    def __post_init__(self) -> None:
        kind = self.model.kind
        required, optional = MODEL_KINDS[kind].required_coeffs, MODEL_KINDS[kind].optional_coeffs
        missing = [name for name in required if name not in self.schedule]
        if missing:
            raise UserError(f"schedule lacks {missing}; every {kind} recipe needs entries for {list(required)}")
        unknown = sorted(set(self.schedule) - set(required) - set(optional))
        if unknown:
            raise UserError(f"schedule entry {unknown[0]!r} is no model coefficient of kind {kind}; "
                            f"known: {', '.join([*required, *optional])}")


# ---------------------------------------------------------------- plain data <-> dataclasses


def _parse_scalar(tp: type, value: Any, key: str) -> Any:
    """bool, int, float or str from a YAML value or an override string."""
    if tp is bool:
        if isinstance(value, bool):
            return value
        text = str(value).strip().lower()
        if text in ("true", "yes", "on", "1"):
            return True
        if text in ("false", "no", "off", "0"):
            return False
        raise UserError(f"{key}: expected true or false, got {value!r}")
    if isinstance(value, bool) or isinstance(value, (list, dict)):
        raise UserError(f"{key}: expected {tp.__name__}, got {value!r}")
    try:
        if tp is int:
            number = float(value) if isinstance(value, float) else value
            if isinstance(number, float) and not number.is_integer():
                raise ValueError
            return int(number)
        return tp(value)
    except (TypeError, ValueError):
        raise UserError(f"{key}: expected {tp.__name__}, got {value!r}") from None


def _build(tp: Any, value: Any, key: str) -> Any:
    """Turn plain data (from YAML or an override) into a value of type `tp`, checking it."""
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if dataclasses.is_dataclass(tp):
        return _build_dataclass(tp, value, key)
    if isinstance(value, str) and origin in (tuple, list, Mapping, dict):
        value = yaml.safe_load(value)
    if origin is Literal:
        if value not in args:
            raise UserError(f"{key}: expected one of {list(args)}, got {value!r}")
        return value
    if origin in (tuple, list):
        if not isinstance(value, (list, tuple)):
            raise UserError(f"{key}: expected a list, got {value!r}")
        variadic = origin is list or (len(args) == 2 and args[1] is Ellipsis)
        item_types = [args[0]] * len(value) if variadic else args
        if len(item_types) != len(value):
            raise UserError(f"{key}: expected {len(item_types)} items, got {value!r}")
        return origin(_build(t, v, f"{key}[{i}]") for i, (t, v) in enumerate(zip(item_types, value)))
    if origin in (Mapping, dict):
        if not isinstance(value, Mapping):
            raise UserError(f"{key}: expected a mapping, got {value!r}")
        return {str(k): _build(args[1], v, f"{key}.{k}") for k, v in value.items()}
    if tp in (bool, int, float, str):
        return _parse_scalar(tp, value, key)
    raise TypeError(f"{key}: unsupported config type {tp}")


def _build_dataclass(cls: type, value: Any, key: str, base: Any = None) -> Any:
    """A dataclass from a mapping of its fields, or from a row listing them in order.
    Missing fields come from `base` (an instance) or from the field defaults."""
    fields = [f for f in dataclasses.fields(cls) if f.init]
    if isinstance(value, str):
        value = yaml.safe_load(value)
    if isinstance(value, (list, tuple)):
        if len(value) != len(fields):
            raise UserError(f"{key}: expected [{', '.join(f.name for f in fields)}], got {value!r}")
        value = dict(zip((f.name for f in fields), value))
    if isinstance(value, cls):
        return value
    if not isinstance(value, Mapping):
        raise UserError(f"{key}: expected a mapping of {cls.__name__} fields, got {value!r}")
    if cls is ModelConfig and base is None:
        value = dict(value)
        preset = value.pop("preset", "mnist")
        if preset not in PRESETS:
            raise UserError(f"{key}.preset: unknown preset {preset!r}; known: {', '.join(PRESETS)}")
        base = PRESETS[preset]
    hints = typing.get_type_hints(cls)
    names = {f.name for f in fields}
    unknown = sorted(set(value) - names)
    if unknown:
        where = f"{key}." if key else ""
        raise UserError(f"unknown config key {where}{unknown[0]}; known keys here: {', '.join(sorted(names))}")
    kwargs = {}
    for f in fields:
        sub = f"{key}.{f.name}" if key else f.name
        if f.name in value:
            kwargs[f.name] = _build(hints[f.name], value[f.name], sub)
        elif base is not None:
            kwargs[f.name] = getattr(base, f.name)
        elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            raise UserError(f"config key {sub} is required")
    try:
        return cls(**kwargs)
    except (TypeError, ValueError) as err:
        raise UserError(f"{key or 'config'}: {err}") from None


def to_plain(value: Any) -> Any:
    """Dataclasses, mappings and tuples as plain dicts and lists (YAML/JSON ready)."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: to_plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, Mapping):
        return {str(k): to_plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_plain(v) for v in value]
    return value


def run_config_from_dict(values: Mapping[str, Any]) -> RunConfig:
    """Build and check a RunConfig from plain data (a merged recipe or a saved config)."""
    return _build_dataclass(RunConfig, {k: v for k, v in values.items() if k != "base"}, "")


# ---------------------------------------------------------------- recipes, overrides, files


def _merge(base: dict[str, Any], top: Mapping[str, Any]) -> dict[str, Any]:
    """Deep merge: mappings merge key by key, a null in `top` removes the key, anything else in `top` replaces."""
    merged = dict(base)
    for k, v in top.items():
        if v is None:
            merged.pop(k, None)
        else:
            merged[k] = _merge(merged[k], v) if isinstance(v, Mapping) and isinstance(merged.get(k), dict) else v
    return merged


def _read_yaml(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise UserError(f"recipe {path} not found; recipes live in recipes/*.yaml")
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as err:
        raise UserError(f"recipe {path} is not valid YAML: {str(err).splitlines()[0]}") from None
    if not isinstance(data, dict):
        raise UserError(f"recipe {path} must be a YAML mapping")
    return data


def load_recipe(path: Path, _seen: tuple[Path, ...] = ()) -> dict[str, Any]:
    """A recipe's plain data with its `base:` chain merged underneath (base names a sibling
    recipe, with or without .yaml)."""
    path = Path(path).resolve()
    if path in _seen:
        raise UserError(f"recipe {path.name}: `base:` chain loops through {path.name}")
    data = _read_yaml(path)
    base = data.pop("base", None)
    if base is None:
        return data
    base_path = path.parent / (base if str(base).endswith(".yaml") else f"{base}.yaml")
    return _merge(load_recipe(base_path, (*_seen, path)), data)


def apply_overrides(cfg: RunConfig, overrides: Sequence[str]) -> RunConfig:
    """Apply `dotted.key=value` strings (e.g. train.batch_size=16, schedule.tau.end_step=5000).
    Each key must name an existing field or schedule entry; values are parsed to its type."""
    tree = to_plain(cfg)
    for item in overrides:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise UserError(f"override {item!r} is not key=value (e.g. train.batch_size=16)")
        node: Any = tree
        parts = key.split(".")
        for depth, part in enumerate(parts):
            where = ".".join(parts[:depth])
            if not isinstance(node, dict):
                raise UserError(f"unknown config key {key!r}: {where} is a value, not a section")
            if part not in node:
                raise UserError(f"unknown config key {key!r}; known keys at {where or 'top level'}: {', '.join(node)}")
            if depth == len(parts) - 1:
                node[part] = raw
            node = node[part]
    return run_config_from_dict(tree)


def resolve_run_config(recipe: Path, overrides: Sequence[str] = ()) -> RunConfig:
    """The RunConfig of a recipe file with overrides applied."""
    return apply_overrides(run_config_from_dict(load_recipe(recipe)), overrides)


class _RecipeDumper(yaml.SafeDumper):
    """Block-style mappings, one-line lists: the layout of the recipes."""


_RecipeDumper.add_representer(
    list, lambda dumper, data: dumper.represent_sequence("tag:yaml.org,2002:seq", data, flow_style=True)
)


def save_run_config(cfg: RunConfig, path: Path) -> None:
    """Write the resolved config as a recipe (every field explicit, no `base:`, schedule rows)."""
    plain = to_plain(cfg)
    plain["schedule"] = {name: list(row.values()) for name, row in plain["schedule"].items()}
    plain["train"]["lr_scale"] = list(plain["train"]["lr_scale"].values())
    path.write_text(yaml.dump(plain, Dumper=_RecipeDumper, sort_keys=False))


def load_run_config(path: Path) -> RunConfig:
    """Read a config written by save_run_config."""
    return run_config_from_dict(_read_yaml(path))


RUN_CONFIG_NAME = "config.yaml"


def config_for_run(run_dir: Path, recipe: Path | None, overrides: Sequence[str] = ()) -> tuple[RunConfig, bool]:
    """(config, resuming). A run folder that already holds a saved config is resumed with that
    config (overrides on top, e.g. train.steps to train longer); otherwise the recipe starts it."""
    saved = run_dir / RUN_CONFIG_NAME
    if saved.is_file():
        return apply_overrides(load_run_config(saved), overrides), True
    if recipe is None:
        raise UserError(f"{run_dir} holds no run to resume; pass --recipe to start a new one")
    return resolve_run_config(recipe, overrides), False
