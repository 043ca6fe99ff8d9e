"""The render worker process: `python -m scenegen.datasets.arrow_room.worker --config C --out DIR ...`.

One worker starts Blender once and renders many scenes (Blender start-up costs seconds). Protocol
(JSON lines): the parent writes `{"batch": PATH}` to stdin, where PATH is a JSON list of
`{"id": str, "scene": ArrowScene.to_render()}`; for each scene the worker writes DIR/ID.npz
(image uint8 [S,S,3], mask uint8 [S,S]; written under a temporary name, then renamed) and answers
`{"done": ID, "seconds": t}`; after the batch `{"batch_done": PATH}`. `{"quit": true}` or the end of
stdin ends the worker. A failure is answered `{"error": "..."}` and ends the worker with status 1.

Answers go to the worker's original stdout; Blender's own chatter (fd 1 and 2) is sent to --log.
The process ends with os._exit (blender_env.exit_now: BlenderProc crashes at interpreter exit), so
the parent judges success by the files written, not by the exit status.

`--probe` starts Blender, selects the device and answers `{"ready": ..., "device": ...}` only.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import traceback


def _answer(stream, **message) -> None:
    stream.write(json.dumps(message) + "\n")
    stream.flush()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", required=True, help="ArrowRoomConfig as a JSON file")
    parser.add_argument("--out", required=True, help="folder for the per-scene .npz files")
    parser.add_argument("--scratch", required=True, help="folder for Blender's and BlenderProc's temporary files")
    parser.add_argument("--device", choices=("cpu", "gpu"), default="cpu")
    parser.add_argument("--threads", type=int, default=0, help="Cycles CPU threads (0: all cores)")
    parser.add_argument("--log", default=None, help="file for Blender's output (default: discard)")
    parser.add_argument("--probe", action="store_true", help="only report the render device, then exit")
    args = parser.parse_args(argv)

    # Keep the real stdout for answers; send everything Blender prints (C level, fd 1 and 2) to the log.
    answers = os.fdopen(os.dup(1), "w")
    log_fd = os.open(args.log or os.devnull, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    os.dup2(log_fd, 1)
    os.dup2(log_fd, 2)
    sys.stdout = os.fdopen(1, "w", buffering=1)
    sys.stderr = os.fdopen(2, "w", buffering=1)

    from scenegen.datasets.arrow_room import blender_env

    try:
        import numpy as np

        from scenegen.datasets.arrow_room.config import ArrowRoomConfig

        with open(args.config) as f:
            cfg = ArrowRoomConfig.from_dict(json.load(f))
        bproc = blender_env.start(args.scratch)
        from scenegen.datasets.arrow_room.render import Renderer

        renderer = Renderer(bproc, cfg, args.device, args.threads, args.scratch)
        _answer(answers, ready=True, device=renderer.device)
        if args.probe:
            blender_env.exit_now(0)
        for line in sys.stdin:
            request = json.loads(line)
            if request.get("quit"):
                break
            with open(request["batch"]) as f:
                batch = json.load(f)
            for item in batch:
                start = time.perf_counter()
                image, mask = renderer.render(item["scene"])
                final = os.path.join(args.out, f"{item['id']}.npz")
                tmp = final + ".tmp.npz"
                np.savez(tmp, image=image, mask=mask)
                os.replace(tmp, final)
                _answer(answers, done=item["id"], seconds=round(time.perf_counter() - start, 4))
            _answer(answers, batch_done=request["batch"])
    except BaseException as exc:  # noqa: BLE001 - report anything, then leave without the exit crash
        traceback.print_exc()
        message = str(exc) if isinstance(exc, blender_env.RenderSetupError) else f"{type(exc).__name__}: {exc}"
        try:
            _answer(answers, error=message)
        except OSError:
            pass
        blender_env.exit_now(1)
    blender_env.exit_now(0)


if __name__ == "__main__":
    main()
