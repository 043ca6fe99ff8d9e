"""The two small CNNs of the Arrow Room recogniser.

DetectNet (CenterNet-like): image float [B, 3, 128, 128] -> maps float [B, 5, 32, 32] at stride 4:
  channel 0 object-centre heatmap logit, 1-2 sub-cell offset of the centre (cells), 3-4 box width and
  height (in units of SIZE_UNIT pixels).
ObjectNet: crop float [B, 3, CROP, CROP] around one object -> dict of
  "shape" [B, S], "color" [B, C], "material" [B, M] logits; "centre" [B, 2] the projected 3D centre
  relative to the crop (crop-side units, 0 = crop centre); "direction" [B, 2] the drawn heading (image x
  right, y down; meaningful for arrows).
Inputs are images in [0, 1]; both nets subtract 0.5 first.
"""

from __future__ import annotations

import torch
from torch import nn

STRIDE = 4  # DetectNet output cell in pixels
SIZE_UNIT = 32.0  # box sides are regressed in these units
CROP = 48  # ObjectNet crop side in pixels


def conv(cin: int, cout: int, stride: int = 1, dilation: int = 1) -> nn.Sequential:
    """3x3 convolution, batch norm, ReLU."""
    return nn.Sequential(nn.Conv2d(cin, cout, 3, stride, padding=dilation, dilation=dilation, bias=False),
                         nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


class DetectNet(nn.Module):
    """Image float [B, 3, H, W] in [0, 1] -> float [B, 5, H/4, W/4] (heatmap logit, offset xy, size wh)."""

    def __init__(self, width: int = 32) -> None:
        super().__init__()
        self.fine = nn.Sequential(conv(3, 16, 2), conv(16, 24, 2), conv(24, width))
        self.coarse = nn.Sequential(conv(width, 48, 2), conv(48, 48, dilation=2), conv(48, 48, dilation=4), nn.Conv2d(48, width, 1))
        self.head = nn.Sequential(conv(width, width), nn.Conv2d(width, 5, 1))
        nn.init.constant_(self.head[-1].bias[:1], -2.2)  # start with a low centre probability (CenterNet)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        fine = self.fine(images - 0.5)
        coarse = nn.functional.interpolate(self.coarse(fine), size=fine.shape[-2:], mode="bilinear", align_corners=False)
        return self.head(fine + coarse)


class ObjectNet(nn.Module):
    """Crops float [B, 3, CROP, CROP] in [0, 1] -> per-object logits and image-geometry regressions."""

    def __init__(self, shapes: int, colors: int, materials: int) -> None:
        super().__init__()
        self.sizes = {"shape": shapes, "color": colors, "material": materials, "centre": 2, "direction": 2}
        self.features = nn.Sequential(
            conv(3, 24), nn.MaxPool2d(2), conv(24, 32), conv(32, 32), nn.MaxPool2d(2),
            conv(32, 64), conv(64, 64), nn.MaxPool2d(2), nn.Flatten(),
            nn.Linear(64 * (CROP // 8) ** 2, 128), nn.ReLU(inplace=True), nn.Dropout(0.2),
        )
        self.out = nn.Linear(128, sum(self.sizes.values()))

    def forward(self, crops: torch.Tensor) -> dict[str, torch.Tensor]:
        return dict(zip(self.sizes, self.out(self.features(crops - 0.5)).split(list(self.sizes.values()), dim=1)))
