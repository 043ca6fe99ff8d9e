"""What every model kind implements, so that the trainer, checkpoints, the monitor and eval
can take any of them (GNM, its SPACE-style variant, the VAE and ConvDRAW baselines).

Models are nn.Modules built by gnm.model.registry.build_model(cfg) and hold their ModelConfig
as `.cfg`. Only models with object boxes (GNM, also with global_prior none) have `infer`;
eval reports box AP as n/a for the others (hasattr(model, "infer")).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol, runtime_checkable

import torch
from torch import Tensor

from .config import ModelConfig
from .gnm import GNMSample


class Sample(Protocol):
    """A batch of images: GNMSample, or ImageSample for the baselines."""

    @property
    def image(self) -> Tensor:
        """[n, C, H, W] in [0, 1]."""


class Output(Protocol):
    """What forward returns: GNMOutput, or ImageOutput for the baselines."""

    @property
    def loss(self) -> Tensor:
        """Scalar: the weighted objective, batch mean (what the trainer minimises)."""

    @property
    def terms(self) -> dict[str, Tensor]:
        """Unweighted batch-mean scalars by name; always "nll" and "elbo"."""

    @property
    def recon(self) -> Tensor:
        """[B, C, H, W] reconstruction of the input."""

    @property
    def sample(self) -> Sample:
        """The posterior sample behind recon (its .image in [0, 1])."""


@runtime_checkable
class GenerativeModel(Protocol):
    """The protocol of every model kind."""

    cfg: ModelConfig

    def forward(self, x: Tensor, coeffs: Mapping[str, float]) -> Output:
        """x [B, C, H, W] in [0, 1] and the loss coefficients of the model's kind -> Output."""

    def sample(self, n: int, generator: torch.Generator | None = None) -> Sample:
        """n images from the prior; the same for the same weights and seeded generator."""

    def log_weights(self, x: Tensor, k: int) -> Tensor:
        """[k, B]: log p(x, z) - log q(z | x) for k posterior samples z ~ q(z | x) (the IWAE metric)."""


@runtime_checkable
class StructuredModel(GenerativeModel, Protocol):
    """A model with object boxes (GNM)."""

    def infer(self, x: Tensor) -> GNMSample:
        """Posterior modes of x [B, C, H, W]: boxes, presence and their rendering."""
