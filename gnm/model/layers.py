"""Building blocks reused by every GNM module: conv / sub-pixel conv stacks, MLPs, a ConvLSTM cell.

Normalisation follows the paper (Table 9: "followed by a CELU activation and layer
normalisation"): conv maps use GroupNorm(1, C) (layer norm over C, H, W), vectors LayerNorm.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn


class _CELUFunction(torch.autograd.Function):
    """CELU (alpha = 1) as max(exp(min(x, 0)) - 1, x) (exact: e^x - 1 >= x), saving only the output."""

    @staticmethod
    def forward(ctx: torch.autograd.function.FunctionCtx, x: Tensor) -> Tensor:
        y = x.clamp(max=0.0).exp_().sub_(1.0)
        torch.maximum(y, x, out=y)
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx: torch.autograd.function.FunctionCtx, grad: Tensor) -> Tensor:
        (y,) = ctx.saved_tensors
        # dy/dx = 1 for x > 0 and exp(x) = y + 1 for x <= 0, i.e. min(y, 0) + 1
        return y.clamp(max=0.0).add_(1.0).mul_(grad)


class CELU(nn.Module):
    """CELU with alpha = 1. On CPU a vectorised exp-based version: ATen's ELU kernel evaluates expm1
    element by element and was 3-4x slower than exp here, which made activations a third of a
    training step. Other devices use F.celu."""

    def forward(self, x: Tensor) -> Tensor:
        return _CELUFunction.apply(x) if x.device.type == "cpu" else F.celu(x)


def conv_stack(
    c_in: int,
    channels: Sequence[int],
    kernels: Sequence[int],
    strides: Sequence[int] | None = None,
    upscales: Sequence[int] | None = None,
    final_norm_act: bool = True,
    act: Callable[[], nn.Module] = CELU,
) -> nn.Sequential:
    """Stack of Conv(k, stride, pad (k-1)//2) [-> PixelShuffle(u)] -> act -> GroupNorm(1, C) layers
    (act: CELU, or e.g. nn.ReLU for the baselines' image decoders).

    A layer with upscale u > 1 is a sub-pixel convolution: the conv emits C*u^2 channels and
    PixelShuffle turns them into C channels at u times the resolution. Maps [B, c_in, H, W] to
    [B, channels[-1], H * prod(u) / prod(s), ...]. `final_norm_act=False` leaves the last layer a
    plain (sub-pixel) conv, for output layers.
    """
    n = len(channels)
    strides = strides or (1,) * n
    upscales = upscales or (1,) * n
    layers: list[nn.Module] = []
    for i, (c_out, k, s, u) in enumerate(zip(channels, kernels, strides, upscales, strict=True)):
        layers.append(nn.Conv2d(c_in, c_out * u * u, k, s, (k - 1) // 2))
        if u > 1:
            layers.append(nn.PixelShuffle(u))
        if final_norm_act or i < n - 1:
            layers += [act(), nn.GroupNorm(1, c_out)]
        c_in = c_out
    return nn.Sequential(*layers)


def mlp(d_in: int, hidden: Sequence[int], d_out: int, final_norm_act: bool = False) -> nn.Sequential:
    """Linear -> CELU -> LayerNorm for each hidden size, then Linear(d_out) [-> CELU -> LayerNorm]."""
    sizes = [*hidden, d_out]
    layers: list[nn.Module] = []
    for i, size in enumerate(sizes):
        layers.append(nn.Linear(d_in, size))
        if final_norm_act or i < len(sizes) - 1:
            layers += [CELU(), nn.LayerNorm(size)]
        d_in = size
    return nn.Sequential(*layers)


class ConvLSTMCell(nn.Module):
    """Convolutional LSTM cell: one conv over CAT[input, h] gives the four gates."""

    def __init__(self, c_in: int, hidden: int, kernel: int) -> None:
        super().__init__()
        self.hidden = hidden
        self.gates = nn.Conv2d(c_in + hidden, 4 * hidden, kernel, 1, (kernel - 1) // 2)

    def forward(self, x: Tensor, state: tuple[Tensor, Tensor]) -> tuple[Tensor, Tensor]:
        """x [B, c_in, G, G], state (h, c) each [B, hidden, G, G] -> new (h, c)."""
        h, c = state
        i, f, o, g = self.gates(torch.cat([x, h], dim=1)).chunk(4, dim=1)
        c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
        return torch.sigmoid(o) * torch.tanh(c), c
