"""Arrow Room scenes in 3D: the rules (the one place they live), layout sampling, and rule-breaking layouts.

Pure numpy; runs in the parent process. The renderer (render.py, inside a Blender worker) only
draws what an `ArrowScene` says.

Rules (RULES, in order; each may assume the earlier ones passed) judge a `Layout`:
  labels              int [n] shape ids (index into cfg.shapes; 0 = arrow)
  objects["materials"] int [n] material ids (index into cfg.materials)
  objects["positions"] float [n, 3] world position of each object's bounding-box centre
  objects["headings"]  float [n] yaw in radians, atan2(dir_y, dir_x) of the direction the object faces
                       (for the arrow: the direction of its tip)
Boxes and colours are not judged (colours are free). The checker supplies these keys from what it
recognises in the pixels; ground truth supplies them exactly.

World: z up, floor z = 0, the camera looks roughly along +y from negative y (see config.py).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any

import numpy as np

from scenegen.datasets.arrow_room.config import ArrowRoomConfig
from scenegen.datasets.base import Layout

ARROW = 0  # label of the arrow (cfg.shapes[0] == "arrow")
NUM_OBJECTS = 4

# CLEVR-like three-point lighting: name, nominal location, power (W), square area-light size, aim point.
LIGHT_RIG: tuple[tuple[str, tuple[float, float, float], float, float, tuple[float, float, float]], ...] = (
    ("key", (4.5, -3.5, 6.5), 350.0, 2.5, (0.0, 0.0, 0.0)),
    ("fill", (-5.0, -2.5, 4.5), 80.0, 3.0, (0.0, 0.0, 0.0)),
    ("back", (0.0, 28.0, 10.0), 5000.0, 16.0, (0.0, 10.0, 0.0)),  # lights the far floor: the lighter background
)
WORLD_STRENGTH = 0.2  # uniform grey ambient light

# ---------------------------------------------------------------------------------------------
# Camera geometry (the same maths render.py hands to Blender as the camera matrix)
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Camera:
    """A pinhole camera looking at `look_at` with world z up (Blender: looks along local -Z, +Y up)."""

    location: tuple[float, float, float]
    look_at: tuple[float, float, float]
    lens_mm: float
    sensor_mm: float
    image_size: int

    def rotation(self) -> np.ndarray:
        """float64 [3, 3] world-from-camera rotation; columns are the camera's x (right), y (up), z (back)."""
        forward = np.asarray(self.look_at, np.float64) - np.asarray(self.location, np.float64)
        forward /= np.linalg.norm(forward)
        right = np.cross(forward, (0.0, 0.0, 1.0))
        right /= np.linalg.norm(right)
        up = np.cross(right, forward)
        return np.stack([right, up, -forward], axis=1)

    def matrix_world(self) -> list[list[float]]:
        """4x4 camera-to-world matrix (row-major lists) for Blender's camera.matrix_world."""
        m = np.eye(4)
        m[:3, :3] = self.rotation()
        m[:3, 3] = self.location
        return m.tolist()

    @property
    def focal_px(self) -> float:
        return self.lens_mm / self.sensor_mm * self.image_size

    def project(self, points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """World points [n, 3] -> (pixel coordinates [n, 2] as (x right, y down), depth [n] along the view)."""
        p = (np.asarray(points, np.float64).reshape(-1, 3) - np.asarray(self.location)) @ self.rotation()
        depth = -p[:, 2]
        half = self.image_size / 2
        uv = np.stack([half + self.focal_px * p[:, 0] / depth, half - self.focal_px * p[:, 1] / depth], axis=1)
        return uv, depth


def nominal_camera(cfg: ArrowRoomConfig) -> Camera:
    return Camera(tuple(cfg.camera_location), tuple(cfg.camera_look_at), cfg.camera_lens_mm, cfg.camera_sensor_mm, cfg.image_size)


# ---------------------------------------------------------------------------------------------
# Object geometry
# ---------------------------------------------------------------------------------------------


def arrow_outline(cfg: ArrowRoomConfig) -> np.ndarray:
    """float [7, 2] the block-arrow icon's outline in its own frame (tip along +x, centred), counter-clockwise.

    Shared with the mesh builder (assets.py), so footprints and rendered shapes agree exactly.
    """
    half_len, head, shaft = cfg.arrow_length / 2, cfg.arrow_head_width / 2, cfg.arrow_shaft_width / 2
    neck = half_len - cfg.arrow_head_length
    return np.array([(-half_len, -shaft), (neck, -shaft), (neck, -head), (half_len, 0.0),
                     (neck, head), (neck, shaft), (-half_len, shaft)], np.float64)


def object_height(cfg: ArrowRoomConfig, shape: str, scale: float) -> float:
    return (cfg.arrow_thickness if shape == "arrow" else cfg.object_size) * scale


def hull_points(cfg: ArrowRoomConfig, shape: str, position: np.ndarray, heading: float, scale: float) -> np.ndarray:
    """float [m, 3] points on an object's surface whose projections bound its image (for frame/occlusion tests)."""
    half_h = object_height(cfg, shape, scale) / 2
    if shape == "arrow":
        ring = arrow_outline(cfg) * scale
    elif shape == "cube":
        r = cfg.object_size * scale / 2
        ring = np.array([(-r, -r), (r, -r), (r, r), (-r, r)])
    else:
        r = cfg.object_size * scale / 2
        angles = np.linspace(0, 2 * np.pi, 24, endpoint=False)
        ring = r * np.stack([np.cos(angles), np.sin(angles)], axis=1)
    c, s = np.cos(heading), np.sin(heading)
    ring = ring @ np.array([[c, s], [-s, c]])  # rotate by heading
    if shape == "sphere":  # rings at several heights
        levels = np.linspace(-1, 1, 7)
        pts = [np.column_stack([ring * np.sqrt(1 - t * t), np.full(len(ring), t * half_h)]) for t in levels]
        pts = np.concatenate(pts)
    else:
        pts = np.concatenate([np.column_stack([ring, np.full(len(ring), z)]) for z in (-half_h, half_h)])
    return pts + np.asarray(position, np.float64)


def footprint_radius(cfg: ArrowRoomConfig, shape: str, scale: float) -> float:
    """Radius of a circle around a non-arrow object's footprint (the arrow uses its outline polygon)."""
    r = cfg.object_size * scale / 2
    return r * np.sqrt(2) if shape == "cube" else r


def _polygon_circle_gap(poly: np.ndarray, centre: np.ndarray, radius: float) -> float:
    """Distance between a convex-or-not polygon [m, 2] and a circle (negative when they overlap)."""
    a, b = poly, np.roll(poly, -1, axis=0)
    ab = b - a
    t = np.clip(((centre - a) * ab).sum(1) / (ab * ab).sum(1), 0, 1)
    dist = np.linalg.norm(a + t[:, None] * ab - centre, axis=1).min()
    # even-odd inside test
    x, y = centre
    crosses = ((a[:, 1] > y) != (b[:, 1] > y)) & (x < a[:, 0] + (y - a[:, 1]) * ab[:, 0] / np.where(ab[:, 1] == 0, 1e-12, ab[:, 1]))
    inside = bool(crosses.sum() % 2)
    return -dist - radius if inside else dist - radius


# ---------------------------------------------------------------------------------------------
# The scene description
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ArrowScene:
    """One 3D scene: everything render.py needs, and the ground truth the rules read.

    shapes/colors/materials: int [n] ids into cfg.shapes / cfg.colors / cfg.materials.
    positions: float [n, 3] bounding-box centres; headings: float [n] yaw (rad); scales: float [n].
    camera: the jittered camera; lights: (name, location, power W, size, aim point) per light.
    kind: "valid" or the violation kind it was made as (see VIOLATIONS).
    """

    shapes: np.ndarray
    colors: np.ndarray
    materials: np.ndarray
    positions: np.ndarray
    headings: np.ndarray
    scales: np.ndarray
    camera: Camera
    lights: tuple[tuple[str, tuple[float, float, float], float, float, tuple[float, float, float]], ...]
    floor_grey: float
    render_seed: int
    kind: str = "valid"

    @property
    def n(self) -> int:
        return len(self.shapes)

    def objects(self) -> dict[str, np.ndarray]:
        """The per-object ground truth as stored in shards (dtypes fixed here)."""
        return {
            "colors": self.colors.astype(np.int16),
            "materials": self.materials.astype(np.int16),
            "positions": self.positions.astype(np.float32),
            "headings": self.headings.astype(np.float32),
            "scales": self.scales.astype(np.float32),
        }

    def params(self) -> dict[str, int | float]:
        """Per-scene scalars stored in shards: the jittered camera and lights, floor albedo, render seed."""
        out: dict[str, int | float] = {}
        for axis, v in zip("xyz", self.camera.location):
            out[f"camera_{axis}"] = float(v)
        for name, loc, *_ in self.lights:
            for axis, v in zip("xyz", loc):
                out[f"light_{name}_{axis}"] = float(v)
        out["floor_grey"] = float(self.floor_grey)
        out["render_seed"] = int(self.render_seed)
        return out

    def projected_boxes(self, cfg: ArrowRoomConfig) -> np.ndarray:
        """float32 [n, 4] image boxes of the objects' outlines (ignoring occlusion); an estimate of the real ones."""
        boxes = []
        for i in range(self.n):
            uv, _ = self.camera.project(hull_points(cfg, cfg.shapes[self.shapes[i]], self.positions[i], self.headings[i], self.scales[i]))
            boxes.append((uv[:, 0].min(), uv[:, 1].min(), uv[:, 0].max(), uv[:, 1].max()))
        return np.asarray(boxes, np.float32).reshape(-1, 4)

    def layout(self, cfg: ArrowRoomConfig, boxes: np.ndarray | None = None) -> Layout:
        """The Layout the rules judge (boxes: from the rendered mask, else projected)."""
        return Layout(self.projected_boxes(cfg) if boxes is None else boxes, self.shapes.astype(np.int16), self.objects())

    def to_render(self, cfg: ArrowRoomConfig) -> dict[str, Any]:
        """JSON-able description for the render worker."""
        return {
            "objects": [
                {
                    "shape": cfg.shapes[int(self.shapes[i])],
                    "color": list(cfg.linear_color(int(self.colors[i]))),
                    "material": cfg.materials[int(self.materials[i])],
                    "position": [float(v) for v in self.positions[i]],
                    "heading": float(self.headings[i]),
                    "scale": float(self.scales[i]),
                }
                for i in range(self.n)
            ],
            "camera": {"matrix_world": self.camera.matrix_world(), "lens_mm": self.camera.lens_mm, "sensor_mm": self.camera.sensor_mm},
            "lights": [{"name": n, "location": list(loc), "power": p, "size": s, "aim": list(aim)} for n, loc, p, s, aim in self.lights],
            "floor_grey": float(self.floor_grey),
            "seed": int(self.render_seed),
        }


# ---------------------------------------------------------------------------------------------
# Rules
# ---------------------------------------------------------------------------------------------


def _need(layout: Layout, key: str) -> np.ndarray:
    if key not in layout.objects:
        raise KeyError(f"the layout has no objects[{key!r}]; Arrow Room rules need materials, positions and headings")
    return np.asarray(layout.objects[key])


def _names(cfg: ArrowRoomConfig, table: tuple[str, ...], ids: np.ndarray) -> str:
    return ", ".join(table[int(i)] if 0 <= int(i) < len(table) else f"#{int(i)}" for i in ids)


def count_rule(layout: Layout, cfg: ArrowRoomConfig) -> str | None:
    n = len(layout.labels)
    return None if n == NUM_OBJECTS else f"{n} objects, expected {NUM_OBJECTS}"


def one_arrow(layout: Layout, cfg: ArrowRoomConfig) -> str | None:
    k = int((np.asarray(layout.labels) == ARROW).sum())
    return None if k == 1 else f"{k} arrows, expected 1"


def unique_and_pair(layout: Layout, cfg: ArrowRoomConfig) -> str | None:
    """Besides the arrow: two objects of one shape and one object of another shape."""
    others = [int(v) for v in np.asarray(layout.labels) if int(v) != ARROW]
    if sorted(Counter(others).values()) == [1, 2]:
        return None
    return f"the other shapes are {_names(cfg, cfg.shapes, np.array(sorted(others)))}; expected two of one shape and one of another"


def one_material(layout: Layout, cfg: ArrowRoomConfig) -> str | None:
    materials = _need(layout, "materials")
    if len(set(int(m) for m in materials)) <= 1:
        return None
    return f"materials are {_names(cfg, cfg.materials, materials)}; expected one material for all objects"


def camera_distances(layout: Layout, cfg: ArrowRoomConfig) -> np.ndarray:
    """float [n] distance of each object's centre from the nominal camera."""
    return np.linalg.norm(_need(layout, "positions").reshape(-1, 3) - np.asarray(cfg.camera_location), axis=1)


def arrow_nearest(layout: Layout, cfg: ArrowRoomConfig) -> str | None:
    d = camera_distances(layout, cfg)
    arrow = int(np.flatnonzero(np.asarray(layout.labels) == ARROW)[0])
    nearest = int(np.argmin(d))
    if nearest == arrow or d[nearest] >= d[arrow]:
        return None
    return (f"the {cfg.shapes[int(layout.labels[nearest])]} is nearer the camera ({d[nearest]:.2f}) "
            f"than the arrow ({d[arrow]:.2f})")


def pointing_angles(layout: Layout, cfg: ArrowRoomConfig) -> tuple[int, np.ndarray]:
    """(arrow index, float [n] degrees between the arrow's heading and the floor direction to each object; NaN for the arrow)."""
    labels = np.asarray(layout.labels)
    pos = _need(layout, "positions").reshape(-1, 3)[:, :2].astype(np.float64)
    arrow = int(np.flatnonzero(labels == ARROW)[0])
    heading = float(_need(layout, "headings")[arrow])
    direction = np.array([np.cos(heading), np.sin(heading)])
    to = pos - pos[arrow]
    angle = np.degrees(np.arctan2(to[:, 1] * direction[0] - to[:, 0] * direction[1], to @ direction))
    angle = np.abs(angle)
    angle[arrow] = np.nan
    return arrow, angle


def arrow_points_at_unique(layout: Layout, cfg: ArrowRoomConfig) -> str | None:
    """The arrow's heading is within the tolerance of the direction to the unique-shape object, and
    closer to it than to the direction of any other object."""
    labels = np.asarray(layout.labels)
    counts = Counter(int(v) for v in labels)
    unique = int(next(i for i, v in enumerate(labels) if int(v) != ARROW and counts[int(v)] == 1))
    _, angle = pointing_angles(layout, cfg)
    best = int(np.nanargmin(angle))
    if best == unique and angle[unique] <= cfg.pointing_tolerance_deg:
        return None
    return (f"the arrow points {angle[unique]:.0f} deg off the unique {cfg.shapes[int(labels[unique])]} "
            f"(tolerance {cfg.pointing_tolerance_deg:g}); the nearest direction is the {cfg.shapes[int(labels[best])]}'s "
            f"at {angle[best]:.0f} deg")


RULES = (
    ("count", count_rule),
    ("one_arrow", one_arrow),
    ("pair_and_unique", unique_and_pair),
    ("one_material", one_material),
    ("arrow_nearest", arrow_nearest),
    ("arrow_points_at_unique", arrow_points_at_unique),
)


def first_violation(layout: Layout, cfg: ArrowRoomConfig) -> str | None:
    """'rule: reason' for the first rule broken, None when the layout obeys them all (as DatasetSpec does)."""
    for name, rule in RULES:
        reason = rule(layout, cfg)
        if reason is not None:
            return f"{name}: {reason}"
    return None


# ---------------------------------------------------------------------------------------------
# Sampling (valid scenes and rule-breaking ones share one sampler)
# ---------------------------------------------------------------------------------------------

# Violation kind -> the rule it breaks (it is the first and, except for count/one_arrow, only one).
VIOLATIONS: dict[str, str] = {
    "three_objects": "count",
    "five_objects": "count",
    "no_arrow": "one_arrow",
    "three_of_a_shape": "pair_and_unique",
    "mixed_materials": "one_material",
    "arrow_not_nearest": "arrow_nearest",
    "points_at_pair": "arrow_points_at_unique",
    "points_away": "arrow_points_at_unique",
}
MAX_ATTEMPTS = 50_000


class SamplingError(RuntimeError):
    """The config leaves no room for a layout (zones too small, margins too strict)."""


def _angle_deg(a: float, b: float) -> float:
    return float(np.degrees(abs((a - b + np.pi) % (2 * np.pi) - np.pi)))


def _jittered(rng: np.random.Generator, base: tuple[float, ...], amount: float) -> tuple[float, ...]:
    return tuple(float(v) for v in np.asarray(base, np.float64) + rng.uniform(-amount, amount, len(base)))


def _plan(cfg: ArrowRoomConfig, kind: str, rng: np.random.Generator) -> tuple[list[int], int, int | None]:
    """Shapes of a scene of `kind` before shuffling: [arrow, unique, pair, pair (, pair)], plus the
    index of the object in the front zone and the index the arrow aims at (None: at nothing)."""
    non_arrow = list(range(1, len(cfg.shapes)))
    pair, unique = (int(v) for v in rng.choice(non_arrow, 2, replace=False))
    shapes = [ARROW, unique, pair, pair]
    if kind == "three_objects":
        shapes = shapes[:3]
    elif kind == "five_objects":
        shapes = shapes + [pair]
    elif kind == "three_of_a_shape":
        shapes[1] = pair
    elif kind == "no_arrow":
        shapes[0] = int(rng.choice(non_arrow))
    front = 0
    if kind == "arrow_not_nearest":  # the target comes forward; the arrow, in the row, points back at it
        front = 1
    aim: int | None = 1
    if kind == "points_at_pair":
        aim = int(rng.choice([2, 3]))
    elif kind in ("points_away", "no_arrow"):
        aim = None
    return shapes, front, aim


def sample_scene(cfg: ArrowRoomConfig, rng: np.random.Generator, kind: str = "valid") -> ArrowScene:
    """One scene of `kind` ("valid" or a VIOLATIONS key) by rejection sampling; every choice comes from rng.

    Order of objects in the scene is random (the arrow is not always object 0).
    """
    if kind != "valid" and kind not in VIOLATIONS:
        raise ValueError(f"unknown scene kind {kind!r}; choose 'valid' or one of {', '.join(VIOLATIONS)}")
    shapes, front, aim = _plan(cfg, kind, rng)
    n = len(shapes)
    material = int(rng.integers(len(cfg.materials)))
    materials = np.full(n, material)
    if kind == "mixed_materials":
        while len(set(materials.tolist())) < 2:
            materials = rng.integers(len(cfg.materials), size=n)
    colors = rng.integers(len(cfg.colors), size=n)
    scales = rng.uniform(1 - cfg.size_jitter, 1 + cfg.size_jitter, n)
    camera = Camera(_jittered(rng, cfg.camera_location, cfg.camera_jitter), tuple(cfg.camera_look_at),
                    cfg.camera_lens_mm, cfg.camera_sensor_mm, cfg.image_size)
    nominal = nominal_camera(cfg)
    lights = tuple((name, _jittered(rng, loc, cfg.light_jitter), power, size, target) for name, loc, power, size, target in LIGHT_RIG)
    floor_grey = float(cfg.floor_grey + rng.uniform(-cfg.floor_grey_jitter, cfg.floor_grey_jitter))
    render_seed = int(rng.integers(0, 2**31 - 1))
    names = [cfg.shapes[s] for s in shapes]
    arrow = shapes.index(ARROW) if ARROW in shapes else None

    for _ in range(MAX_ATTEMPTS):
        positions, headings = _place(cfg, rng, names, scales, front)
        if arrow is not None:
            heading = _arrow_heading(cfg, rng, positions, arrow, aim)
            if heading is None:
                continue
            headings[arrow] = heading
        if not _apart(cfg, names, positions, headings, scales):
            continue
        if arrow is not None and not _legible(cfg, camera, names, positions, headings, scales, arrow, aim):
            continue
        if not _visible_enough(cfg, camera, names, positions, headings, scales):
            continue
        if not _nearest_ok(cfg, (camera, nominal), positions, arrow, front, kind):
            continue
        order = rng.permutation(n)
        return ArrowScene(
            shapes=np.asarray(shapes)[order], colors=colors[order], materials=materials[order],
            positions=positions[order], headings=headings[order], scales=scales[order], camera=camera,
            lights=lights, floor_grey=floor_grey, render_seed=render_seed, kind=kind,
        )
    raise SamplingError(f"no {kind} Arrow Room layout found in {MAX_ATTEMPTS} attempts; loosen the zones or margins")


def _place(cfg: ArrowRoomConfig, rng: np.random.Generator, names: list[str], scales: np.ndarray, front: int):
    """Floor positions (object `front` in the front zone, the rest in the row zone) and random yaws."""
    n = len(names)
    positions = np.zeros((n, 3))
    headings = rng.uniform(-np.pi, np.pi, n)
    deeper = cfg.object_size * 1.5 if n > NUM_OBJECTS else 0.0  # a fifth object needs a second row
    for i in range(n):
        x0, x1, y0, y1 = cfg.front_zone if i == front else cfg.row_zone
        y1 = y1 if i == front else y1 + deeper
        positions[i] = (rng.uniform(x0, x1), rng.uniform(y0, y1), object_height(cfg, names[i], scales[i]) / 2)
    return positions, headings


def _apart(cfg: ArrowRoomConfig, names, positions, headings, scales) -> bool:
    """No two footprints closer than min_gap (so no interpenetration)."""
    n = len(names)
    return all(_floor_gap(cfg, names, positions, headings, scales, i, j) >= cfg.min_gap for i in range(n) for j in range(i + 1, n))


def _floor_gap(cfg, names, positions, headings, scales, i, j) -> float:
    if names[i] == "arrow" or names[j] == "arrow":
        a, b = (i, j) if names[i] == "arrow" else (j, i)
        if names[b] == "arrow":  # two arrows: compare bounding circles
            return float(np.linalg.norm(positions[a, :2] - positions[b, :2]) - (scales[a] + scales[b]) * cfg.arrow_length / 2)
        c, s = np.cos(headings[a]), np.sin(headings[a])
        poly = arrow_outline(cfg) * scales[a] @ np.array([[c, s], [-s, c]]) + positions[a, :2]
        return _polygon_circle_gap(poly, positions[b, :2], footprint_radius(cfg, names[b], scales[b]))
    d = float(np.linalg.norm(positions[i, :2] - positions[j, :2]))
    return d - footprint_radius(cfg, names[i], scales[i]) - footprint_radius(cfg, names[j], scales[j])


def _arrow_heading(cfg: ArrowRoomConfig, rng: np.random.Generator, positions: np.ndarray, arrow: int, aim: int | None) -> float | None:
    """The arrow's yaw: at object `aim` (+ jitter) with every other object well off it; None if impossible here."""
    to = positions[:, :2] - positions[arrow, :2]
    directions = np.arctan2(to[:, 1], to[:, 0])
    if aim is None:  # points away: no object within the separation angle
        heading = float(rng.uniform(-np.pi, np.pi))
        others = [k for k in range(len(positions)) if k != arrow]
        ok = all(_angle_deg(heading, directions[k]) >= cfg.pointing_separation_deg for k in others)
        return heading if ok else None
    heading = float(directions[aim] + np.radians(rng.uniform(-cfg.pointing_jitter_deg, cfg.pointing_jitter_deg)))
    heading = float((heading + np.pi) % (2 * np.pi) - np.pi)
    for k in range(len(positions)):
        if k not in (arrow, aim) and _angle_deg(heading, directions[k]) < cfg.pointing_separation_deg:
            return None
    return heading


def _legible(cfg: ArrowRoomConfig, camera: Camera, names: list[str], positions: np.ndarray, headings: np.ndarray,
             scales: np.ndarray, arrow: int, aim: int | None) -> bool:
    """In the image too, the arrow's ray runs through the middle of `aim` and clear of every other
    object ahead of it (aim None: clear of all). Perspective compresses floor angles, so a scene that
    is unambiguous on the floor can still look as if the arrow pointed at a neighbour."""
    ends, _ = camera.project(np.vstack([positions[arrow], positions[arrow] + [np.cos(headings[arrow]), np.sin(headings[arrow]), 0.0]]))
    start, direction = ends[0], (ends[1] - ends[0]) / np.linalg.norm(ends[1] - ends[0])
    for k in range(len(names)):
        if k == arrow:
            continue
        uv, _ = camera.project(hull_points(cfg, names[k], positions[k], headings[k], scales[k]))
        centre = (uv.min(0) + uv.max(0)) / 2
        radius = float((uv.max(0) - uv.min(0)).max()) / 2
        v = centre - start
        along, off = float(v @ direction), float(abs(v[0] * direction[1] - v[1] * direction[0]))
        if k == aim:
            if along <= 0 or off > 0.35 * radius:
                return False
        elif along > 0 and off < radius + cfg.image_clearance_px:
            return False
    return True


def _visible_enough(cfg, camera: Camera, names, positions, headings, scales) -> bool:
    """Every object fully inside the frame (1 px margin) and not hidden behind nearer ones beyond max_occlusion."""
    boxes, depths = [], []
    size = cfg.image_size
    for i, name in enumerate(names):
        uv, depth = camera.project(hull_points(cfg, name, positions[i], headings[i], scales[i]))
        if (depth <= 0).any():
            return False
        box = (uv[:, 0].min(), uv[:, 1].min(), uv[:, 0].max(), uv[:, 1].max())
        if box[0] < 1 or box[1] < 1 or box[2] > size - 1 or box[3] > size - 1:
            return False
        boxes.append(box)
        depths.append(float(np.linalg.norm(positions[i] - np.asarray(camera.location))))
    b = np.asarray(boxes)
    area = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    for j in range(len(names)):  # j: the farther object
        covered = 0.0
        for i in range(len(names)):
            if i == j or depths[i] >= depths[j]:
                continue
            w = min(b[i, 2], b[j, 2]) - max(b[i, 0], b[j, 0])
            h = min(b[i, 3], b[j, 3]) - max(b[i, 1], b[j, 1])
            if w > 0 and h > 0:
                covered += w * h
        if covered > cfg.max_occlusion * area[j]:
            return False
    return True


def _nearest_ok(cfg, cameras, positions, arrow, front, kind) -> bool:
    """Valid kinds: the arrow is nearest by nearest_margin (jittered and nominal camera);
    arrow_not_nearest: the front object is nearer than the arrow by that margin; no_arrow: no demand."""
    if arrow is None:
        return True
    for cam in cameras:
        d = np.linalg.norm(positions - np.asarray(cam.location), axis=1)
        others = np.delete(d, arrow)
        if kind == "arrow_not_nearest":
            if not d[front] + cfg.nearest_margin <= d[arrow]:
                return False
        elif not d[arrow] + cfg.nearest_margin <= others.min():
            return False
    return True


def violate(cfg: ArrowRoomConfig, kind: str, rng: np.random.Generator) -> ArrowScene:
    """A scene that breaks one rule. `kind`: a VIOLATIONS key, or a rule name (one of its kinds at random)."""
    if kind not in VIOLATIONS:
        kinds = [k for k, rule in VIOLATIONS.items() if rule == kind]
        if not kinds:
            raise ValueError(f"unknown violation {kind!r}; choose a kind ({', '.join(VIOLATIONS)}) or a rule ({', '.join(dict(RULES))})")
        kind = kinds[int(rng.integers(len(kinds)))]
    return sample_scene(cfg, rng, kind)
