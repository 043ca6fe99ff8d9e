"""Parent side of the render worker: start it, hand it scenes, collect what it wrote, clean up.

    with RenderWorker(cfg, device="cpu", threads=1) as worker:
        pictures = worker.render([scene.to_render(cfg) for scene in scenes])  # [(image, mask), ...]

Success is judged by the files the worker writes (it ends with os._exit; see blender_env.py).
Everything it writes, Blender's temporary files included (TMPDIR points inside), lives in one
temporary folder that close() removes, also after errors and KeyboardInterrupt.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from scenegen.datasets.arrow_room.config import ArrowRoomConfig

START_TIMEOUT_S = 300  # Blender start-up is seconds; a first start on a cold disk can be slow


class RenderError(RuntimeError):
    """The worker failed or wrote no output for a scene; the message carries its log's last lines."""


class RenderWorker:
    """One Blender worker subprocess that renders batches of scene descriptions."""

    def __init__(self, cfg: ArrowRoomConfig, device: str = "cpu", threads: int = 0, probe: bool = False):
        self.cfg = cfg
        self.root = Path(tempfile.mkdtemp(prefix="scenegen-arrow-room-"))
        self.out, self.scratch = self.root / "out", self.root / "scratch"
        self.out.mkdir()
        self.scratch.mkdir()
        self.log = self.root / "worker.log"
        (self.root / "config.json").write_text(cfg.to_json())
        self._batches = 0
        command = [sys.executable, "-m", "scenegen.datasets.arrow_room.worker", "--config", str(self.root / "config.json"),
                   "--out", str(self.out), "--scratch", str(self.scratch), "--device", device,
                   "--threads", str(threads), "--log", str(self.log)]
        if probe:
            command.append("--probe")
        env = {**os.environ, "TMPDIR": str(self.scratch), "PYTHONUNBUFFERED": "1"}
        try:
            self.proc = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                         text=True, env=env)
            ready = self._read()
        except BaseException:
            self.close()
            raise
        if "error" in ready or not ready.get("ready"):
            self.close()
            raise RenderError(ready.get("error", f"render worker did not start: {ready}"))
        self.device = ready["device"]

    def _log_tail(self, lines: int = 15) -> str:
        try:
            text = self.log.read_text(errors="replace").strip().splitlines()
        except OSError:
            return "(no worker log)"
        return "\n".join(text[-lines:])

    def _read(self) -> dict[str, Any]:
        line = self.proc.stdout.readline() if self.proc.stdout else ""
        if not line:
            code = self.proc.wait(timeout=START_TIMEOUT_S)
            return {"error": f"render worker ended (status {code}) without answering; its log ends:\n{self._log_tail()}"}
        return json.loads(line)

    def render(self, scenes: list[dict[str, Any]]) -> list[tuple[np.ndarray, np.ndarray]]:
        """Render scene descriptions (ArrowScene.to_render()); returns [(image uint8 [S,S,3], mask uint8 [S,S])]."""
        self._batches += 1
        batch = self.root / f"batch-{self._batches}.json"
        ids = [f"b{self._batches}-{i}" for i in range(len(scenes))]
        batch.write_text(json.dumps([{"id": k, "scene": s} for k, s in zip(ids, scenes)]))
        try:
            self.proc.stdin.write(json.dumps({"batch": str(batch)}) + "\n")
            self.proc.stdin.flush()
        except (BrokenPipeError, OSError):
            raise RenderError(f"render worker is gone; its log ends:\n{self._log_tail()}")
        while True:
            answer = self._read()
            if "error" in answer:
                raise RenderError(answer["error"])
            if answer.get("batch_done") == str(batch):
                break
        results = []
        size = self.cfg.image_size
        for k in ids:
            path = self.out / f"{k}.npz"
            try:
                with np.load(path) as data:
                    image, mask = data["image"], data["mask"]
            except (OSError, KeyError, ValueError) as exc:
                raise RenderError(f"render worker wrote no usable {path.name} ({exc}); its log ends:\n{self._log_tail()}")
            if image.shape != (size, size, 3) or mask.shape != (size, size) or image.dtype != np.uint8:
                raise RenderError(f"render worker wrote {path.name} with image {image.shape} {image.dtype}, mask {mask.shape}")
            results.append((image, mask))
            path.unlink()
        batch.unlink()
        return results

    def close(self) -> None:
        """Stop the worker (politely, then by force) and remove the temporary folder."""
        proc = getattr(self, "proc", None)
        if proc is not None and proc.poll() is None:
            try:
                proc.stdin.write(json.dumps({"quit": True}) + "\n")
                proc.stdin.close()
            except (BrokenPipeError, OSError, ValueError):
                pass
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if proc is not None:
            for stream in (proc.stdin, proc.stdout):
                try:
                    if stream:
                        stream.close()
                except OSError:
                    pass
        shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> "RenderWorker":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
