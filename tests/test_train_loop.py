"""The training loop on the CPU with the tiny recipe: exact resume, checkpoints that load with
weights_only=True, non-finite losses skipped and counted, best-by-S-Acc kept, the structure
check wired to the rule checker (a stand-in here) or saying once that there is none."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

import scenegen.check
from gnm.config import RunConfig, config_for_run, resolve_run_config
from gnm.model import GNM
from gnm.train import loop
from gnm.train.checkpoint import BEST_NAME, list_checkpoints, load_checkpoint, load_model
from gnm.train.loop import TrainingDiverged, train
from gnm.train.logbook import read_metrics
from gnm.train.monitor import StructureMonitor, StructureResult
from scenegen.check import Verdict
from scenegen.data import ShardDataset
from scenegen.errors import UserError

TINY = Path(__file__).resolve().parents[1] / "recipes" / "gnm-mnist4-tiny.yaml"


def tiny(*overrides: str) -> RunConfig:
    return resolve_run_config(TINY, ["train.device=cpu", *overrides])


def assert_same_state(a: dict, b: dict) -> None:
    """Bitwise equal tensors (recursively) in two state dicts."""
    assert a.keys() == b.keys()
    for key in a:
        if isinstance(a[key], dict):
            assert_same_state(a[key], b[key])
        elif isinstance(a[key], torch.Tensor):
            assert torch.equal(a[key], b[key]), key
        else:
            assert a[key] == b[key], key


class RandomChecker:
    """Stands in for the rule checker (whose recogniser takes minutes to fit): passes images at
    random, drawing from the global RNG, as a careless checker might."""

    calls: list[tuple[str, dict]] = []

    @classmethod
    def for_dataset(cls, name: str, config: dict | None = None) -> "RandomChecker":
        cls.calls.append((name, config))
        return cls()

    def check(self, images: torch.Tensor) -> list[Verdict]:
        return [Verdict(bool(u > 0.5), None, []) for u in torch.rand(len(images))]


@pytest.fixture
def random_checker(monkeypatch: pytest.MonkeyPatch) -> type[RandomChecker]:
    RandomChecker.calls = []
    monkeypatch.setattr(scenegen.check, "RuleChecker", RandomChecker)
    return RandomChecker


def test_k_steps_resume_k_steps_equals_2k_steps(mnist4_split, tmp_path, random_checker):
    # Pictures and structure checks (by a checker that draws random numbers) at other steps than
    # in the straight run: they must not change what is trained. One DataLoader worker: the data
    # order must survive workers too.
    common = ("train.ckpt_every=2", "train.image_every=2", "train.num_workers=1", "train.n_check_samples=2")
    straight = train(tiny("train.steps=4", "train.sample_every=1", *common), mnist4_split, tmp_path / "a")
    first = train(tiny("train.steps=2", "train.sample_every=3", *common), mnist4_split, tmp_path / "b")
    assert first.step == 2
    cfg, resuming = config_for_run(tmp_path / "b", TINY, ["train.steps=4"])
    assert resuming
    resumed = train(cfg, mnist4_split, tmp_path / "b")
    assert straight.step == resumed.step == 4 and straight.checkpoint.name == resumed.checkpoint.name
    a, b = load_checkpoint(straight.checkpoint), load_checkpoint(resumed.checkpoint)
    assert_same_state(a["model"], b["model"])
    assert_same_state(a["optimizer"], b["optimizer"])
    assert torch.equal(a["rng"][0]["cpu"], b["rng"][0]["cpu"])
    assert random_checker.calls[0] == ("mnist4", ShardDataset(mnist4_split).config)
    checks = read_metrics(tmp_path / "a", "check")
    assert [r["step"] for r in checks] == [1, 2, 3, 4] and all(0 <= r["s_acc"] <= 1 for r in checks)


def test_checkpoints_load_weights_only_and_keep_the_last(mnist4_split, tmp_path):
    overrides = ("train.steps=3", "train.ckpt_every=1", "train.keep_last=2")
    result = train(tiny(*overrides), mnist4_split, tmp_path)
    assert [p.name for p in list_checkpoints(tmp_path)] == ["ckpt-00000002.pt", "ckpt-00000003.pt"]
    state = torch.load(result.checkpoint, weights_only=True)
    assert state["step"] == 3 and state["skipped"] == 0 and state["world_size"] == 1
    assert {"model", "optimizer", "rng", "config"} <= state.keys()
    cfg, model, step = load_model(tmp_path, torch.device("cpu"))
    assert step == 3 and cfg == tiny(*overrides)
    assert not model.training and all(torch.equal(p, state["model"][k]) for k, p in model.state_dict().items())
    assert not list(tmp_path.glob(".*tmp*"))  # atomic writes leave no temporary files
    assert (tmp_path / "metrics.jsonl").is_file() and list((tmp_path / "tb").iterdir())


def poison_forward(monkeypatch: pytest.MonkeyPatch, bad_calls: set[int] | None) -> None:
    """Make GNM.forward return a NaN loss on the given 1-based calls (None: from the 3rd call on)."""
    original = GNM.forward
    calls = {"n": 0}

    def forward(self, x, coeffs):
        out = original(self, x, coeffs)
        calls["n"] += 1
        if (calls["n"] >= 3) if bad_calls is None else (calls["n"] in bad_calls):
            out.loss = out.loss * float("nan")
        return out

    monkeypatch.setattr(GNM, "forward", forward)


def test_non_finite_steps_are_skipped_and_counted(mnist4_split, tmp_path, monkeypatch):
    poison_forward(monkeypatch, {2, 3})
    result = train(tiny("train.steps=4", "train.ckpt_every=1", "train.keep_last=10"), mnist4_split, tmp_path)
    assert result.step == 4 and result.skipped == 2
    states = [load_checkpoint(p) for p in list_checkpoints(tmp_path)]
    assert_same_state(states[0]["model"], states[1]["model"])  # steps 2 and 3 changed nothing
    assert_same_state(states[0]["optimizer"], states[2]["optimizer"])
    assert not torch.equal(states[2]["model"]["encoder.net.0.weight"], states[3]["model"]["encoder.net.0.weight"])
    assert all(torch.isfinite(v).all() for v in states[-1]["model"].values())


def test_repeated_non_finite_losses_stop_with_the_last_good_checkpoint(mnist4_split, tmp_path, monkeypatch):
    poison_forward(monkeypatch, None)  # steps 3 and 4 fail; the checkpoint at step 3 still holds step 2's weights
    with pytest.raises(TrainingDiverged) as err:
        train(tiny("train.steps=20", "train.ckpt_every=1", "train.max_nonfinite=2"), mnist4_split, tmp_path)
    last = tmp_path / "ckpt-00000003.pt"
    assert str(err.value).startswith(f"stopped at step 4: 2 non-finite losses in a row; last good checkpoint: {last}")
    assert_same_state(load_checkpoint(last)["model"], load_checkpoint(tmp_path / "ckpt-00000002.pt")["model"])


def test_best_checkpoint_follows_structure_accuracy(mnist4_split, tmp_path, monkeypatch):
    scores = iter([0.2, 0.5, 0.4])

    def judge(self, model, step, device):
        return StructureResult(next(scores), (0.0, 1.0), 4, tmp_path / "grid.png")

    monkeypatch.setattr(loop.StructureMonitor, "__call__", judge)
    overrides = ("train.steps=3", "train.sample_every=1", "train.ckpt_every=100", "train.n_check_samples=4")
    result = train(tiny(*overrides), mnist4_split, tmp_path)
    best = torch.load(tmp_path / BEST_NAME, weights_only=True)
    assert best["step"] == 2 and best["best_s_acc"] == 0.5 and "optimizer" not in best
    assert result.s_acc == 0.4


def test_monitor_without_checker_says_so_once(tmp_path, monkeypatch):
    def unknown(name, config=None):
        raise UserError(f"no rules for {name}")

    monkeypatch.setattr(scenegen.check.RuleChecker, "for_dataset", unknown)
    said: list[str] = []
    monitor = StructureMonitor("mnist4", {}, 2, 0, tmp_path, said.append)
    model = GNM(tiny().model)
    results = [monitor(model, step, torch.device("cpu")) for step in (1, 2)]
    assert [r.s_acc for r in results] == [None, None] and results[1].grid_path.is_file()
    assert len(said) == 1 and "no rules for mnist4" in said[0]
