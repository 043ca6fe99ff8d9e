"""Every workaround needed to use BlenderProc 2.8.0 on the PyPI `bpy` module, in one place.

The render extra (`pip install -e .[render]`) installs `bpy==4.2.0` (Blender 4.2 as a Python module)
and `blenderproc==2.8.0`. That pair renders offline with Cycles on the CPU (Intel denoiser included)
once the following is handled; each item names what to delete once BlenderProc supports an external
bpy module in a release (its development branch has the switch `USE_EXTERNAL_BPY_MODULE=1`):

1. Launcher check. `import blenderproc` raises unless started by `blenderproc run`. Setting
   `OUTSIDE_OF_THE_INTERNAL_BLENDER_PYTHON_ENVIRONMENT_BUT_IN_RUN_SCRIPT=1` passes the check but
   then imports no API, so `start()` imports the API modules itself (as `blenderproc/__init__.py`
   does inside its own Blender).
2. Pip installs at first import. Inside its own Blender, BlenderProc's `SetupUtility.setup()`
   pip-installs its pinned requirements (opencv, trimesh, scikit-image, ...; needs internet).
   We never set `INSIDE_OF_THE_INTERNAL_BLENDER_PYTHON_ENVIRONMENT`, so it never runs. The API
   modules import a few of those packages at module level but the functions we call never use
   them: `OPTIONAL_MODULES` lists them; a missing one is replaced by a placeholder module whose
   every use raises ImportError naming the package (real packages are used when installed).
3. `bproc.init()` sets `preferences.view.language = "en_US"`, an enum the bpy wheel (built without
   translations) lacks: TypeError. `start()` runs the rest of init() itself.
4. Crash at exit. After all output is written, the interpreter segfaults at exit (rc 139) once
   BlenderProc is imported. Workers call `exit_now()` (flush, then `os._exit`), and the parent
   judges success by the files a worker wrote, never by its exit status. Blender's session temp
   folder (`bpy.app.tempdir`, under $TMPDIR) is not removed by `os._exit`: `start()` points
   $TMPDIR into the caller's temporary folder before importing bpy, and the caller deletes that.

Only the worker subprocess imports this module's `start()`; the parent process uses
`check_installed()` alone (no bpy import: bpy is heavy and the exit crash would hit the CLI).
"""

from __future__ import annotations

import importlib
import importlib.metadata
import importlib.util
import os
import sys
import tempfile
import types
from typing import Any

BLENDERPROC_VERSION = "2.8.0"
BPY_VERSION = "4.2.0"
INSTALL_HINT = 'install the render extra: pip install -e ".[render]" (bpy==4.2.0, blenderproc==2.8.0; Python 3.11)'

# Modules BlenderProc 2.8.0's API imports at module level but that the calls in render.py never use.
OPTIONAL_MODULES = ("cv2", "trimesh", "imageio", "png", "skimage", "skimage.measure", "git")

# The BlenderProc API modules render.py uses (attached to the blenderproc package as its own
# __init__ would, so `bproc.renderer.set_...` reads as in BlenderProc's documentation).
API_MODULES = ("camera", "material", "object", "renderer", "types", "utility")


class RenderSetupError(RuntimeError):
    """bpy / BlenderProc missing, of another version, or no GPU where one was asked for."""


