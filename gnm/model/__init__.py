"""The GNM network (encoder, StructDRAW prior, structured heads, glimpse decoder, renderer), the
paper's baselines (gnm.model.baselines) and the registry that builds either from a ModelConfig."""

from .config import PRESETS, ModelConfig
from .gnm import GNM, GNMOutput, GNMSample
from .protocol import GenerativeModel, StructuredModel
from .registry import MODEL_KINDS, build_model, count_parameters

__all__ = ["GNM", "MODEL_KINDS", "PRESETS", "GNMOutput", "GNMSample", "GenerativeModel", "ModelConfig",
           "StructuredModel", "build_model", "count_parameters"]
