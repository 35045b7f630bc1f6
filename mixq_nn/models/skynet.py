"""SkyNet (DAC-SDC 2019 winner) and SkyNet-k5, facts via shared/REFERENCE.md.

Six bundles of depthwise 3x3 (k5: 5x5) + pointwise 1x1, each followed by BN + ReLU, channels
3-48-96-192-384-512-96, 2x2 max pools after bundles 0-2, and a 1x1 96 -> 36 head.  At 3x160x320:
401,203,200 MACs (k=3).  Thirteen quantised layers.
"""

from __future__ import annotations

from typing import Sequence

from torch import Tensor, nn

from .common import LayerFactory, check_input_shape, conv_bn_relu

NUM_QLAYERS = 13
POOL_FACTOR = 8
CHANNELS = (48, 96, 192, 384, 512, 96)
POOL_AFTER = (0, 1, 2)
HEAD_CHANNELS = 36


class SkyNet(nn.Module):
    """SkyNet detector with depthwise kernel ``k`` (3, or 5 for SkyNet-k5).  Output: (N, 36, H/8, W/8)."""

    def __init__(self, f: LayerFactory, input_shape: Sequence[int] = (3, 160, 320), k: int = 3) -> None:
        super().__init__()
        name = "SkyNetk5" if k == 5 else "SkyNet"
        c, h, w = check_input_shape(name, input_shape, POOL_FACTOR)
        self.input_shape = (c, h, w)
        bundles: list[nn.Module] = []
        ch = c
        for i, out in enumerate(CHANNELS):
            bundles.append(conv_bn_relu(f, ch, ch, k, groups=ch))   # depthwise
            bundles.append(conv_bn_relu(f, ch, out, 1))             # pointwise
            if i in POOL_AFTER:
                bundles.append(nn.MaxPool2d(2, 2))
            ch = out
        self.bundles = nn.Sequential(*bundles)
        self.head = f.conv(ch, HEAD_CHANNELS, 1, bias=True)
        f.finish()

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.bundles(x))
