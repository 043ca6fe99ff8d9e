"""Draw ArrowScenes with Cycles; runs inside the render worker (worker.py), never in the parent.

The scene is built once per worker: floor, three area lights, camera and a pool of objects
(MAX_PER_SHAPE per shape, hidden when unused). Each scene then only shows, moves, recolours and
re-materials those objects, moves the camera and lights and sets Cycles' seed (materials take their
colour from the object, so no shader is recompiled). The same scene description always maps to the
same pool objects (the k-th cube of a scene is pool cube k), and nothing else carries over from
scene to scene: a scene's pixels do not depend on what the worker drew before it, nor on the
number of render threads (tested). Persistent data is off: it bought no speed here.

Determinism: without the denoiser (cfg.denoise False) images are byte-identical run to run. With
it, Intel Open Image Denoise 2.3 (CPU) is not bit-reproducible across processes: a few pixels per
image may differ by one grey level between runs (measured: 0-5 of 16384, never more than 1 level).
Masks, boxes and every other array are always byte-identical.

Outputs per scene: the RGB image as Blender writes it (8-bit PNG, Standard view transform, no
dither) and the instance mask from Cycles' object-index pass (0 background, i + 1 object i),
written by a compositor File Output node as a float EXR and read back. Cycles writes the index pass
from the first sample (no anti-aliasing), so mask ids are exact.
"""

from __future__ import annotations

import os
import types
from typing import Any

import bpy
import numpy as np
from mathutils import Matrix, Vector
from PIL import Image

from scenegen.datasets.arrow_room import assets
from scenegen.datasets.arrow_room.blender_env import RenderSetupError
from scenegen.datasets.arrow_room.config import ArrowRoomConfig
from scenegen.datasets.arrow_room.sampler import WORLD_STRENGTH

MAX_PER_SHAPE = 5  # a five-object violation can hold up to 4 objects of one shape
FLOOR_SIZE = 80.0
BOUNCES = {"diffuse_bounces": 2, "glossy_bounces": 2, "ao_bounces_render": 0, "max_bounces": 4,
           "transmission_bounces": 0, "transparent_max_bounces": 0, "volume_bounces": 0}
GPU_TYPES = ["OPTIX", "CUDA"]


def select_device(bproc: types.ModuleType, device: str) -> str:
    """Set Cycles' device; returns "cpu" or "gpu:<OPTIX|CUDA>". No GPU for device "gpu": RenderSetupError."""
    if device == "cpu":
        bproc.renderer.set_render_devices(use_only_cpu=True)
        return "cpu"
    bproc.renderer.set_render_devices(desired_gpu_device_type=GPU_TYPES)
    prefs = bpy.context.preferences.addons["cycles"].preferences
    if bpy.context.scene.cycles.device != "GPU" or prefs.compute_device_type not in GPU_TYPES:
        raise RenderSetupError("--gpu: Blender's Cycles found no CUDA or OptiX GPU here; drop --gpu to render on the CPU")
    return f"gpu:{prefs.compute_device_type}"


