"""DDP on the CPU: two gloo processes train the tiny recipe in step (identical parameters on
both ranks although each reads other images and draws other noise), resume exactly, and
`torchrun -m gnm train` works end to end."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import torch
import torch.multiprocessing as mp

from gnm.config import config_for_run, resolve_run_config
from gnm.train.checkpoint import load_checkpoint
from gnm.train.distributed import distributed
from gnm.train.loop import Trainer

ROOT = Path(__file__).resolve().parents[1]
TINY = ROOT / "recipes" / "gnm-mnist4-tiny.yaml"
WORLD = 2


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rank_main(rank: int, port: int, data: Path, out: Path) -> None:
    """One rank: 2 steps straight in out/a; 1 step, then a resume to 2, in out/b."""
    os.environ.update(WORLD_SIZE=str(WORLD), RANK=str(rank), LOCAL_RANK=str(rank),
                      MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.set_num_threads(1)
    common = ["train.device=cpu", "train.ckpt_every=1"]
    with distributed("cpu") as ctx:
        for run, steps in (("a", 2), ("b", 1), ("b", 2)):
            cfg, _ = config_for_run(out / run, TINY, [*common, f"train.steps={steps}"])
            trainer = Trainer(cfg, data, out / run, ctx, print)
            trainer.run()
            torch.save(trainer.model.state_dict(), out / f"{run}{steps}-rank{rank}.pt")


def test_two_processes_stay_in_step_and_resume_exactly(mnist4_split, tmp_path):
    mp.spawn(rank_main, args=(free_port(), mnist4_split, tmp_path), nprocs=WORLD, join=True)
    for run in ("a2", "b1", "b2"):
        ranks = [torch.load(tmp_path / f"{run}-rank{r}.pt", weights_only=True) for r in range(WORLD)]
        assert all(torch.equal(ranks[0][k], ranks[1][k]) for k in ranks[0]), f"{run}: ranks differ"
    straight, resumed = load_checkpoint(tmp_path / "a" / "ckpt-00000002.pt"), load_checkpoint(tmp_path / "b" / "ckpt-00000002.pt")
    assert straight["world_size"] == WORLD and len(straight["rng"]) == WORLD
    assert all(torch.equal(straight["model"][k], resumed["model"][k]) for k in straight["model"])
    trained = torch.load(tmp_path / "a2-rank0.pt", weights_only=True)
    assert all(torch.equal(trained[k], straight["model"][k]) for k in trained)


def test_torchrun_runs_the_cli(mnist4_split, tmp_path):
    run = tmp_path / "run"
    proc = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={WORLD}",
         "-m", "gnm", "train", "--data", str(mnist4_split), "--recipe", str(TINY), "--out", str(run),
         "--device", "cpu", "--steps", "2"],
        capture_output=True, text=True, timeout=300, cwd=ROOT, env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    state = load_checkpoint(run / "ckpt-00000002.pt")
    assert state["world_size"] == WORLD and state["step"] == 2
    assert resolve_run_config(TINY, ["train.device=cpu", "train.steps=2"]) == config_for_run(run, None)[0]
