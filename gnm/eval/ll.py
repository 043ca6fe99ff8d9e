"""Importance-weighted log-likelihood (the IWAE bound) with K posterior samples, streamed over K.

log p(x) >= log (1/K) sum_k exp(log w_k),  log w_k = log p(x, z_k) - log q(z_k | x),  z_k ~ q(z | x).
The sum is accumulated in chunks of samples with a running log-sum-exp, so memory does not grow
with K. In nats, summed over pixels (the paper's convention).
"""

from __future__ import annotations

import math
from typing import Callable

import torch
from torch import Tensor

# log_weights(x [B, ...], k) -> [k, B]: log p(x, z) - log q(z | x) for k fresh posterior samples.
LogWeights = Callable[[Tensor, int], Tensor]


@torch.no_grad()
def iwae_log_likelihood(log_weights: LogWeights, x: Tensor, k: int = 100, chunk: int = 10) -> Tensor:
    """The IWAE estimate of log p(x) per image: [B]."""
    running = torch.full((x.shape[0],), -math.inf, dtype=torch.float64, device=x.device)
    done = 0
    while done < k:
        step = min(chunk, k - done)
        w = log_weights(x, step).double()  # [step, B]
        running = torch.logaddexp(running, torch.logsumexp(w, dim=0))
        done += step
    return running - math.log(k)
