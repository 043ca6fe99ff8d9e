"""Arrow Room (GNM paper, section 4): four CLEVR-like objects rendered with Blender (Cycles) via BlenderProc.

One arrow; two objects of one shape; one object of a unique shape, which the arrow points at; one
material per image; the arrow nearest the camera. See docs/arrow_room.md.

Modules: config.py (ArrowRoomConfig), sampler.py (3D layouts, the rules, rule-breaking layouts;
numpy only), client.py (parent side of the render worker), worker.py / render.py / assets.py /
blender_env.py (inside the Blender worker subprocess).

make_shard samples every layout from the shard's rng in this process, then renders them all in one
Blender worker; a scene whose mask shows an object with fewer than cfg.min_visible_pixels pixels is
replaced by a new sample from the same rng (in scene order, so the bytes stay deterministic).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import numpy as np

from scenegen.datasets.arrow_room.blender_env import BLENDERPROC_VERSION, BPY_VERSION, RenderSetupError, check_installed
from scenegen.datasets.arrow_room.config import ArrowRoomConfig
from scenegen.datasets.arrow_room.sampler import (
    NUM_OBJECTS,
    RULES,
    VIOLATIONS,
    ArrowScene,
    first_violation,
    sample_scene,
    violate,
)
from scenegen.datasets.base import DatasetSpec, Layout
from scenegen.errors import UserError
from scenegen.scene import Scene

MAX_RESAMPLE_ROUNDS = 50
VIOLATION_MAX_OBJECTS = NUM_OBJECTS + 1  # the five_objects violation
THREADS_ENV = "SCENEGEN_RENDER_THREADS"

__all__ = [
    "SPEC", "ArrowRoomConfig", "ArrowRoomResources", "ArrowScene", "RULES", "VIOLATIONS", "prepare",
    "make_shard", "make_scenes", "render_scenes", "sample_scene", "violate", "first_violation", "extra_attrs",
]


@dataclass(frozen=True)
class ArrowRoomResources:
    """How to render (picklable; travels to the runner's worker processes).

    device: "cpu" or "gpu" (CUDA/OptiX; checked in prepare()).
    threads: Cycles CPU threads per Blender worker (0: all cores). Not recorded: it changes no byte.
    violate: `--violate`: a VIOLATIONS kind or a rule name (one of its kinds per scene); None: valid scenes.
    """

    device: str = "cpu"
    threads: int = 0
    violate: str | None = None

    def provenance(self) -> dict[str, str]:
        described = {"renderer": f"Blender {BPY_VERSION} Cycles (bpy wheel) via BlenderProc {BLENDERPROC_VERSION}",
                     "render_device": self.device}
        return described if self.violate is None else {**described, "violate": self.violate}


def render_threads(options: dict[str, Any]) -> int:
    """Cycles threads per worker: options["threads"], else $SCENEGEN_RENDER_THREADS, else cores / workers."""
    if options.get("threads"):
        return int(options["threads"])
    if os.environ.get(THREADS_ENV, "").isdigit():
        return int(os.environ[THREADS_ENV])
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(1, cores // max(1, int(options.get("workers") or 1)))


def prepare(cfg: ArrowRoomConfig, split: str, options: dict[str, Any]) -> ArrowRoomResources:
    """Check the render extra (and with options["gpu"], that Blender sees a GPU) once, in the parent.

    options: {"gpu": bool, "workers": int (processes sharing the cores; the runner sets it from --workers
    and the shard count), "threads": int, "violate": a VIOLATIONS kind or rule name}.
    """
    violation = options.get("violate")
    if violation is not None and violation not in VIOLATIONS and violation not in dict(RULES):
        raise UserError(f"--violate {violation}: choose a kind ({', '.join(VIOLATIONS)}) or a rule ({', '.join(dict(RULES))})")
    try:
        check_installed()
    except RenderSetupError as exc:
        raise UserError(str(exc))
    device = "gpu" if options.get("gpu") else "cpu"
    if device == "gpu":
        from scenegen.datasets.arrow_room.client import RenderError, RenderWorker

        try:
            RenderWorker(cfg, device="gpu", threads=1, probe=True).close()
        except RenderError as exc:
            raise UserError(str(exc).splitlines()[0])
    return ArrowRoomResources(device=device, threads=render_threads(options), violate=violation)


def to_scene(cfg: ArrowRoomConfig, arrow: ArrowScene, image: np.ndarray, mask: np.ndarray) -> Scene:
    """A rendered ArrowScene as a Scene: boxes from the visible mask (x_max/y_max exclusive; zeros if unseen)."""
    boxes = np.zeros((arrow.n, 4), np.float32)
    for i in range(arrow.n):
        ys, xs = np.nonzero(mask == i + 1)
        if len(xs):
            boxes[i] = (xs.min(), ys.min(), xs.max() + 1, ys.max() + 1)
    return Scene(image=image, boxes=boxes, labels=arrow.shapes.astype(np.int16), objects=arrow.objects(),
                 params=arrow.params(), images_extra={"masks": mask})


def visible_pixels(mask: np.ndarray, n: int) -> np.ndarray:
    """int [n] mask pixels of each object."""
    return np.bincount(mask.ravel(), minlength=n + 1)[1 : n + 1]


def render_scenes(cfg: ArrowRoomConfig, scenes: list[ArrowScene], resources: ArrowRoomResources | None = None) -> list[Scene]:
    """Render given ArrowScenes as they are (no visibility resampling), in one Blender worker."""
    from scenegen.datasets.arrow_room.client import RenderWorker

    res = resources or ArrowRoomResources()
    with RenderWorker(cfg, device=res.device, threads=res.threads) as worker:
        pictures = worker.render([s.to_render(cfg) for s in scenes])
    return [to_scene(cfg, s, image, mask) for s, (image, mask) in zip(scenes, pictures)]


def _draw(cfg: ArrowRoomConfig, rng: np.random.Generator, kind: str) -> ArrowScene:
    """A layout of `kind`: "valid", a VIOLATIONS key, or a rule name (one of its kinds at random)."""
    return sample_scene(cfg, rng) if kind == "valid" else violate(cfg, kind, rng)


def make_scenes(cfg: ArrowRoomConfig, rng: np.random.Generator, n: int, resources: ArrowRoomResources | None = None,
                kind: str = "valid") -> list[Scene]:
    """n rendered scenes of `kind` ("valid", a VIOLATIONS key or a rule name); every choice comes from rng.

    All layouts are sampled first, rendered in one worker; scenes with an object below
    cfg.min_visible_pixels are resampled (in scene order) and rendered again. Valid scenes are
    self-tested against the rules (on the rendered boxes): a failure is a generator bug.
    """
    from scenegen.datasets.arrow_room.client import RenderWorker

    res = resources or ArrowRoomResources()
    arrows = [_draw(cfg, rng, kind) for _ in range(n)]
    if not arrows:
        return []
    done: list[Scene | None] = [None] * n
    pending = list(range(n))
    with RenderWorker(cfg, device=res.device, threads=res.threads) as worker:
        for _ in range(MAX_RESAMPLE_ROUNDS):
            if not pending:
                break
            pictures = worker.render([arrows[i].to_render(cfg) for i in pending])
            retry = []
            for i, (image, mask) in zip(pending, pictures):
                if visible_pixels(mask, arrows[i].n).min() < cfg.min_visible_pixels:
                    retry.append(i)
                else:
                    done[i] = to_scene(cfg, arrows[i], image, mask)
            for i in retry:
                arrows[i] = _draw(cfg, rng, kind)
            pending = retry
    if pending:
        raise RuntimeError(f"{len(pending)} Arrow Room scenes stayed below min_visible_pixels={cfg.min_visible_pixels} "
                           f"after {MAX_RESAMPLE_ROUNDS} resamplings; lower it or widen the zones")
    scenes = [s for s in done if s is not None]
    if kind == "valid":
        for i, scene in enumerate(scenes):
            reason = first_violation(Layout.of(scene), cfg)
            if reason is not None:
                raise RuntimeError(f"generator bug: Arrow Room scene {i} breaks {reason}")
    return scenes


def make_shard(cfg: ArrowRoomConfig, split: str, rng: np.random.Generator, n: int, resources: ArrowRoomResources) -> list[Scene]:
    """The runner's entry: n valid scenes, or with resources.violate n rule-breaking ones (the split does
    not change the generator)."""
    return make_scenes(cfg, rng, n, resources, kind=resources.violate or "valid")


def extra_attrs(cfg: ArrowRoomConfig) -> dict[str, Any]:
    """Shard attributes beyond the config: the nominal camera (per-scene jittered ones are params)."""
    return {"camera_location": list(cfg.camera_location), "camera_look_at": list(cfg.camera_look_at),
            "camera_lens_mm": cfg.camera_lens_mm, "camera_sensor_mm": cfg.camera_sensor_mm,
            "shapes": list(cfg.shapes), "colors": list(cfg.colors), "materials": list(cfg.materials)}


SPEC = DatasetSpec(
    name="arrow-room",
    config_type=ArrowRoomConfig,
    channels=3,
    max_objects=lambda cfg: VIOLATION_MAX_OBJECTS,  # K = 5: valid scenes pad one slot; five_objects fits
    prepare=prepare,
    make_shard=make_shard,
    rules=RULES,
    shard_size=250,  # one Blender start (~2 CPU s) per 250 renders; fine-grained resume and progress
    extra_attrs=extra_attrs,
)
