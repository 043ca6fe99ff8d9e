"""ModelConfig: every architecture hyperparameter of GNM, defaulting to the release's MNIST values.

Sources: paper Tables 6-9 and appendix D; where the paper's tables and the authors' release
differ, the release value is used (it is what the 2.9M / 8.6M parameter counts of Table 5 and
the published results come from) and the field's comment says so. The same config describes
the paper's baselines (appendix D.2, Tables 10-11): `kind` picks the model (gnm/model/registry.py),
which reads the fields it needs (the encoder and likelihood fields are shared by every kind).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

# Fields given as tuples; YAML/JSON hand us lists, which __post_init__ turns into tuples.
_TUPLE_FIELDS = (
    "enc_channels", "enc_kernels", "enc_strides",
    "glimpse_channels", "glimpse_kernels", "glimpse_upscales",
    "bg_channels", "bg_kernels", "bg_upscales", "bg_enc_mlp", "bg_prior_mlp",
    "interaction_mlp", "dec_mlp", "where_prior_std",
    "image_dec_channels", "image_dec_kernels", "image_dec_upscales", "genesis_sbd_channels",
)

# Model kinds (gnm/model/registry.py maps each to its class).
MODEL_KINDS = ("gnm", "vae", "convdraw", "genesis")
# "none": SPACE-style GNM without z_g (per-cell priors from a learned constant feature map).
GLOBAL_PRIORS = ("structdraw", "gaussian", "none")
SAMPLE_Z_S = ("mode", "draw")


@dataclass(frozen=True)
class ModelConfig:
    """Architecture of one GNM (or baseline). Defaults: MNIST-4 / MNIST-10 release values; `arrow()` for Arrow Room."""

    kind: str = "gnm"                       # gnm | vae | convdraw | genesis (MODEL_KINDS)
    image_size: int = 128
    channels: int = 1                       # 1 MNIST, 3 Arrow
    grid: int = 4                           # the latent structure map is grid x grid cells

    # Image encoder (Table 6): conv -> CELU -> GroupNorm(1, C) per layer, the last one included.
    enc_channels: tuple[int, ...] = (16, 16, 32, 32, 64, 64, 64, 64, 64)
    enc_kernels: tuple[int, ...] = (4, 3, 4, 3, 4, 3, 4, 3, 4)
    enc_strides: tuple[int, ...] = (2, 1, 2, 1, 2, 1, 2, 1, 2)

    # Per-cell heads, shared by p(z_s | f) and q(z_s | f_x): head_layers 1x1 conv blocks.
    head_hidden: int = 64
    head_layers: int = 2
    z_what_dim: int = 20
    init_scale_logit: float = -1.0          # initial bias of the z_where scale mean (release)
    pres_logit_scale: float = 8.8           # z_pres logit = pres_logit_scale * tanh(raw)
    std_floor: float = 1e-4                 # every Gaussian std = softplus(raw) + std_floor

    # Glimpse decoder (Table 7): sub-pixel conv layers; the last layer's channels are
    # channels (+1 alpha) and it has no norm/activation, then a sigmoid.
    glimpse_size: int = 32
    glimpse_alpha: bool = False             # MNIST: glimpses summed; Arrow: alpha + depth compositing
    glimpse_channels: tuple[int, ...] = (64, 64, 32, 16, 8)
    glimpse_kernels: tuple[int, ...] = (1, 1, 1, 1, 3, 3)
    glimpse_upscales: tuple[int, ...] = (4, 2, 2, 2, 1, 1)
    # Initial logit of every glimpse pixel: dark glimpses (sigmoid(-4) ~ 0.02) so that a present
    # object does not paint grey over the black MNIST background at initialisation, which made
    # the first optimiser step switch every z_pres off for good.
    glimpse_init_bias: float = -4.0

    # Background (Arrow only): q(z_bg | f_x) MLP, p(z_bg | z_g) MLP, decoder (Table 8).
    use_background: bool = False
    z_bg_dim: int = 10
    bg_enc_mlp: tuple[int, ...] = (512, 256)
    bg_prior_mlp: tuple[int, ...] = (128, 64)
    bg_channels: tuple[int, ...] = (128, 64, 32, 16, 8)
    bg_kernels: tuple[int, ...] = (1, 1, 1, 1, 1, 3)
    bg_upscales: tuple[int, ...] = (4, 2, 4, 2, 2, 1)

    # Global latent z_g: StructDRAW (Algorithm 1), a plain Gaussian (GNM-Gaussian) or none
    # (SPACE-style). kind convdraw draws its canvas with StructDRAW and reads the fields below too.
    global_prior: str = "structdraw"
    # How samples draw z_s ~ p(z_s | z_g): "mode" (the release: z_pres = [logit > 0], Gaussian means;
    # the variety comes from z_g) or "draw" (z_pres a Bernoulli draw, Gaussians sampled; what a model
    # without z_g needs to give different samples).
    sample_z_s: str = "mode"
    draw_steps: int = 4
    z_g_step_dim: int = 32
    draw_hidden: int = 64                   # ConvLSTM hidden channels
    lstm_kernel: int = 1                    # release value; paper Table 9 says 3 (that would be ~4.6M params)
    canvas_kernel: int = 3                  # CNN_out: h_dec -> canvas increment
    use_interaction_mlp: bool = True        # False = GNM-NoMLP: 3x3 convs on the map instead
    interaction_mlp: tuple[int, ...] = (512, 512)   # hidden sizes; output 2 * z_g_step_dim
    nomlp_hidden: int = 128                 # GNM-NoMLP conv hidden channels
    dec_mlp: tuple[int, ...] = (512, 512, 1024)     # MLP_dec(z_l); last = grid^2 * decoder-input channels

    # Likelihood and auxiliary priors (appendix C).
    scale_mean: float = -1.6
    obs_sigma: float = 0.2
    where_prior_std: tuple[float, float, float, float] = (0.1, 0.3, 1.0, 1.0)

    # Baselines (appendix D.2). VAE: q(z | f_x) from a 2-layer CNN, a 3x3 conv to vae_hidden
    # channels, then a grid x grid conv to the mean and std of the vae_z_dim-d latent z.
    vae_z_dim: int = 128                    # Table 10's decoder input: 1 x 1 x 128
    vae_hidden: int = 128
    # Image decoder from a grid x grid map (Table 11, ConvDRAW): sub-pixel convs, ReLU + layer
    # norm, the last layer emits `channels`, then a sigmoid. The VAE's (Table 10) adds a 1x1
    # sub-pixel layer (image_dec_channels[0], upscale grid) in front, from its 1 x 1 latent.
    image_dec_channels: tuple[int, ...] = (128, 64, 64, 32, 32, 16, 16, 16, 16, 8)
    image_dec_kernels: tuple[int, ...] = (3, 1, 3, 1, 3, 1, 3, 1, 3, 1, 3)
    image_dec_upscales: tuple[int, ...] = (1, 2, 1, 2, 1, 2, 1, 2, 1, 2, 1)

    # GENESIS (appendix D.2; gnm/model/baselines/genesis.py): K slots, each with a mask latent
    # z^m_k and a component latent z^c_k. Its mask decoder is the VAE's image decoder above (one
    # output channel, logits); its encoders are the image encoder above (the component encoder
    # over image + log mask). Latent sizes and widths: our choices (the paper gives none).
    genesis_slots: int = 5                  # K: objects + background (recipes set it per dataset)
    genesis_z_mask_dim: int = 64
    genesis_z_comp_dim: int = 64
    genesis_hidden: int = 256               # image embedding, both LSTMs, the MLPs' hidden layers
    # Spatial broadcast decoder of the components: 3x3 convs (ReLU + layer norm), then a 1x1 conv
    # to `channels` and a sigmoid. 3 layers: the GNM paper's change (c); GENESIS has 4.
    genesis_sbd_channels: tuple[int, ...] = (32, 32, 32)

    def __post_init__(self) -> None:
        for name in _TUPLE_FIELDS:
            object.__setattr__(self, name, tuple(getattr(self, name)))
        self._validate()

    def _validate(self) -> None:
        checks = {
            "kind must be one of " + str(MODEL_KINDS): self.kind in MODEL_KINDS,
            "global_prior must be one of " + str(GLOBAL_PRIORS): self.global_prior in GLOBAL_PRIORS,
            "sample_z_s must be one of " + str(SAMPLE_Z_S): self.sample_z_s in SAMPLE_Z_S,
            "enc_channels/enc_kernels/enc_strides lengths differ":
                len(self.enc_channels) == len(self.enc_kernels) == len(self.enc_strides),
            "image_size / prod(enc_strides) must equal grid":
                self.image_size == self.grid * math.prod(self.enc_strides),
            "glimpse kernels/upscales need len(glimpse_channels) + 1 entries":
                len(self.glimpse_kernels) == len(self.glimpse_upscales) == len(self.glimpse_channels) + 1,
            "prod(glimpse_upscales) must equal glimpse_size": math.prod(self.glimpse_upscales) == self.glimpse_size,
            "bg kernels/upscales need len(bg_channels) + 1 entries":
                len(self.bg_kernels) == len(self.bg_upscales) == len(self.bg_channels) + 1,
            "prod(bg_upscales) must equal image_size": math.prod(self.bg_upscales) == self.image_size,
            "dec_mlp[-1] must be a multiple of grid^2": self.dec_mlp[-1] % (self.grid ** 2) == 0,
            "use_background needs glimpse_alpha (alpha compositing)": self.glimpse_alpha or not self.use_background,
            "global_prior none has no z_g for p(z_bg | z_g): no use_background":
                self.global_prior != "none" or not self.use_background,
            "GNM-NoMLP needs z_g_step_dim divisible by grid^2":
                self.use_interaction_mlp or self.z_g_step_dim % (self.grid ** 2) == 0,
            "where_prior_std needs 4 entries": len(self.where_prior_std) == 4,
            "image_dec kernels/upscales need len(image_dec_channels) + 1 entries":
                len(self.image_dec_kernels) == len(self.image_dec_upscales) == len(self.image_dec_channels) + 1,
            "grid * prod(image_dec_upscales) must equal image_size":
                self.grid * math.prod(self.image_dec_upscales) == self.image_size,
            "genesis_slots must be at least 2": self.genesis_slots >= 2,
        }
        failed = [msg for msg, ok in checks.items() if not ok]
        if failed:
            raise ValueError("invalid ModelConfig: " + "; ".join(failed))

    @property
    def num_cells(self) -> int:
        return self.grid ** 2

    @property
    def feature_channels(self) -> int:
        """Channels of f_x and of the StructDRAW canvas f."""
        return self.enc_channels[-1]

    @property
    def z_g_dim(self) -> int:
        """Size of z_g (0 without a global latent)."""
        return 0 if self.global_prior == "none" else self.draw_steps * self.z_g_step_dim

    @property
    def glimpse_out_channels(self) -> int:
        return self.channels + int(self.glimpse_alpha)

    def replace(self, **changes: Any) -> ModelConfig:
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> ModelConfig:
        """Build from a plain dict (YAML/JSON); unknown keys are an error."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"unknown ModelConfig keys {unknown}")
        return cls(**values)

    @classmethod
    def mnist(cls, **changes: Any) -> ModelConfig:
        """MNIST-4 / MNIST-10 / MNIST-4-10 release values (the defaults)."""
        return cls(**changes)

    @classmethod
    def arrow(cls, **changes: Any) -> ModelConfig:
        """Arrow Room release values: RGB, background, 64x64 RGB+alpha glimpses."""
        values: dict[str, Any] = dict(
            channels=3,
            enc_channels=(16, 16, 32, 32, 64, 64, 128, 128, 128),
            head_hidden=128,
            z_what_dim=64,
            glimpse_size=64,
            glimpse_alpha=True,
            glimpse_channels=(128, 64, 32, 16, 8),
            glimpse_kernels=(3, 3, 3, 3, 3, 3),
            glimpse_upscales=(2, 2, 2, 2, 2, 2),
            use_background=True,
            draw_hidden=128,
            dec_mlp=(512, 1024, 2048),
            scale_mean=-1.5,
            glimpse_init_bias=0.0,  # alpha compositing over a background: no dark start needed
        )
        values.update(changes)
        return cls(**values)


    @classmethod
    def tiny(cls, **changes: Any) -> ModelConfig:
        """A 32 x 32 miniature with the same structure, for smoke tests (not a paper configuration)."""
        values: dict[str, Any] = dict(
            image_size=32,
            enc_channels=(8, 8, 16), enc_kernels=(4, 4, 4), enc_strides=(2, 2, 2),
            head_hidden=16, z_what_dim=4,
            glimpse_size=8, glimpse_channels=(16, 8, 8), glimpse_kernels=(1, 1, 1, 3), glimpse_upscales=(2, 2, 2, 1),
            z_bg_dim=4, bg_enc_mlp=(32,), bg_prior_mlp=(16,),
            bg_channels=(8, 8), bg_kernels=(1, 1, 3), bg_upscales=(4, 4, 2),
            draw_hidden=16, z_g_step_dim=16, interaction_mlp=(32,), nomlp_hidden=16, dec_mlp=(32, 256),
            vae_z_dim=8, vae_hidden=16,
            genesis_z_mask_dim=4, genesis_z_comp_dim=4, genesis_hidden=16, genesis_sbd_channels=(8, 8, 8),
            image_dec_channels=(16, 8, 8), image_dec_kernels=(3, 1, 1, 3), image_dec_upscales=(1, 2, 2, 2),
        )
        values.update(changes)
        return cls(**values)


PRESETS: dict[str, ModelConfig] = {
    "mnist": ModelConfig.mnist(), "arrow": ModelConfig.arrow(), "tiny": ModelConfig.tiny(),
}
