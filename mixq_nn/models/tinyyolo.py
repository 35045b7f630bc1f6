"""The reduced Tiny-YOLOv3 of Tiny-YOLO-LSQ (Wang et al., DAC-2020 LPODC; its ``yolov3-tiny_lsq.cfg``),
facts via shared/REFERENCE.md and that configuration.

At 3x416x416: 3x3 convs 16, 32, 64, 128, 128, each followed by a 2x2 max pool; 3x3 128->192; 1x1
192->256; 1x1 256->128; concat (route ``-1, 9``: the 1x1 conv's output first, then the pooled
128-channel map of the 5th conv), nearest upsample x2; 3x3 256->192; 1x1 192->51 head (3 anchors x
(5 + 12 classes)) at H/16 x W/16: 1,129,406,720 MACs.  Ten quantised layers.

The route order is checked against the published cfg and code (docs/references.md): the concat joins
the pooled map at H/32 and the upsample follows it, unlike stock yolov3-tiny (upsample, then the
unpooled map).  Published quantisation: LSQ, 3-bit weights and activations, the 8-bit image
unquantised into the first layer and 9-bit activations into the head.  mixq's activation widths stop
at 8 bits (``mixq_hw.packing.bits.ACT_BITS`` = 1..8, the conv engine's), so the preset gives the head
8-bit input activations: a stated deviation in a layer of 0.6 % of the MACs (docs/references.md).  The cfg says leaky everywhere but the published code builds ReLU only:
ReLU by default, ``leaky=True`` for LeakyReLU (slope 1/8; the 3x3 256->192 conv stays ReLU as in the cfg).
"""

from __future__ import annotations

from typing import Sequence

from torch import Tensor, nn

from ..ops_layers import Concat, LeakyReLU, Upsample
from .common import LayerFactory, check_channels, check_input_shape

NUM_QLAYERS = 10
POOL_FACTOR = 32
BACKBONE = (16, 32, 64, 128, 128)
HEAD_CHANNELS = 51
#: The ``channels`` option's default: output widths of the five backbone convs, then the 3x3 192, 1x1 256,
#: 1x1 128 and 3x3 192 convs (the head's 51 stay).
WIDTHS = BACKBONE + (192, 256, 128, 192)
LEAKY_SHIFT = 3
#: What the published work uses for the head's input activations, and what mixq uses instead.
PUBLISHED_HEAD_ACT_BITS = 9
HEAD_ACT_BITS = 8


class TinyYOLOv3(nn.Module):
    """Reduced Tiny-YOLOv3 detector.  Output: (N, 51, H/16, W/16)."""

    def __init__(self, f: LayerFactory, input_shape: Sequence[int] = (3, 416, 416), leaky: bool = False,
                 channels: Sequence[int] | None = None) -> None:
        super().__init__()
        c, h, w = check_input_shape("TinyYOLOv3", input_shape, POOL_FACTOR)
        widths = check_channels("TinyYOLOv3", channels, WIDTHS)
        backbone_widths, (c5, c6, c7, c8) = widths[:len(BACKBONE)], widths[len(BACKBONE):]
        self.input_shape = (c, h, w)
        self.leaky = bool(leaky)

        def block(in_ch: int, out_ch: int, k: int, signed_in: bool, relu: bool = False) -> nn.Sequential:
            act = LeakyReLU(LEAKY_SHIFT) if leaky and not relu else nn.ReLU()
            return nn.Sequential(f.conv(in_ch, out_ch, k, signed_input=signed_in), nn.BatchNorm2d(out_ch), act)

        backbone: list[nn.Module] = []
        ch = c
        for i, out in enumerate(backbone_widths):
            backbone += [block(ch, out, 3, leaky and i > 0), nn.MaxPool2d(2, 2)]
            ch = out
        self.backbone = nn.Sequential(*backbone)
        self.conv5 = block(ch, c5, 3, leaky)
        self.conv6 = block(c5, c6, 1, leaky)
        self.conv7 = block(c6, c7, 1, leaky)
        self.concat = Concat()
        self.upsample = Upsample()
        self.conv8 = block(c7 + ch, c8, 3, leaky, relu=True)
        self.head = f.conv(c8, HEAD_CHANNELS, 1, bias=True)
        f.finish()

    def forward(self, x: Tensor) -> Tensor:
        skip = self.backbone(x)
        y = self.conv7(self.conv6(self.conv5(skip)))
        return self.head(self.conv8(self.upsample(self.concat(y, skip))))