def installed_versions() -> dict[str, str | None]:
    """Installed distribution versions of bpy and blenderproc (None when absent); imports neither."""
    found: dict[str, str | None] = {}
    for name in ("bpy", "blenderproc"):
        try:
            found[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            found[name] = None
    return found


def check_installed() -> dict[str, str]:
    """Raise RenderSetupError unless exactly bpy 4.2.0 and blenderproc 2.8.0 are installed.

    The workarounds here are written against those exact versions: any other BlenderProc must be
    looked at (and this module probably shrunk) before it is allowed.
    """
    if sys.version_info[:2] != (3, 11):
        raise RenderSetupError(f"Arrow Room rendering needs Python 3.11 (the bpy 4.2 wheel), not {sys.version.split()[0]}")
    found = installed_versions()
    wanted = {"bpy": BPY_VERSION, "blenderproc": BLENDERPROC_VERSION}
    wrong = [f"{k} {found[k] or 'missing'} (need {v})" for k, v in wanted.items() if found[k] != v]
    if wrong:
        raise RenderSetupError(f"Arrow Room rendering: {', '.join(wrong)}; {INSTALL_HINT}")
    return {k: str(v) for k, v in found.items()}


class _Missing:
    """Stands for an attribute of a module that is not installed; any use raises ImportError."""

    def __init__(self, name: str):
        self._name = name

    def __getattr__(self, attr: str) -> "_Missing":
        if attr.startswith("__"):
            raise AttributeError(attr)
        return _Missing(f"{self._name}.{attr}")

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        raise ImportError(f"{self._name} needs the package {self._name.split('.')[0]!r}, which scenegen does not install")


def _placeholder_module(name: str) -> types.ModuleType:
    module = types.ModuleType(name, f"placeholder installed by scenegen's blender_env for the missing {name!r}")
    module.__getattr__ = lambda attr, _n=name: _Missing(f"{_n}.{attr}")  # type: ignore[attr-defined]
    module.__path__ = []  # a package, so `import skimage.measure` finds the submodule placeholder
    module.__scenegen_placeholder__ = True  # type: ignore[attr-defined]
    return module


def _install_placeholders() -> list[str]:
    """Placeholder modules for the OPTIONAL_MODULES that are not installed; returns their names."""
    placed = []
    for name in OPTIONAL_MODULES:
        top = name.split(".")[0]
        if name in sys.modules:
            continue
        if top in sys.modules and not getattr(sys.modules[top], "__scenegen_placeholder__", False):
            continue  # the real package is already imported
        if top not in sys.modules and importlib.util.find_spec(top) is not None:
            continue  # the real package is installed: BlenderProc imports it
        sys.modules[name] = _placeholder_module(name)
        placed.append(name)
    return placed


def start(temp_dir: str) -> types.ModuleType:
    """Import bpy and BlenderProc's API in this (worker) process and initialise an empty scene.

    temp_dir: where Blender and BlenderProc may write temporary files (the worker's own temporary
        folder; $TMPDIR is pointed there before bpy is imported). The caller removes it.
    Returns the `blenderproc` package with its API modules attached (bproc.renderer, ...).
    """
    check_installed()
    # Blender makes its session temp folder under $TMPDIR when bpy is imported, and os._exit (item 4)
    # leaves it behind: keep it inside temp_dir, which the caller removes.
    os.environ["TMPDIR"] = temp_dir
    tempfile.tempdir = None  # re-read $TMPDIR
    # Workaround 1 (launcher check) and forward compatibility with BlenderProc's development branch.
    os.environ["OUTSIDE_OF_THE_INTERNAL_BLENDER_PYTHON_ENVIRONMENT_BUT_IN_RUN_SCRIPT"] = "1"
    os.environ["USE_EXTERNAL_BPY_MODULE"] = "1"
    # Workaround 2: never let BlenderProc's SetupUtility pip-install anything.
    os.environ.pop("INSIDE_OF_THE_INTERNAL_BLENDER_PYTHON_ENVIRONMENT", None)
    _install_placeholders()

    import bpy

    if bpy.app.version_string.split()[0] != BPY_VERSION:
        raise RenderSetupError(f"bpy is Blender {bpy.app.version_string}, need {BPY_VERSION}; {INSTALL_HINT}")
    import blenderproc as bproc

    if bproc.__version__ != BLENDERPROC_VERSION:
        raise RenderSetupError(f"blenderproc is {bproc.__version__}, need {BLENDERPROC_VERSION}; {INSTALL_HINT}")
    for name in API_MODULES:
        setattr(bproc, name, importlib.import_module(f"blenderproc.api.{name}"))

    from blenderproc.python.utility.GlobalStorage import GlobalStorage
    from blenderproc.python.utility.Initializer import _Initializer, clean_up
    from blenderproc.python.utility.Utility import Utility

    Utility.temp_dir = temp_dir
    # Workaround 3: blenderproc.python.utility.Initializer.init() minus its language setting.
    clean_up(clean_up_camera=True)
    bpy.context.scene.render.engine = "CYCLES"
    bproc.renderer.set_render_devices(use_only_cpu=True)  # init() would pick any GPU silently
    _Initializer.set_default_parameters()
    GlobalStorage.add("bproc_init_complete", True)
    return bproc


def exit_now(code: int = 0) -> None:
    """Workaround 4: end the worker without the crash at interpreter exit (all output already written)."""
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except Exception:  # noqa: BLE001 - a closed pipe must not turn a clean exit into a crash
            pass
    os._exit(code)
