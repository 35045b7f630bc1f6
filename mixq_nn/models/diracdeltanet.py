"""DiracDeltaNet (Yang et al., "Synetgy", FPGA 2019), facts via shared/REFERENCE.md and the authors'
published model definition.

ShuffleNet V2's macro-architecture with every 3x3 conv replaced by a shift and 1x1 convs.  At
3x224x224: stem 1x1 3->32 + BN + ReLU, 2x2 max pool (stride 2, pad 1), shift, 1x1 32->64 + BN + ReLU,
2x2 max pool (stride 2, pad 1), shift; three stages of 4, 8 and 4 blocks at 116, 232 and 464 channels;
1x1 464->1024 + BN + ReLU, global average pool (7x7), FC 1024->1000.

A block with ``out`` channels works on two branches of ``out / 2`` channels each:

- the first block of a stage downsamples: stage 1's splits its input in half (branch 1 takes the first
  half, branch 2 the second), stages 2 and 3 send the whole input to both branches; branch 1 is
  2x2 max pool, 1x1 conv + BN + ReLU; branch 2 is 1x1 conv to ``out / 2 * expansion`` + BN + ReLU,
  2x2 max pool, shift, 1x1 conv to ``out / 2`` + BN + ReLU;
- the other blocks split the input in half; branch 1 passes through, branch 2 as above without the pool;
- the branches are concatenated (branch 1 first), then the shift-based channel shuffle moves the
  last quarter of the channels to the front.

``expansion`` is 2 (REFERENCE.md).  The width-scaled variant ``DiracDeltaNetSmall`` keeps the depth
(4, 8, 4 blocks) at stem 16/32, stages 32/64/128, head 256, on 1x32x32 digits.
"""

from __future__ import annotations

from typing import Sequence, TypedDict

from torch import Tensor, nn

from ..ops_layers import ChannelShuffle, Concat, QGlobalAvgPool, Shift, Split
from .common import LayerFactory, check_input_shape, conv_bn_relu

POOL_FACTOR = 32
BLOCKS = (4, 8, 4)
EXPANSION = 2
#: Bits of the global pool's input codes (fixed, not searched).
POOL_BITS = 8


class Widths(TypedDict):
    """A width preset: :class:`DiracDeltaNet`'s keyword arguments ``stem``, ``stages``, ``head``, ``num_classes``."""

    stem: tuple[int, int]
    stages: tuple[int, int, int]
    head: int
    num_classes: int


PUBLISHED: Widths = {"stem": (32, 64), "stages": (116, 232, 464), "head": 1024, "num_classes": 1000}
SMALL: Widths = {"stem": (16, 32), "stages": (32, 64, 128), "head": 256, "num_classes": 10}
#: The build options that set the widths (``mixq_nn.models.build(..., stages=(8, 16, 16))``).
WIDTH_OPTS = ("stem", "stages", "head", "num_classes")


def num_qlayers(blocks: Sequence[int] = BLOCKS) -> int:
    """Quantised layers: 2 stem convs, 3 per downsampling block, 2 per other block, head conv, FC."""
    return 2 + sum(3 + 2 * (n - 1) for n in blocks) + 2


NUM_QLAYERS = num_qlayers()


class DiracDeltaBlock(nn.Module):
    """One block (see the module docstring); ``first_stage``: the downsampling block splits its input."""

    def __init__(self, f: LayerFactory, in_ch: int, out_ch: int, *, downsample: bool, first_stage: bool) -> None:
        super().__init__()
        if out_ch % 4:
            raise ValueError(f"DiracDeltaNet: block width {out_ch} must be a multiple of 4 (split and shuffle)")
        half = out_ch // 2
        self.downsample = downsample
        self.split_input = not downsample or first_stage
        if self.split_input and in_ch % 2:
            raise ValueError(f"DiracDeltaNet: block input width {in_ch} must be even (channel split)")
        branch_in = in_ch // 2 if self.split_input else in_ch
        if self.split_input:
            self.split = Split((in_ch // 2, in_ch - in_ch // 2))
        if downsample:
            self.pool1 = nn.MaxPool2d(2, 2)
            self.branch1 = conv_bn_relu(f, branch_in, half, 1)
        elif branch_in != half:
            raise ValueError(f"DiracDeltaNet: a non-downsampling block needs in == out, got {in_ch} -> {out_ch}")
        mid = half * EXPANSION
        self.conv1 = conv_bn_relu(f, branch_in, mid, 1)
        self.pool2 = nn.MaxPool2d(2, 2) if downsample else nn.Identity()
        self.shift = Shift()
        self.conv2 = conv_bn_relu(f, mid, half, 1)
        self.concat = Concat()
        self.shuffle = ChannelShuffle(out_ch)

    def forward(self, x: Tensor) -> Tensor:
        x1, x2 = self.split(x) if self.split_input else (x, x)
        if self.downsample:
            x1 = self.branch1(self.pool1(x1))
        x2 = self.conv2(self.shift(self.pool2(self.conv1(x2))))
        return self.shuffle(self.concat(x1, x2))


class DiracDeltaNet(nn.Module):
    """DiracDeltaNet for (C, H, W) inputs with H, W multiples of 32 (published: 3x224x224, 1000 classes)."""

    def __init__(self, f: LayerFactory, input_shape: Sequence[int] = (3, 224, 224), *,
                 stem: Sequence[int] = PUBLISHED["stem"], stages: Sequence[int] = PUBLISHED["stages"],
                 head: int = PUBLISHED["head"], num_classes: int = PUBLISHED["num_classes"],
                 name: str = "DiracDeltaNet") -> None:
        super().__init__()
        c, h, w = check_input_shape(name, input_shape, POOL_FACTOR)
        self.input_shape = (c, h, w)
        self.stem = nn.Sequential(
            conv_bn_relu(f, c, stem[0], 1), nn.MaxPool2d(2, 2, padding=1), Shift(),
            conv_bn_relu(f, stem[0], stem[1], 1), nn.MaxPool2d(2, 2, padding=1), Shift())
        blocks: list[nn.Module] = []
        ch = stem[1]
        for s, (count, out) in enumerate(zip(BLOCKS, stages)):
            for b in range(count):
                blocks.append(DiracDeltaBlock(f, ch, out, downsample=b == 0, first_stage=s == 0))
                ch = out
        self.blocks = nn.Sequential(*blocks)
        self.head = conv_bn_relu(f, ch, head, 1)
        self.pool = QGlobalAvgPool(f.aux_bits(POOL_BITS), act_mode="lsq" if f.act_mode == "pact" else f.act_mode)
        self.fc = f.linear(head, num_classes)
        f.finish()

    def forward(self, x: Tensor) -> Tensor:
        return self.fc(self.pool(self.head(self.blocks(self.stem(x)))))
