"""ResNet-8 of MLPerf Tiny's image classification benchmark (Banbury et al., 2021), facts via
shared/REFERENCE.md.

3x32x32: 3x3 conv 16 + BN + ReLU, then three stages of one residual block at 16, 32 and 64 channels
(the 2nd and 3rd downsample with a stride-2 3x3 conv and a stride-2 1x1 shortcut conv), global
average pool, FC 64 -> 10: 12,501,632 MACs per frame.  A block is conv-BN-act, conv-BN, a quantised
residual add (:class:`~mixq_nn.ops_layers.QAdd`, ``ADD_BITS`` signed codes) and the activation.
``leaky=True`` replaces every ReLU by a LeakyReLU of slope 1/8, so every layer after one takes signed
codes.  Ten quantised layers.
"""

from __future__ import annotations

from typing import Sequence

from torch import Tensor, nn

from ..ops_layers import LeakyReLU, QAdd, QGlobalAvgPool
from .common import LayerFactory, check_channels, check_input_shape

NUM_QLAYERS = 10
POOL_FACTOR = 4
STAGES = (16, 32, 64)
#: Bits of the residual add's branches and sum, and of the global pool's input codes (fixed, not searched).
ADD_BITS = 8
POOL_BITS = 8
LEAKY_SHIFT = 3
#: The ``channels`` option's default: stem, then per block conv1, conv2 (and the shortcut conv).
WIDTHS = (16, 16, 16, 32, 32, 32, 64, 64, 64)


def _act(leaky: bool) -> nn.Module:
    return LeakyReLU(LEAKY_SHIFT) if leaky else nn.ReLU()


class ResidualBlock(nn.Module):
    """conv3x3(stride) - BN - act - conv3x3 - BN, plus the input (or its 1x1 stride conv), add, act."""

    def __init__(self, f: LayerFactory, in_ch: int, out_ch: int, stride: int, leaky: bool, mid_ch: int | None = None) -> None:
        super().__init__()
        mid_ch = out_ch if mid_ch is None else mid_ch
        self.conv1 = f.conv(in_ch, mid_ch, 3, stride=stride, signed_input=leaky)
        self.bn1 = nn.BatchNorm2d(mid_ch)
        self.act1 = _act(leaky)
        self.conv2 = f.conv(mid_ch, out_ch, 3, signed_input=leaky)
        self.bn2 = nn.BatchNorm2d(out_ch)
        self.shortcut = (f.conv(in_ch, out_ch, 1, stride=stride, signed_input=leaky)
                         if stride != 1 else None)
        if self.shortcut is None and in_ch != out_ch:
            raise ValueError(f"ResNet8: an identity shortcut needs equal widths, got {in_ch} -> {out_ch}")
        # branch 1 (conv + BN) is signed; the shortcut is signed after a LeakyReLU or a conv
        self.add = QAdd(f.aux_bits(ADD_BITS), (True, leaky or self.shortcut is not None), act_mode=_aux_mode(f))
        self.act2 = _act(leaky)

    def forward(self, x: Tensor) -> Tensor:
        y = self.bn2(self.conv2(self.act1(self.bn1(self.conv1(x)))))
        skip = x if self.shortcut is None else self.shortcut(x)
        return self.act2(self.add(y, skip))


def _aux_mode(f: LayerFactory) -> str:
    """The add/pool quantisers' mode: the model's, except PACT (unsigned only) which becomes LSQ."""
    return "lsq" if f.act_mode == "pact" else f.act_mode


class ResNet8(nn.Module):
    """ResNet-8 for (C, H, W) inputs with H, W multiples of 4 (published: 3x32x32, 10 classes)."""

    def __init__(self, f: LayerFactory, input_shape: Sequence[int] = (3, 32, 32), num_classes: int = 10,
                 leaky: bool = False, channels: Sequence[int] | None = None) -> None:
        super().__init__()
        name = "ResNet8Leaky" if leaky else "ResNet8"
        c, h, w = check_input_shape(name, input_shape, POOL_FACTOR)
        widths = check_channels(name, channels, WIDTHS)
        if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 1:
            raise ValueError(f"{name}: num_classes must be a positive int, got {num_classes!r}")
        self.input_shape = (c, h, w)
        self.leaky = bool(leaky)
        stem, (mid1, out1), (mid2, out2, short2), (mid3, out3, short3) = (
            widths[0], widths[1:3], widths[3:6], widths[6:9])
        if out1 != stem or out2 != short2 or out3 != short3:
            raise ValueError(f"{name}: channels {list(widths)}: a residual add needs equal widths on both "
                             "branches (stem = stage 1's conv2, conv2 = shortcut in stages 2 and 3)")
        self.stem = nn.Sequential(f.conv(c, stem, 3), nn.BatchNorm2d(stem), _act(leaky))
        blocks = []
        ch = stem
        for i, (mid, out) in enumerate(((mid1, out1), (mid2, out2), (mid3, out3))):
            blocks.append(ResidualBlock(f, ch, out, 1 if i == 0 else 2, leaky, mid))
            ch = out
        self.blocks = nn.Sequential(*blocks)
        self.pool = QGlobalAvgPool(f.aux_bits(POOL_BITS), signed=leaky, act_mode=_aux_mode(f))
        self.fc = f.linear(ch, num_classes, signed_input=leaky)
        f.finish()

    def forward(self, x: Tensor) -> Tensor:
        return self.fc(self.pool(self.blocks(self.stem(x))))
