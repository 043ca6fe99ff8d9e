"""ArrowRoomConfig: every value that shapes an Arrow Room scene's rules, layout or pixels.

World frame: metres-free "units", z up, the floor is z = 0, the camera looks roughly along +y.
Object size 1.0 is a cube's edge, a sphere's diameter, a cylinder's diameter and height.

What is *not* here, on purpose (it lives in ArrowRoomResources and the manifest's provenance):
the render device (--gpu) and the number of render threads. The thread count changes no byte
(tested with the denoiser off; with it on, OIDN adds its own +-1 grey-level jitter whatever the
threads, see render.py). The device does change bytes (other float maths, OptiX's denoiser instead
of OIDN) but not what a scene shows, so a GPU-made split keys the same recogniser cache as a
CPU-made one; the manifest's provenance records the device.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, ClassVar

from scenegen.config import DatasetConfig

# CLEVR's eight colours (sRGB 0..255), in CLEVR's order.
CLEVR_COLORS: tuple[str, ...] = ("gray", "red", "blue", "green", "brown", "purple", "cyan", "yellow")
CLEVR_COLOR_VALUES: tuple[tuple[int, int, int], ...] = (
    (87, 87, 87), (173, 35, 35), (42, 75, 215), (29, 105, 20),
    (129, 74, 25), (129, 38, 192), (41, 208, 208), (255, 238, 51),
)


def _tuples(value: Any) -> Any:
    """Lists (as read back from JSON) -> tuples, recursively, so configs compare and hash."""
    if isinstance(value, (list, tuple)):
        return tuple(_tuples(v) for v in value)
    return value


@dataclass(frozen=True)
class ArrowRoomConfig(DatasetConfig):
    """Arrow Room: four objects, one arrow pointing at the one object of a unique shape.

    The rules themselves (four objects, one arrow, two of one shape, the arrow nearest the camera and
    pointing at the unique-shape object, one material) are code in sampler.py, not settings.

    Scene content (what the rules check):
      shapes: shape names; a label is an index into this tuple. shapes[0] must be "arrow".
      colors / color_values: colour names and their sRGB values (0..255); colours are free.
      materials: material names ("rubber" matte, "metal" shiny); one per scene.
      pointing_tolerance_deg: the rule accepts an arrow whose heading is within this angle of the
          direction to the unique object (and closer to it than to any other object's direction).
    Layout sampling (the generator; rules do not read these):
      object_size, size_jitter: nominal object size and relative uniform jitter of each object.
      arrow_*: the block-arrow icon: total length, head width, shaft width, head length, slab thickness.
      front_zone / row_zone: (x_min, x_max, y_min, y_max) floor regions of the object nearest the
          camera (the arrow) and of the others (a loose row behind it).
      min_gap: minimum floor gap between two objects' footprint circles (no interpenetration).
      pointing_jitter_deg: the arrow aims at its target's centre plus uniform noise of this size.
      pointing_separation_deg: every other object lies at least this far off the arrow's heading.
      image_clearance_px: in the image as well, the arrow's drawn ray passes through the middle of its
          target and misses every other object ahead of it by at least this many pixels
          (perspective must not make the pointing look ambiguous).
      nearest_margin: the arrow is at least this much closer to the camera than any other object.
      min_visible_pixels: every object covers at least this many mask pixels (else resampled).
      max_occlusion: projected boxes of a farther object may be covered by nearer ones at most this much.
    Camera, lights and floor (jittered per scene as in CLEVR; the per-scene values are saved as params):
      camera_location / camera_look_at: nominal camera; each scene adds uniform +-camera_jitter per axis
          to the location (the camera keeps looking at camera_look_at).
      camera_lens_mm / camera_sensor_mm: focal length and sensor width (horizontal field of view).
      light_jitter: uniform +-jitter per axis of each light's location.
      floor_grey / floor_grey_jitter: floor albedo (linear) and its uniform jitter.
    Rendering:
      samples: Cycles samples per pixel (fixed; adaptive sampling off, for determinism).
      denoise: Intel Open Image Denoise on the CPU, OptiX's on an OptiX GPU.
    """

    dataset: ClassVar[str] = "arrow-room"
    shapes: tuple[str, ...] = ("arrow", "cube", "sphere", "cylinder")
    colors: tuple[str, ...] = CLEVR_COLORS
    color_values: tuple[tuple[int, int, int], ...] = CLEVR_COLOR_VALUES
    materials: tuple[str, ...] = ("rubber", "metal")
    pointing_tolerance_deg: float = 12.0
    object_size: float = 1.0
    size_jitter: float = 0.08
    arrow_length: float = 1.6
    arrow_head_width: float = 1.0
    arrow_shaft_width: float = 0.42
    arrow_head_length: float = 0.7
    arrow_thickness: float = 0.16
    front_zone: tuple[float, float, float, float] = (-0.6, 0.6, -1.5, -0.9)
    row_zone: tuple[float, float, float, float] = (-1.9, 1.9, 0.2, 1.3)
    min_gap: float = 0.2
    pointing_jitter_deg: float = 3.0
    pointing_separation_deg: float = 25.0
    image_clearance_px: float = 4.0
    nearest_margin: float = 0.75
    min_visible_pixels: int = 60
    max_occlusion: float = 0.35
    camera_location: tuple[float, float, float] = (0.0, -5.6, 4.4)
    camera_look_at: tuple[float, float, float] = (0.0, 0.3, 0.35)
    camera_lens_mm: float = 40.0
    camera_sensor_mm: float = 36.0
    camera_jitter: float = 0.25
    light_jitter: float = 0.5
    floor_grey: float = 0.42
    floor_grey_jitter: float = 0.04
    samples: int = 32
    denoise: bool = True

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):  # JSON gives lists back: store tuples
            object.__setattr__(self, f.name, _tuples(getattr(self, f.name)))
        if not self.shapes or self.shapes[0] != "arrow":
            raise ValueError(f"shapes[0] must be 'arrow' (label 0), got {self.shapes}")
        unknown = sorted(set(self.shapes) - {"arrow", "cube", "sphere", "cylinder"})
        if unknown or len(set(self.shapes)) != len(self.shapes) or len(self.shapes) < 3:
            raise ValueError(f"shapes must be distinct names from arrow, cube, sphere, cylinder (arrow first, at least 3), got {self.shapes}")
        if len(self.colors) != len(self.color_values) or not self.colors:
            raise ValueError("colors and color_values must have the same, non-zero length")
        if any(len(c) != 3 or not all(0 <= v <= 255 for v in c) for c in self.color_values):
            raise ValueError("color_values must be (r, g, b) triples in 0..255")
        if set(self.materials) - {"rubber", "metal"} or len(set(self.materials)) != len(self.materials) or not self.materials:
            raise ValueError(f"materials must be distinct names from rubber, metal, got {self.materials}")
        if self.samples < 1:
            raise ValueError(f"samples must be at least 1, not {self.samples}")
        if self.image_size < 32:
            raise ValueError(f"image_size must be at least 32, not {self.image_size}")
        if self.min_visible_pixels < 1:
            raise ValueError("min_visible_pixels must be at least 1")
        for name in ("front_zone", "row_zone"):
            zone = getattr(self, name)
            if len(zone) != 4 or zone[0] >= zone[1] or zone[2] >= zone[3]:
                raise ValueError(f"{name} must be (x_min, x_max, y_min, y_max) with min < max, got {zone}")

    @property
    def arrow_label(self) -> int:
        return 0

    def linear_color(self, index: int) -> tuple[float, float, float]:
        """Colour `index` as linear RGB (Blender's Base Color / object colour space)."""
        return tuple(_srgb_to_linear(v / 255.0) for v in self.color_values[index])  # type: ignore[return-value]


def _srgb_to_linear(c: float) -> float:
    return c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4
