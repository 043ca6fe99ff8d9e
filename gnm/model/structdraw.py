"""Global latent z_g and the structure feature map f it draws.

Three priors share one interface (`infer(f_x, noise)` and `generate(n, noise)`, both returning
`GlobalLatent`):
- StructDRAW (paper Algorithm 1): L autoregressive steps on a grid x grid feature canvas.
- GaussianGlobal (GNM-Gaussian ablation): z_g ~ N(0, I), f = MLP(z_g), q(z_g | x) = MLP(f_x).
- NoGlobal (SPACE-style): no z_g; f is a learned constant map, so p(z_s | f) is a learned
  per-cell prior that no global latent conditions.
The ConvDRAW baseline (gnm/model/baselines/convdraw.py) draws its canvas with StructDRAW too.

StructDRAW step l (h_*, c_*, canvas start at zero):
  p(z_l)  = N(InteractionNet_p(h_dec))                      prior, from h_dec before step l
  h_enc   = ConvLSTM_enc(CAT[h_dec, f_x, f_x - canvas])     inference only
  q(z_l)  = N(InteractionNet_q(h_enc))
  z_l     ~ q (inference) or p (generation)
  h_dec   = ConvLSTM_dec(CAT[MLP_dec(z_l) as a G x G map, canvas])
  canvas += CNN_out(h_dec)
The decoder sees the canvas as well as d_l, as in the paper's text (section 3.3 step 4 and
appendix D: "takes the previous feature map f_{l-1} and z_l"); Algorithm 1 omits it.
The interaction net is an MLP on the flattened map (GNM) or 3x3 convs on the map (GNM-NoMLP,
whose z_l is then a map of z_g_step_dim / G^2 channels per cell, flattened). With
`direct_write` (ConvDRAW) that map is d_l itself, without MLP_dec.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from .config import ModelConfig
from .distributions import NoiseFn, positive_std
from .layers import ConvLSTMCell, conv_stack, mlp


@dataclass
class GlobalLatent:
    """z_g, the feature map it draws, and the Gaussian parameters of p(z_g) and q(z_g | x)."""

    z: Tensor                   # [B, L * step_dim]
    canvas: Tensor              # f [B, C_f, G, G]
    p_mu: Tensor                # [B, L * step_dim] (for GNM-Gaussian: zeros)
    p_std: Tensor               # [B, L * step_dim] (for GNM-Gaussian: ones)
    q_mu: Tensor | None = None  # [B, L * step_dim]; None when generated from the prior
    q_std: Tensor | None = None


class MLPInteraction(nn.Module):
    """Full interaction: MLP on the flattened map [B, H, G, G] -> (mu, std) [B, step_dim]."""

    def __init__(self, cfg: ModelConfig, c_in: int) -> None:
        super().__init__()
        self.std_floor = cfg.std_floor
        self.net = mlp(c_in * cfg.num_cells, cfg.interaction_mlp, 2 * cfg.z_g_step_dim)

    def forward(self, h: Tensor) -> tuple[Tensor, Tensor]:
        mu, raw = self.net(h.flatten(1)).float().chunk(2, dim=-1)
        return mu, positive_std(raw, self.std_floor)


class ConvInteraction(nn.Module):
    """GNM-NoMLP: local 3x3 convs on the map [B, H, G, G] -> (mu, std) [B, step_dim] (a flattened map)."""

    def __init__(self, cfg: ModelConfig, c_in: int) -> None:
        super().__init__()
        self.std_floor = cfg.std_floor
        per_cell = cfg.z_g_step_dim // cfg.num_cells
        self.net = conv_stack(c_in, (cfg.nomlp_hidden, 2 * per_cell), (3, 3), final_norm_act=False)

    def forward(self, h: Tensor) -> tuple[Tensor, Tensor]:
        mu, raw = self.net(h).float().chunk(2, dim=1)
        return mu.flatten(1), positive_std(raw.flatten(1), self.std_floor)


INTERACTIONS: dict[bool, type[nn.Module]] = {True: MLPInteraction, False: ConvInteraction}


class StructDRAW(nn.Module):
    """Autoregressive feature-map drawing (Algorithm 1)."""

    def __init__(self, cfg: ModelConfig, direct_write: bool = False) -> None:
        """direct_write (ConvDRAW; needs the conv interaction): z_l, a map of z_g_step_dim / G^2
        channels per cell, enters ConvLSTM_dec as it is instead of through MLP_dec."""
        super().__init__()
        if direct_write and cfg.use_interaction_mlp:
            raise ValueError("direct_write needs use_interaction_mlp=False (z_l must be a map)")
        self.cfg = cfg
        c_f, hid = cfg.feature_channels, cfg.draw_hidden
        self.dec_in_channels = (cfg.z_g_step_dim if direct_write else cfg.dec_mlp[-1]) // cfg.num_cells
        interaction = INTERACTIONS[cfg.use_interaction_mlp]
        self.lstm_enc = ConvLSTMCell(hid + 2 * c_f, hid, cfg.lstm_kernel)
        self.lstm_dec = ConvLSTMCell(self.dec_in_channels + c_f, hid, cfg.lstm_kernel)
        self.posterior_net = interaction(cfg, hid)
        self.prior_net = interaction(cfg, hid)
        self.dec_mlp = nn.Identity() if direct_write else mlp(
            cfg.z_g_step_dim, cfg.dec_mlp[:-1], cfg.dec_mlp[-1], final_norm_act=True)
        self.canvas_out = nn.Conv2d(hid, c_f, cfg.canvas_kernel, 1, (cfg.canvas_kernel - 1) // 2)

    def infer(self, f_x: Tensor, noise: NoiseFn) -> GlobalLatent:
        """Posterior pass: f_x [B, C_f, G, G] -> z_l ~ q(z_l | z_<l, x) at every step."""
        return self._draw(f_x.shape[0], f_x, noise)

    def generate(self, n: int, noise: NoiseFn) -> GlobalLatent:
        """Prior pass: z_l ~ p(z_l | z_<l) at every step, for n scenes."""
        return self._draw(n, None, noise)

    def _draw(self, n: int, f_x: Tensor | None, noise: NoiseFn) -> GlobalLatent:
        cfg = self.cfg
        hidden = self.canvas_out.weight.new_zeros(n, cfg.draw_hidden, cfg.grid, cfg.grid)
        h_dec, c_dec, enc_state = hidden, hidden, (hidden, hidden)
        canvas = hidden.new_zeros(n, cfg.feature_channels, cfg.grid, cfg.grid)
        prior, posterior, zs = [], [], []
        for _ in range(cfg.draw_steps):
            prior.append(self.prior_net(h_dec))
            if f_x is None:
                mu, std = prior[-1]
            else:
                enc_state = self.lstm_enc(torch.cat([h_dec, f_x, f_x - canvas], dim=1), enc_state)
                mu, std = self.posterior_net(enc_state[0])
                posterior.append((mu, std))
            zs.append(mu + std * noise(mu))
            d = self.dec_mlp(zs[-1]).view(n, self.dec_in_channels, cfg.grid, cfg.grid)
            h_dec, c_dec = self.lstm_dec(torch.cat([d, canvas], dim=1), (h_dec, c_dec))
            canvas = canvas + self.canvas_out(h_dec)
        q_mu, q_std = _concat_steps(posterior) if posterior else (None, None)
        return GlobalLatent(torch.cat(zs, dim=-1), canvas, *_concat_steps(prior), q_mu, q_std)


def _concat_steps(params: list[tuple[Tensor, Tensor]]) -> tuple[Tensor, Tensor]:
    """[(mu_l, std_l)] per step -> (mu, std) each [B, L * step_dim]."""
    mus, stds = zip(*params, strict=True)
    return torch.cat(mus, dim=-1), torch.cat(stds, dim=-1)


class GaussianGlobal(nn.Module):
    """GNM-Gaussian: z_g ~ N(0, I) of the same size as StructDRAW's z_g; f = MLP(z_g) as a G x G map."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.cfg = cfg
        c_f = cfg.feature_channels
        self.posterior_net = mlp(cfg.num_cells * c_f, cfg.interaction_mlp, 2 * cfg.z_g_dim)
        self.decoder = mlp(cfg.z_g_dim, cfg.dec_mlp[:-1], cfg.num_cells * c_f)

    def infer(self, f_x: Tensor, noise: NoiseFn) -> GlobalLatent:
        """Posterior pass: q(z_g | x) = N(MLP(f_x)), then f = MLP(z_g)."""
        mu, raw = self.posterior_net(f_x.flatten(1)).float().chunk(2, dim=-1)
        std = positive_std(raw, self.cfg.std_floor)
        return self._decode(mu + std * noise(mu), mu, std)

    def generate(self, n: int, noise: NoiseFn) -> GlobalLatent:
        """Prior pass: z_g ~ N(0, I), then f = MLP(z_g)."""
        return self._decode(noise(self.decoder[0].weight.new_zeros(n, self.cfg.z_g_dim)))

    def _decode(self, z: Tensor, q_mu: Tensor | None = None, q_std: Tensor | None = None) -> GlobalLatent:
        cfg = self.cfg
        canvas = self.decoder(z).view(z.shape[0], cfg.feature_channels, cfg.grid, cfg.grid)
        return GlobalLatent(z, canvas, torch.zeros_like(z), torch.ones_like(z), q_mu, q_std)


class NoGlobal(nn.Module):
    """SPACE-style: no z_g (an empty [B, 0] latent, so its KL is 0); f is a learned constant map."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.canvas = nn.Parameter(torch.zeros(1, cfg.feature_channels, cfg.grid, cfg.grid))

    def infer(self, f_x: Tensor, noise: NoiseFn) -> GlobalLatent:
        """The same constant map for every image: q(z_s | f_x) alone sees x."""
        return self.generate(f_x.shape[0], noise)

    def generate(self, n: int, noise: NoiseFn) -> GlobalLatent:
        """n copies of the learned map f [n, C_f, G, G] and an empty z_g [n, 0]."""
        empty = self.canvas.new_zeros(n, 0)
        return GlobalLatent(empty, self.canvas.expand(n, -1, -1, -1), empty, empty, empty, empty)


GLOBAL_PRIORS: dict[str, type[nn.Module]] = {"structdraw": StructDRAW, "gaussian": GaussianGlobal, "none": NoGlobal}
