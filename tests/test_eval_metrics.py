"""Model-agnostic metrics against known answers: IWAE, D-Steps, the z_what probe and its matching."""

from __future__ import annotations

import torch
from torch.distributions import MultivariateNormal, Normal

from gnm.eval.dsteps import DStepsConfig, d_steps, mean_d_steps, sample_rows
from gnm.eval.ll import iwae_log_likelihood
from gnm.eval.probe import ProbeConfig, match_to_ground_truth, probe_accuracy


def linear_gaussian(d_z: int = 3, d_x: int = 5, sigma: float = 0.5):
    """z ~ N(0, I), x = W z + b + N(0, sigma^2): exact p(x) and exact posterior are known."""
    g = torch.Generator().manual_seed(0)
    w = torch.randn(d_x, d_z, generator=g, dtype=torch.float64)
    b = torch.randn(d_x, generator=g, dtype=torch.float64)
    marginal = MultivariateNormal(b, w @ w.T + sigma**2 * torch.eye(d_x, dtype=torch.float64))
    post_cov = torch.linalg.inv(torch.eye(d_z, dtype=torch.float64) + w.T @ w / sigma**2)

    def log_joint(x, z):  # x [B, d_x], z [k, B, d_z] -> [k, B]
        prior = Normal(0.0, 1.0).log_prob(z).sum(-1)
        return prior + Normal(z @ w.T + b, sigma).log_prob(x).sum(-1)

    def posterior(x):
        mean = (x - b) @ w @ post_cov.T / sigma**2
        return MultivariateNormal(mean, post_cov)

    return marginal, log_joint, posterior


def test_iwae_is_exact_with_the_true_posterior():
    marginal, log_joint, posterior = linear_gaussian()
    x = marginal.sample((7,))

    def log_weights(x, k):
        q = posterior(x)
        z = q.sample((k,))
        return log_joint(x, z) - q.log_prob(z)

    estimate = iwae_log_likelihood(log_weights, x, k=100, chunk=7)
    assert torch.allclose(estimate, marginal.log_prob(x), atol=1e-8)


def test_iwae_with_the_prior_as_proposal_tightens_with_k():
    torch.manual_seed(0)
    marginal, log_joint, _ = linear_gaussian()
    x = marginal.sample((50,))
    prior = Normal(torch.zeros(3, dtype=torch.float64), 1.0)

    def log_weights(x, k):
        z = prior.sample((k, x.shape[0]))
        return log_joint(x, z) - prior.log_prob(z).sum(-1)

    exact = marginal.log_prob(x).mean()
    k1 = iwae_log_likelihood(log_weights, x, k=1).mean()
    k_many = iwae_log_likelihood(log_weights, x, k=5000, chunk=1000).mean()
    assert k1 < k_many - 0.5  # a single sample is a much looser bound
    assert abs(float(k_many - exact)) < 0.1
    assert float(k_many) <= float(exact) + 0.02  # a lower bound (up to Monte Carlo error)


def test_d_steps_identical_sets_are_censored_and_different_sets_are_found_fast():
    g = torch.Generator().manual_seed(1)
    noise = torch.rand(400, 1, 16, 16, generator=g)
    cfg = DStepsConfig(max_steps=100, eval_every=10, held_out=100, channels=(8, 16))
    same = d_steps(sample_rows(noise), sample_rows(noise.flip(0)), seed=0, cfg=cfg)
    assert same.censored and same.steps == 100 and max(acc for _, acc in same.curve) < 0.9
    blank = torch.zeros(400, 1, 16, 16)
    longer = DStepsConfig(max_steps=400, eval_every=10, held_out=100, channels=(8, 16))
    different = d_steps(sample_rows(noise), sample_rows(blank), seed=0, cfg=longer)
    assert not different.censored and different.steps < 400 and different.curve[-1][1] >= 0.9
    mean, runs = mean_d_steps(sample_rows(noise), sample_rows(blank), seeds=(0, 1), cfg=longer)
    assert len(runs) == 2 and mean == sum(r.steps for r in runs) / 2


def test_probe_separates_separable_latents_only():
    g = torch.Generator().manual_seed(0)
    centres = torch.randn(10, 20, generator=g) * 3
    y_train, y_test = torch.randint(10, (1000,), generator=g), torch.randint(10, (500,), generator=g)
    z_train = centres[y_train] + torch.randn(1000, 20, generator=g)
    z_test = centres[y_test] + torch.randn(500, 20, generator=g)
    cfg = ProbeConfig(epochs=15)
    assert probe_accuracy(z_train, y_train, z_test, y_test, classes=10, cfg=cfg) > 0.97
    shuffled = probe_accuracy(z_train, y_train[torch.randperm(1000, generator=g)], z_test, y_test, classes=10, cfg=cfg)
    assert shuffled < 0.3


def test_match_to_ground_truth():
    boxes = torch.tensor([[[0, 0, 10, 10], [50, 50, 60, 60], [100, 100, 110, 110], [0, 0, 10, 10]]], dtype=torch.float32)
    present = torch.tensor([[True, True, True, False]])
    gt = torch.tensor([[[1, 1, 11, 11], [52, 50, 62, 60], [0, 0, 0, 0]]], dtype=torch.float32)
    gt_labels = torch.tensor([[7, 3, -1]])
    assert match_to_ground_truth(boxes, present, gt, gt_labels, max_distance=16).tolist() == [[7, 3, -1, -1]]
    assert match_to_ground_truth(boxes, present, gt, gt_labels, max_distance=1).tolist() == [[-1, -1, -1, -1]]
