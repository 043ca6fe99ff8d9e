"""The Arrow Room assets, built by code (nothing downloaded): four shape meshes and the materials.

Runs inside Blender (the render worker, or `python blender_assets/build.py`, which saves them to a
.blend for inspection). Shapes are built at object_size 1 (see config.py) centred on their
bounding box; the arrow is the 2D block-arrow outline of sampler.arrow_outline() extruded to a
low slab, tip along +x, so its rendered shape and the sampler's footprint are the same polygon.

Materials take their colour from the object (Object Info > Color), so one material per kind
serves every object and changing colours between scenes recompiles no shader:
  rubber: matte (roughness 0.75, weak specular), metal: metallic 1, roughness 0.2 (sharp highlights
  and reflections, as CLEVR's); the floor is diffuse grey (albedo = the floor object's colour).
"""

from __future__ import annotations

import math

import bmesh
import bpy
import numpy as np

from scenegen.datasets.arrow_room.config import ArrowRoomConfig
from scenegen.datasets.arrow_room.sampler import arrow_outline

SHARP_ANGLE = math.radians(35)  # edges bending more than this are shaded sharp
CUBE_BEVEL = 0.06  # fraction of the edge: rounded edges catch highlights, as CLEVR's SmoothCube

MATERIALS = {
    # name: principled BSDF inputs
    "rubber": {"Metallic": 0.0, "Roughness": 0.75, "Specular IOR Level": 0.25},
    "metal": {"Metallic": 1.0, "Roughness": 0.2, "Specular IOR Level": 0.5},
}


def _smooth_with_sharp_edges(bm: bmesh.types.BMesh) -> None:
    """Smooth shading, with edges whose faces meet at more than SHARP_ANGLE kept sharp."""
    for face in bm.faces:
        face.smooth = True
    for edge in bm.edges:
        if len(edge.link_faces) == 2:
            a, b = edge.link_faces
            edge.smooth = a.normal.angle(b.normal, 0.0) <= SHARP_ANGLE
        else:
            edge.smooth = False


def _finish(bm: bmesh.types.BMesh, name: str) -> bpy.types.Mesh:
    bm.normal_update()
    _smooth_with_sharp_edges(bm)
    mesh = bpy.data.meshes.new(name)
    bm.to_mesh(mesh)
    bm.free()
    return mesh


def cube_mesh(size: float = 1.0) -> bpy.types.Mesh:
    bm = bmesh.new()
    bmesh.ops.create_cube(bm, size=size)
    bmesh.ops.bevel(bm, geom=list(bm.edges), offset=CUBE_BEVEL * size, segments=3, affect="EDGES", profile=0.5)
    return _finish(bm, "cube")


def sphere_mesh(size: float = 1.0) -> bpy.types.Mesh:
    bm = bmesh.new()
    bmesh.ops.create_uvsphere(bm, u_segments=48, v_segments=24, radius=size / 2)
    bm.normal_update()
    for face in bm.faces:
        face.smooth = True
    mesh = bpy.data.meshes.new("sphere")
    bm.to_mesh(mesh)
    bm.free()
    return mesh


def cylinder_mesh(size: float = 1.0) -> bpy.types.Mesh:
    bm = bmesh.new()
    bmesh.ops.create_cone(bm, cap_ends=True, cap_tris=False, segments=48, radius1=size / 2, radius2=size / 2, depth=size)
    return _finish(bm, "cylinder")


def arrow_mesh(cfg: ArrowRoomConfig) -> bpy.types.Mesh:
    """The block-arrow icon: sampler.arrow_outline() (tip along +x) extruded to arrow_thickness, centred."""
    outline = arrow_outline(cfg)
    half = cfg.arrow_thickness / 2
    bm = bmesh.new()
    bottom = [bm.verts.new((float(x), float(y), -half)) for x, y in outline]
    top = [bm.verts.new((float(x), float(y), half)) for x, y in outline]
    bm.faces.new(list(reversed(bottom)))  # normal down
    bm.faces.new(top)  # normal up (outline is counter-clockwise)
    m = len(outline)
    for i in range(m):
        j = (i + 1) % m
        bm.faces.new((bottom[i], bottom[j], top[j], top[i]))
    bmesh.ops.recalc_face_normals(bm, faces=list(bm.faces))
    return _finish(bm, "arrow")


def shape_meshes(cfg: ArrowRoomConfig) -> dict[str, bpy.types.Mesh]:
    """One mesh per shape in cfg.shapes (shared by every object of that shape)."""
    builders = {"arrow": lambda: arrow_mesh(cfg), "cube": lambda: cube_mesh(cfg.object_size),
                "sphere": lambda: sphere_mesh(cfg.object_size), "cylinder": lambda: cylinder_mesh(cfg.object_size)}
    return {name: builders[name]() for name in cfg.shapes}


def object_colour_material(name: str) -> bpy.types.Material:
    """A Principled BSDF material whose base colour is the object's colour (Object Info > Color)."""
    mat = bpy.data.materials.new(name)
    mat.use_nodes = True
    nodes, links = mat.node_tree.nodes, mat.node_tree.links
    bsdf = nodes["Principled BSDF"]
    info = nodes.new("ShaderNodeObjectInfo")
    links.new(info.outputs["Color"], bsdf.inputs["Base Color"])
    for key, value in MATERIALS[name].items():
        bsdf.inputs[key].default_value = value
    return mat


def floor_material() -> bpy.types.Material:
    """Plain diffuse grey (albedo = the floor object's colour). The floor covers most pixels, and a
    Diffuse BSDF costs about 30% less render time than a Principled one."""
    mat = bpy.data.materials.new("floor")
    mat.use_nodes = True
    nodes, links = mat.node_tree.nodes, mat.node_tree.links
    nodes.remove(nodes["Principled BSDF"])
    diffuse = nodes.new("ShaderNodeBsdfDiffuse")
    info = nodes.new("ShaderNodeObjectInfo")
    links.new(info.outputs["Color"], diffuse.inputs["Color"])
    links.new(diffuse.outputs["BSDF"], nodes["Material Output"].inputs["Surface"])
    return mat


def materials() -> dict[str, bpy.types.Material]:
    """The object materials by name (rubber, metal) plus "floor"."""
    return {**{name: object_colour_material(name) for name in MATERIALS}, "floor": floor_material()}


def mesh_stats(mesh: bpy.types.Mesh) -> dict[str, float]:
    """Vertex/face counts and bounding box of a mesh (for build.py's summary and tests)."""
    co = np.zeros(len(mesh.vertices) * 3)
    mesh.vertices.foreach_get("co", co)
    co = co.reshape(-1, 3)
    return {"vertices": len(mesh.vertices), "faces": len(mesh.polygons),
            **{f"{k}_{a}": float(v) for k, vals in (("min", co.min(0)), ("max", co.max(0))) for a, v in zip("xyz", vals)}}
