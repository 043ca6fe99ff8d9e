"""The GNM network: encoder, StructDRAW prior, structured heads, glimpse decoder, renderer."""

from .config import PRESETS, ModelConfig
from .gnm import GNM, GNMOutput, GNMSample, count_parameters

__all__ = ["GNM", "PRESETS", "GNMOutput", "GNMSample", "ModelConfig", "count_parameters"]
