"""VGG-tiny (DeepBurning-MixQ's CIFAR-10 network, via shared/REFERENCE.md).

3x3 convs 64, 64, pool, 128, 128, pool, 256, 256, pool, then one linear layer 4096 -> 10 that stays
w8a8.  At 3x32x32: 152,805,376 MACs per frame.  Six searchable quantised layers (the convs).
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import Tensor, nn

from .common import LayerFactory, check_channels, check_input_shape, conv_bn_relu

NUM_QLAYERS = 6
POOL_FACTOR = 8
#: The classifier's bits: fixed, never searched (as in the published preset).
CLASSIFIER_BITS = (8, 8)
CHANNELS = (64, 64, "M", 128, 128, "M", 256, 256, "M")


class VGGTiny(nn.Module):
    """VGG-tiny for (C, H, W) inputs with H, W multiples of 8 (published: 3x32x32, 10 classes)."""

    def __init__(self, f: LayerFactory, input_shape: Sequence[int] = (3, 32, 32), num_classes: int = 10,
                 channels: Sequence[int] | None = None) -> None:
        super().__init__()
        c, h, w = check_input_shape("VGGtiny", input_shape, POOL_FACTOR)
        widths = list(check_channels("VGGtiny", channels, [s for s in CHANNELS if isinstance(s, int)]))
        if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 1:
            raise ValueError(f"VGGtiny: num_classes must be a positive int, got {num_classes!r}")
        self.input_shape = (c, h, w)
        layers: list[nn.Module] = []
        ch = c
        for spec in CHANNELS:
            if isinstance(spec, str):       # "M"
                layers.append(nn.MaxPool2d(2, 2))
            else:
                out = widths.pop(0)
                layers.append(conv_bn_relu(f, ch, out, 3))
                ch = out
        self.features = nn.Sequential(*layers)
        self.classifier = f.linear(ch * (h // POOL_FACTOR) * (w // POOL_FACTOR), num_classes,
                                   fixed_bits=CLASSIFIER_BITS)
        f.finish()

    def forward(self, x: Tensor) -> Tensor:
        return self.classifier(torch.flatten(self.features(x), 1))