class Renderer:
    """Holds the built Blender scene; render(scene_dict) -> (image uint8 [S,S,3], mask uint8 [S,S])."""

    def __init__(self, bproc: types.ModuleType, cfg: ArrowRoomConfig, device: str, threads: int, scratch: str):
        self.bproc, self.cfg, self.scratch = bproc, cfg, scratch
        self.device = select_device(bproc, device)
        self._settings(threads)
        self._compositor()
        self.meshes = assets.shape_meshes(cfg)
        self.materials = assets.materials()
        self.floor = self._floor()
        self.pool = {shape: [self._object(shape, k) for k in range(MAX_PER_SHAPE)] for shape in cfg.shapes}
        self.lights: dict[str, Any] = {}
        self.camera = bpy.context.scene.camera
        cam = self.camera.data
        cam.sensor_fit = "HORIZONTAL"
        cam.sensor_width = cfg.camera_sensor_mm
        bproc.camera.set_intrinsics_from_blender_params(lens=cfg.camera_lens_mm, image_width=cfg.image_size,
                                                        image_height=cfg.image_size, lens_unit="MILLIMETERS",
                                                        clip_start=0.1, clip_end=200.0)

    # ---- one-time set-up ----

    def _settings(self, threads: int) -> None:
        bproc, cfg, scene = self.bproc, self.cfg, bpy.context.scene
        bproc.renderer.set_max_amount_of_samples(cfg.samples)
        bproc.renderer.set_noise_threshold(0)  # adaptive sampling off: fixed work per pixel, deterministic
        bproc.renderer.set_light_bounces(**BOUNCES)
        bproc.renderer.set_cpu_threads(threads)
        bproc.renderer.set_output_format("PNG", 8, False, view_transform="Standard")
        bproc.renderer.set_world_background([1.0, 1.0, 1.0], strength=WORLD_STRENGTH)
        bproc.renderer.set_denoiser(None)
        if cfg.denoise:  # Cycles' own denoiser rather than BlenderProc's compositor node: no extra passes
            scene.cycles.use_denoising = True
            bpy.context.view_layer.cycles.use_denoising = True
            if self.device == "gpu:OPTIX":
                scene.cycles.denoiser = "OPTIX"
            else:
                scene.cycles.denoiser = "OPENIMAGEDENOISE"
                scene.cycles.denoising_use_gpu = self.device.startswith("gpu")
            scene.cycles.denoising_input_passes = "RGB_ALBEDO_NORMAL"
            scene.cycles.denoising_prefilter = "FAST"  # ACCURATE costs ~0.3 s a frame at 128 px for no visible gain
        scene.cycles.caustics_reflective = False
        scene.cycles.caustics_refractive = False
        scene.cycles.blur_glossy = 1.0
        scene.cycles.use_animated_seed = False
        scene.render.dither_intensity = 0.0
        scene.render.use_persistent_data = False  # no speed gain at this size; keeps each render independent
        scene.render.image_settings.color_mode = "RGB"
        scene.view_settings.look = "None"
        scene.view_settings.exposure = 0.0
        scene.view_settings.gamma = 1.0
        scene.frame_set(0)

    def _compositor(self) -> None:
        """Render Layers: Image -> Composite (the PNG); IndexOB -> File Output (a float EXR: the mask).

        (A Viewer node would avoid the file, but Blender 4.2 does not run it in background mode.)
        """
        scene = bpy.context.scene
        bpy.context.view_layer.use_pass_object_index = True
        scene.use_nodes = True
        tree = scene.node_tree
        for node in list(tree.nodes):
            tree.nodes.remove(node)
        layers = tree.nodes.new("CompositorNodeRLayers")
        composite = tree.nodes.new("CompositorNodeComposite")
        tree.links.new(layers.outputs["Image"], composite.inputs["Image"])
        index = tree.nodes.new("CompositorNodeOutputFile")
        index.base_path = self.scratch
        index.format.file_format = "OPEN_EXR"
        index.format.color_mode = "RGB"
        index.format.color_depth = "32"
        index.format.exr_codec = "NONE"
        index.file_slots[0].path = "index"
        tree.links.new(layers.outputs["IndexOB"], index.inputs[0])
        self.index_path = os.path.join(self.scratch, f"index{bpy.context.scene.frame_current:04d}.exr")

    def _floor(self) -> bpy.types.Object:
        mesh = bpy.data.meshes.new("floor")
        h = FLOOR_SIZE / 2
        mesh.from_pydata([(-h, -h, 0), (h, -h, 0), (h, h, 0), (-h, h, 0)], [], [(0, 1, 2, 3)])
        obj = bpy.data.objects.new("floor", mesh)
        obj.data.materials.append(self.materials["floor"])
        bpy.context.scene.collection.objects.link(obj)
        return obj

    def _object(self, shape: str, k: int) -> bpy.types.Object:
        mesh = self.meshes[shape]
        if not mesh.materials:
            mesh.materials.append(self.materials["rubber"])
        obj = bpy.data.objects.new(f"{shape}.{k}", mesh)
        bpy.context.scene.collection.objects.link(obj)
        obj.material_slots[0].link = "OBJECT"  # the material is chosen per object; the mesh is shared
        obj.material_slots[0].material = self.materials["rubber"]
        obj.hide_render = True
        return obj

    def _light(self, name: str, size: float) -> Any:
        if name not in self.lights:
            light = self.bproc.types.Light(light_type="AREA", name=name)
            light.blender_obj.data.shape = "SQUARE"
            self.lights[name] = light
        self.lights[name].blender_obj.data.size = size
        return self.lights[name]

    # ---- per scene ----

    def apply(self, scene: dict[str, Any]) -> None:
        """Set up Blender for one scene description (ArrowScene.to_render())."""
        for objs in self.pool.values():
            for obj in objs:
                obj.hide_render = True
                obj.pass_index = 0
        used = {shape: 0 for shape in self.pool}
        for i, o in enumerate(scene["objects"]):
            obj = self.pool[o["shape"]][used[o["shape"]]]
            used[o["shape"]] += 1
            obj.hide_render = False
            obj.pass_index = i + 1
            obj.location = o["position"]
            obj.rotation_euler = (0.0, 0.0, o["heading"])
            obj.scale = (o["scale"],) * 3
            obj.color = (*o["color"], 1.0)
            obj.material_slots[0].material = self.materials[o["material"]]
        grey = scene["floor_grey"]
        self.floor.color = (grey, grey, grey, 1.0)
        self.camera.matrix_world = Matrix(scene["camera"]["matrix_world"])
        for light in scene["lights"]:
            lamp = self._light(light["name"], light["size"])
            lamp.set_location(light["location"])
            lamp.set_energy(light["power"])
            direction = Vector(light["aim"]) - Vector(light["location"])
            lamp.blender_obj.rotation_euler = direction.to_track_quat("-Z", "Y").to_euler()
        bpy.context.scene.cycles.seed = int(scene["seed"])

    def render(self, scene: dict[str, Any]) -> tuple[np.ndarray, np.ndarray]:
        self.apply(scene)
        path = os.path.join(self.scratch, "frame.png")
        bpy.context.scene.render.filepath = path
        bpy.ops.render.render(write_still=True)
        with Image.open(path) as im:
            image = np.asarray(im.convert("RGB"), dtype=np.uint8).copy()
        loaded = bpy.data.images.load(self.index_path, check_existing=False)
        try:
            width, height = loaded.size
            index = np.zeros(width * height * loaded.channels, np.float32)
            loaded.pixels.foreach_get(index)
        finally:
            bpy.data.images.remove(loaded)
        mask = np.rint(index.reshape(height, width, -1)[::-1, :, 0]).astype(np.uint8)  # Blender rows go bottom-up
        return image, mask
