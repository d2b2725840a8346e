"""RRDBNet, the generator of ESRGAN and Real-ESRGAN, for user-supplied weights.

The architecture is written out here (it is short) so that the widely used Real-ESRGAN and
ESRGAN weight files load without the `spandrel` package, whose torchvision dependency has no
CPU build on the package index this project installs from (PyPI's torchvision wheels fail to
import against the CPU torch we pin: "operator torchvision::nms does not exist").
Hyper-parameters (features, blocks, growth channels, scale) are read from the state dict's
shapes, so x2 and x4 variants of any width load. Layer names follow the original code
(``conv_first``, ``body.N.rdbK.convM``, ``conv_body``, ``conv_up1``, ``conv_up2``,
``conv_hr``, ``conv_last``).
"""

from __future__ import annotations

import re
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F


class _DenseBlock(nn.Module):
    def __init__(self, feat: int, grow: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(feat, grow, 3, 1, 1)
        self.conv2 = nn.Conv2d(feat + grow, grow, 3, 1, 1)
        self.conv3 = nn.Conv2d(feat + 2 * grow, grow, 3, 1, 1)
        self.conv4 = nn.Conv2d(feat + 3 * grow, grow, 3, 1, 1)
        self.conv5 = nn.Conv2d(feat + 4 * grow, feat, 3, 1, 1)
        self.act = nn.LeakyReLU(0.2, inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x1 = self.act(self.conv1(x))
        x2 = self.act(self.conv2(torch.cat((x, x1), 1)))
        x3 = self.act(self.conv3(torch.cat((x, x1, x2), 1)))
        x4 = self.act(self.conv4(torch.cat((x, x1, x2, x3), 1)))
        x5 = self.conv5(torch.cat((x, x1, x2, x3, x4), 1))
        out: torch.Tensor = x5 * 0.2 + x
        return out


class _RRDB(nn.Module):
    def __init__(self, feat: int, grow: int) -> None:
        super().__init__()
        self.rdb1 = _DenseBlock(feat, grow)
        self.rdb2 = _DenseBlock(feat, grow)
        self.rdb3 = _DenseBlock(feat, grow)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.rdb3(self.rdb2(self.rdb1(x))) * 0.2 + x
        return out


class RRDBNet(nn.Module):
    """ESRGAN's generator (x4: two nearest-neighbour x2 upsamplings; x2: one)."""

    def __init__(self, *, channels: int, feat: int, blocks: int, grow: int, scale: int) -> None:
        super().__init__()
        self.scale = scale
        self.conv_first = nn.Conv2d(channels, feat, 3, 1, 1)
        self.body = nn.Sequential(*[_RRDB(feat, grow) for _ in range(blocks)])
        self.conv_body = nn.Conv2d(feat, feat, 3, 1, 1)
        self.conv_up1 = nn.Conv2d(feat, feat, 3, 1, 1)
        if scale == 4:
            self.conv_up2 = nn.Conv2d(feat, feat, 3, 1, 1)
        self.conv_hr = nn.Conv2d(feat, feat, 3, 1, 1)
        self.conv_last = nn.Conv2d(feat, channels, 3, 1, 1)
        self.act = nn.LeakyReLU(0.2, inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        feat = self.conv_first(x)
        feat = feat + self.conv_body(self.body(feat))
        feat = self.act(self.conv_up1(F.interpolate(feat, scale_factor=2, mode="nearest")))
        if self.scale == 4:
            feat = self.act(self.conv_up2(F.interpolate(feat, scale_factor=2, mode="nearest")))
        out: torch.Tensor = self.conv_last(self.act(self.conv_hr(feat)))
        return out


def from_state_dict(state: dict[str, Any]) -> RRDBNet:
    """Build an RRDBNet whose shape matches ``state`` and load it (strict)."""
    for key in ("params_ema", "params"):  # Real-ESRGAN release files nest the dict
        if isinstance(state.get(key), dict):
            state = state[key]
            break
    first = state["conv_first.weight"]
    feat, channels = int(first.shape[0]), int(first.shape[1])
    if channels not in (1, 3):
        # Real-ESRGAN's x2 and x1 releases unshuffle pixels first (12 or 48 input channels).
        raise ValueError(f"{channels} input channels (pixel-unshuffle variants are not supported)")
    grow = int(state["body.0.rdb1.conv1.weight"].shape[0])
    blocks = 1 + max(int(m.group(1)) for k in state if (m := re.match(r"body\.(\d+)\.", k)))
    scale = 4 if "conv_up2.weight" in state else 2
    model = RRDBNet(channels=channels, feat=feat, blocks=blocks, grow=grow, scale=scale)
    model.load_state_dict(state)
    model.eval()
    return model
