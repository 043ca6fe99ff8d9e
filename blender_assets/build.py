"""Build the Arrow Room assets (4 shape meshes, rubber/metal/floor materials) and save them for inspection.

    python blender_assets/build.py                         # -> blender_assets/arrow_room_assets.blend
    python blender_assets/build.py --out X.blend --json X.json

The assets are code, not downloaded files: scenegen/datasets/arrow_room/assets.py builds them in
every render worker at start-up (a few milliseconds), from the config's sizes, so nothing generated
is needed to render and nothing can go stale. This script saves the same objects to a .blend (open
it in Blender 4.2 to look at them) and writes a JSON summary (vertex/face counts, bounding boxes)
next to it. Both are regenerable (about 130 kB together); the renderer reads neither, and a test
checks that the committed JSON still matches what assets.py builds (re-run this script after
changing assets.py or the default sizes).

Needs the render extra (bpy 4.2.0, blenderproc 2.8.0).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))  # run from a checkout without installing


def build(out: Path, summary: Path | None = None) -> dict:
    """Build the default config's assets into an empty scene, lay them out in a row, save `out`."""
    from scenegen.datasets.arrow_room import blender_env

    with tempfile.TemporaryDirectory(prefix="scenegen-assets-") as scratch:
        blender_env.start(scratch)  # Blender's own temp folder goes inside scratch, removed below
        import bpy

        from scenegen.datasets.arrow_room import assets
        from scenegen.datasets.arrow_room.config import ArrowRoomConfig

        cfg = ArrowRoomConfig()
        meshes = assets.shape_meshes(cfg)
        materials = assets.materials()
        for i, (shape, mesh) in enumerate(meshes.items()):
            obj = bpy.data.objects.new(shape, mesh)
            obj.location = (2.0 * i - 3.0, 0.0, (cfg.arrow_thickness if shape == "arrow" else cfg.object_size) / 2)
            mesh.materials.append(materials["metal" if i % 2 else "rubber"])
            obj.color = (*cfg.linear_color(i + 1), 1.0)
            bpy.context.scene.collection.objects.link(obj)
        out.parent.mkdir(parents=True, exist_ok=True)
        bpy.ops.wm.save_as_mainfile(filepath=str(out), compress=True)
        info = {"blend": out.name, "config": cfg.to_dict(),
                "meshes": {shape: assets.mesh_stats(mesh) for shape, mesh in meshes.items()},
                "materials": {name: assets.MATERIALS.get(name, "diffuse, albedo = object colour") for name in materials}}
    if summary is not None:
        summary.write_text(json.dumps(info, indent=2) + "\n")
    return info


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=HERE / "arrow_room_assets.blend")
    parser.add_argument("--json", type=Path, default=HERE / "arrow_room_assets.json")
    args = parser.parse_args()
    from scenegen.datasets.arrow_room import blender_env

    try:
        info = build(args.out, args.json)
        for shape, stats in info["meshes"].items():
            print(f"{shape:9s} {stats['vertices']:5d} vertices {stats['faces']:5d} faces")
        print(f"wrote {args.out} and {args.json}")
    except Exception as exc:  # noqa: BLE001 - print, then leave without BlenderProc's exit crash
        print(f"error: {exc}", file=sys.stderr)
        blender_env.exit_now(1)
    blender_env.exit_now(0)


if __name__ == "__main__":
    main()
