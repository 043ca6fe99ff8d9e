"""Baselines of the paper (appendix D.2) that share GNM's encoder and training loop: VAE, ConvDRAW, GENESIS."""

from .convdraw import ConvDRAW
from .genesis import Genesis, GenesisSample
from .image_vae import ImageOutput, ImageSample, ImageVAE
from .vae import VAE

__all__ = ["VAE", "ConvDRAW", "Genesis", "GenesisSample", "ImageOutput", "ImageSample", "ImageVAE"]
