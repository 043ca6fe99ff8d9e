"""ConvDRAW baselines (paper appendix D.2, Table 11): StructDRAW's drawing loop on a G x G
feature canvas, which an image decoder turns into the image.

- ConvDRAW (use_interaction_mlp=False): the interaction is a 2-layer 3x3 CNN, so z_l is a
  G x G map (z_g_step_dim / G^2 channels per cell) that enters the decoder ConvLSTM as it is:
  information moves between cells only through convolutions and the steps.
- ConvDRAW-MLP (use_interaction_mlp=True): StructDRAW unchanged (interaction MLP, MLP_dec).
p(z_l | z_<l) is learned per step (the prior net on h_dec), q(z_l | z_<l, x) reads f_x and
f_x - canvas; beta weights the KL summed over the steps.
"""

from __future__ import annotations

from ..config import ModelConfig
from ..structdraw import StructDRAW
from .decoders import image_decoder
from .image_vae import ImageVAE

# count_parameters key -> attribute
COMPONENTS = {"encoder": "encoder", "draw": "latent", "decoder": "decoder"}


class ConvDRAW(ImageVAE):
    """Encoder (Table 6) -> StructDRAW loop (conv or MLP interaction) -> canvas -> decoder (Table 11) -> image."""

    def __init__(self, cfg: ModelConfig) -> None:
        draw = StructDRAW(cfg, direct_write=not cfg.use_interaction_mlp)
        super().__init__(cfg, draw, image_decoder(cfg, cfg.feature_channels, from_vector=False))
