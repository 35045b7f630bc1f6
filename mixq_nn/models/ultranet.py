"""UltraNet (DAC-SDC 2020 winner) and UltraNet-Bypass (SJTU 2021), facts via shared/REFERENCE.md.

UltraNet at 3x160x320: 3x3 convs 16, 32, 64, 64 each followed by a 2x2 max pool, four 64 -> 64 3x3
convs at 10x20 and a 1x1 64 -> 36 head (6 anchors x (x, y, w, h, obj, cls)): 199,526,400 MACs.

UltraNet-Bypass: the 20x40x64 output of the 4th conv (before its pool) is reorganised (space-to-depth
x2 -> 256 ch at 10x20) and concatenated (bypass first) with the 7th conv's 64-ch output; the 8th conv
is 320 -> 64.  Nine quantised layers in both.
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import Tensor, nn

from ..layers import Reorg
from .common import LayerFactory, check_input_shape, conv_bn_relu

NUM_QLAYERS = 9
POOL_FACTOR = 16
HEAD_CHANNELS = 36


class UltraNet(nn.Module):
    """UltraNet detector; ``bypass=True`` gives UltraNet-Bypass.  Output: (N, 36, H/16, W/16)."""

    def __init__(self, f: LayerFactory, input_shape: Sequence[int] = (3, 160, 320), bypass: bool = False) -> None:
        super().__init__()
        name = "UltraNetBypass" if bypass else "UltraNet"
        c, h, w = check_input_shape(name, input_shape, POOL_FACTOR)
        self.input_shape = (c, h, w)
        self.bypass = bypass
        self.conv0 = conv_bn_relu(f, c, 16, 3)
        self.pool0 = nn.MaxPool2d(2, 2)
        self.conv1 = conv_bn_relu(f, 16, 32, 3)
        self.pool1 = nn.MaxPool2d(2, 2)
        self.conv2 = conv_bn_relu(f, 32, 64, 3)
        self.pool2 = nn.MaxPool2d(2, 2)
        self.conv3 = conv_bn_relu(f, 64, 64, 3)
        self.pool3 = nn.MaxPool2d(2, 2)
        self.conv4 = conv_bn_relu(f, 64, 64, 3)
        self.conv5 = conv_bn_relu(f, 64, 64, 3)
        self.conv6 = conv_bn_relu(f, 64, 64, 3)
        if bypass:
            self.reorg = Reorg()
        self.conv7 = conv_bn_relu(f, 64 + (4 * 64 if bypass else 0), 64, 3)
        self.head = f.conv(64, HEAD_CHANNELS, 1, bias=True)
        f.finish()

    def forward(self, x: Tensor) -> Tensor:
        x = self.pool0(self.conv0(x))
        x = self.pool1(self.conv1(x))
        x = self.pool2(self.conv2(x))
        x = self.conv3(x)
        if self.bypass:
            skip = self.reorg(x)
        x = self.pool3(x)
        x = self.conv6(self.conv5(self.conv4(x)))
        if self.bypass:
            x = torch.cat([skip, x], dim=1)
        return self.head(self.conv7(x))
