"""Model kinds: the class that ModelConfig.kind builds, the loss coefficients its forward reads
(which the recipe's schedule table must hold) and its components for count_parameters."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from torch import nn

from . import gnm
from .baselines import ConvDRAW, Genesis, VAE, convdraw, genesis, image_vae, vae
from .config import ModelConfig


@dataclass(frozen=True)
class ModelKind:
    """A model class, its required and optional (name -> default) coefficients, and its
    components (count_parameters key -> attribute, which may be None)."""

    cls: type[nn.Module]
    required_coeffs: tuple[str, ...]
    optional_coeffs: Mapping[str, float]
    components: Mapping[str, str]


MODEL_KINDS: dict[str, ModelKind] = {
    "gnm": ModelKind(gnm.GNM, gnm.REQUIRED_COEFFS, gnm.OPTIONAL_COEFFS, gnm.COMPONENTS),
    "vae": ModelKind(VAE, image_vae.REQUIRED_COEFFS, {}, vae.COMPONENTS),
    "convdraw": ModelKind(ConvDRAW, image_vae.REQUIRED_COEFFS, {}, convdraw.COMPONENTS),
    "genesis": ModelKind(Genesis, image_vae.REQUIRED_COEFFS, {}, genesis.COMPONENTS),
}


def build_model(cfg: ModelConfig) -> nn.Module:
    """The model of cfg.kind (gnm.model.protocol.GenerativeModel), freshly initialised."""
    return MODEL_KINDS[cfg.kind].cls(cfg)


def count_parameters(model: nn.Module) -> dict[str, int]:
    """Trainable parameters per component of the model's kind (0 for an absent one) and total."""
    counts = {}
    for key, attr in MODEL_KINDS[model.cfg.kind].components.items():
        module = getattr(model, attr)
        counts[key] = sum(p.numel() for p in module.parameters()) if module is not None else 0
    counts["total"] = sum(p.numel() for p in model.parameters())
    return counts
