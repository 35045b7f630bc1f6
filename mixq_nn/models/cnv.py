"""FINN's CNV (BNN-PYNQ, Umuroglu et al., FPGA 2017; Brevitas ``CNV``), facts via shared/REFERENCE.md.

3x32x32: unpadded 3x3 convs 64, 64, 2x2 max pool, 128, 128, pool, 256, 256, then fully connected
256 -> 512 -> 512 -> 10: 59,461,376 MACs per frame.  Nine quantised layers; presets W2A2, W4A4 and
W8A8 (first layer: 8-bit input pixels).  Every conv and FC but the last is followed by BN + ReLU.
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import Tensor, nn

from .common import LayerFactory, check_channels, check_input_shape

NUM_QLAYERS = 9
#: H and W must be multiples of 4 and at least 32 (each unpadded conv takes 2, each pool halves).
POOL_FACTOR = 4
MIN_SIZE = 32
CONV_CHANNELS = (64, 64, "M", 128, 128, "M", 256, 256)
FC_FEATURES = (512, 512)
#: The ``channels`` option's default: output widths of the six convs and the two hidden FC layers.
WIDTHS = tuple(c for c in CONV_CHANNELS if isinstance(c, int)) + FC_FEATURES
#: (bitw, bita) presets by name.
PRESETS: dict[str, tuple[tuple[int, ...], tuple[int, ...]]] = {
    f"w{b}a{b}": ((b,) * NUM_QLAYERS, (8,) + (b,) * (NUM_QLAYERS - 1)) for b in (2, 4, 8)}


def _side(size: int) -> int:
    """Output side of the conv stack for an input side ``size``."""
    for spec in CONV_CHANNELS:
        size = size // 2 if spec == "M" else size - 2
    return size


class CNV(nn.Module):
    """CNV for (C, H, W) inputs, H and W multiples of 4 and >= 32 (published: 3x32x32, 10 classes)."""

    def __init__(self, f: LayerFactory, input_shape: Sequence[int] = (3, 32, 32), num_classes: int = 10,
                 channels: Sequence[int] | None = None) -> None:
        super().__init__()
        c, h, w = check_input_shape("CNV", input_shape, POOL_FACTOR)
        widths = list(check_channels("CNV", channels, WIDTHS))
        if h < MIN_SIZE or w < MIN_SIZE:
            raise ValueError(f"CNV: input height and width must be at least {MIN_SIZE} (six unpadded convs "
                             f"and two pools), got input_shape {(c, h, w)}")
        if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 1:
            raise ValueError(f"CNV: num_classes must be a positive int, got {num_classes!r}")
        self.input_shape = (c, h, w)
        layers: list[nn.Module] = []
        ch = c
        for spec in CONV_CHANNELS:
            if spec == "M":
                layers.append(nn.MaxPool2d(2, 2))
            else:
                out = widths.pop(0)
                layers.append(nn.Sequential(f.conv(ch, out, 3, padding=0), nn.BatchNorm2d(out), nn.ReLU()))
                ch = out
        self.features = nn.Sequential(*layers)
        fc: list[nn.Module] = []
        width = ch * _side(h) * _side(w)
        for out in widths:
            fc.append(nn.Sequential(f.linear(width, out, bias=False), nn.BatchNorm1d(out), nn.ReLU()))
            width = out
        fc.append(f.linear(width, num_classes))
        self.classifier = nn.Sequential(*fc)
        f.finish()

    def forward(self, x: Tensor) -> Tensor:
        return self.classifier(torch.flatten(self.features(x), 1))
