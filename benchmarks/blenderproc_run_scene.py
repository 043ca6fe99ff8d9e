# The naive way's script: `blenderproc run blenderproc_run_scene.py JOB.json OUT.npz THREADS` renders one scene.
#
# Run by bench_arrow_render.py through BlenderProc 2.8.0's own command line (`blenderproc run
# --custom-blender-path ...`), once per scene. Inside "Blender" it does what a BlenderProc script
# does: import BlenderProc's whole API (as `import blenderproc` does inside its own Blender, minus the
# pip check that needs internet), initialise, build the scene, render, write the output, exit.
# JOB.json: {"config": ArrowRoomConfig.to_dict(), "scene": ArrowScene.to_render()}.
# (`blenderproc run` requires BlenderProc's import to come first, hence comments, not a docstring.)
import blenderproc  # noqa: F401 - `blenderproc run` refuses a script whose first import is not blenderproc

import importlib
import json
import sys

import numpy as np

from scenegen.datasets.arrow_room import blender_env
from scenegen.datasets.arrow_room.config import ArrowRoomConfig

# What blenderproc/__init__.py imports inside its own Blender.
BLENDERPROC_API = ("loader", "utility", "sampler", "math", "postprocessing", "writer", "material", "lighting",
                   "camera", "renderer", "world", "constructor", "types", "object", "filter")


def main() -> None:
    # Blender's argv: ... -- SCRIPT TEMP_DIR [arguments after the script on blenderproc's command line]
    _, temp_dir, job_path, out, threads = sys.argv[sys.argv.index("--") + 1:]
    bproc = blender_env.start(temp_dir)
    for name in BLENDERPROC_API:
        importlib.import_module(f"blenderproc.api.{name}")
    from scenegen.datasets.arrow_room.render import Renderer

    with open(job_path) as f:
        job = json.load(f)
    renderer = Renderer(bproc, ArrowRoomConfig.from_dict(job["config"]), "cpu", int(threads), temp_dir)
    image, mask = renderer.render(job["scene"])
    np.savez(out, image=image, mask=mask)
    blender_env.exit_now(0)


main()
