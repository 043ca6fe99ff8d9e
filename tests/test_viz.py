"""gnm viz: the figure functions on a real (tiny, untrained) GNM, and the CLI on a real tiny run."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from PIL import Image
from typer.testing import CliRunner

from gnm.cli import app
from gnm.config import resolve_run_config
from gnm.model import build_model
from gnm.model.structure import CellParams
from gnm.train.images import to_uint8
from gnm.viz import FIGURES, figure_names
from scenegen.errors import UserError
from gnm.viz.figures import _walk_noise, componentwise

ROOT = Path(__file__).resolve().parents[1]
TINY = ROOT / "recipes" / "gnm-mnist4-tiny.yaml"
TILE = 128 + 2  # a grid tile: the image and its padding


def tiny_model(pres_bias: float) -> torch.nn.Module:
    cfg = resolve_run_config(TINY, [])
    model = build_model(cfg.model).eval()
    with torch.no_grad():
        model.heads.out.bias[0] = pres_bias  # the z_pres logit of every cell
    return model


def tile(image: torch.Tensor, row: int, column: int) -> torch.Tensor:
    return image[:, 2 + row * TILE : 2 + row * TILE + 128, 2 + column * TILE : 2 + column * TILE + 128]


def test_componentwise_starts_empty_adds_one_object_per_column_and_ends_at_the_sample():
    torch.manual_seed(0)
    model = tiny_model(pres_bias=0.0)
    picture = componentwise(model, 3, torch.Generator().manual_seed(5))
    sample = model.sample(3, torch.Generator().manual_seed(5))
    columns = int(sample.pres.sum(1).max()) + 2
    assert picture.shape == (3, 2 + 3 * TILE, 2 + columns * TILE)
    for row in range(3):
        assert tile(picture, row, 0).max() == 0  # MNIST: no background, no object yet
        final = tile(picture, row, columns - 1)
        assert torch.equal(final, to_uint8(sample.image[row]).expand(3, -1, -1))
        assert final.sum() > 0


def test_walk_noise_runs_between_two_standard_normal_draws():
    noise = _walk_noise(rows=4, columns=5, generator=torch.Generator().manual_seed(0))
    walk = noise(torch.empty(20, 64)).view(4, 5, 64)
    again = _walk_noise(rows=4, columns=5, generator=torch.Generator().manual_seed(0))(torch.empty(20, 64)).view(4, 5, 64)
    first = torch.randn((4, 64), generator=torch.Generator().manual_seed(0))
    assert torch.allclose(walk[:, 0], first, atol=1e-5) and torch.equal(walk, again)
    norms = walk.norm(dim=-1)  # slerp: the norm stays between those of the two ends (no shrinking towards 0)
    assert (norms > 0.8 * norms[:, [0, -1]].min(1, keepdim=True).values).all()
    assert not torch.allclose(walk[:, 0], walk[:, -1])


def test_cell_sample_draws_z_pres_from_its_bernoulli_and_the_gaussians_around_their_means():
    n, cells, d = 4000, 2, 3
    logit = torch.tensor([-1.0, 2.0]).expand(n, cells)
    mu = torch.full((n, cells, d), 3.0)
    params = CellParams(pres_logit=logit, where_mu=mu.new_zeros(n, cells, 4), where_std=mu.new_ones(n, cells, 4),
                        depth_mu=logit * 0, depth_std=logit * 0 + 1, what_mu=mu, what_std=mu * 0 + 0.5)
    drawn = params.sample(torch.Generator().manual_seed(0))
    assert set(drawn.pres.unique().tolist()) == {0.0, 1.0}
    assert drawn.pres.mean(0) == pytest.approx(torch.sigmoid(logit[0]), abs=0.03)
    assert drawn.what.mean() == pytest.approx(3.0, abs=0.02) and drawn.what.std() == pytest.approx(0.5, abs=0.02)


def gnm(*args) -> object:
    return CliRunner().invoke(app, [str(a) for a in args])


def test_viz_cli_writes_every_figure_and_the_beta_comparison(mnist4_split, tmp_path):
    run = tmp_path / "run"
    assert gnm("train", "--data", mnist4_split, "--recipe", TINY, "--out", run, "--device", "cpu", "--steps", "1").exit_code == 0
    drawn = gnm("viz", "--run", run, "--data", mnist4_split, "--device", "cpu")
    assert drawn.exit_code == 0, drawn.output
    gnm_figures = [name for name, figure in FIGURES.items() if figure.needs == "infer"]
    assert sorted(p.stem for p in (run / "figures").iterdir()) == sorted(gnm_figures)  # not GENESIS's slots
    for name in gnm_figures:
        assert Image.open(run / "figures" / f"{name}.png").size[0] > 3 * 128
    beta = gnm("viz", "--run", run, "--run", run, "--figure", "beta", "--n", 3, "--out", tmp_path / "b.png", "--device", "cpu")
    assert beta.exit_code == 0, beta.output
    assert Image.open(tmp_path / "b.png").size[1] == 2 * (2 + 130)  # one row per run

    unknown = gnm("viz", "--run", run, "--figure", "nope", "--device", "cpu")
    assert unknown.exit_code == 1 and "unknown figure 'nope'" in unknown.output
    no_data = gnm("viz", "--run", run, "--figure", "where", "--device", "cpu")
    assert no_data.exit_code == 1 and "pass --data" in no_data.output


def test_figure_names_follow_what_the_model_can_draw():
    class Boxes:
        def infer(self): ...

    class Plain:
        pass

    assert figure_names("all", Boxes()) == [n for n, f in FIGURES.items() if f.needs == "infer"]
    assert figure_names("where, global", Boxes()) == ["where", "global"]
    with pytest.raises(UserError, match="a Plain model has none of these figures .* use --figure beta"):
        figure_names("all", Plain())
    with pytest.raises(UserError, match="--figure slots needs a model with decompose"):
        figure_names("slots", Boxes())
    with pytest.raises(UserError, match="unknown figure 'nope'"):
        figure_names("nope", Boxes())
