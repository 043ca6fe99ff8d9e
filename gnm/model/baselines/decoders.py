"""Image decoders of the baselines (paper Tables 10-11): sub-pixel conv stacks ending in a sigmoid."""

from __future__ import annotations

from torch import nn

from ..config import ModelConfig
from ..layers import conv_stack


def image_decoder(cfg: ModelConfig, c_in: int, from_vector: bool) -> nn.Sequential:
    """Decoder to images [B, channels, H, W] in (0, 1). ConvDRAW (Table 11): from a map
    [B, c_in, G, G]. VAE (Table 10, from_vector): from [B, c_in, 1, 1], through a first 1x1
    sub-pixel conv to the G x G map with image_dec_channels[0] channels. ReLU and layer norm
    after every layer but the last, as the tables give."""
    channels, kernels, upscales = cfg.image_dec_channels, cfg.image_dec_kernels, cfg.image_dec_upscales
    if from_vector:
        channels, kernels, upscales = (channels[0], *channels), (1, *kernels), (cfg.grid, *upscales)
    convs = conv_stack(c_in, (*channels, cfg.channels), kernels, upscales=upscales, final_norm_act=False, act=nn.ReLU)
    return nn.Sequential(*convs, nn.Sigmoid())
