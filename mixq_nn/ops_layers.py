"""The PyTorch half of the seed networks' operators: shift, channel shuffle / split / concat, nearest
upsample, power-of-two LeakyReLU, the quantised residual add and average pools.

Every module is a leaf of :func:`mixq_nn.layers.trace` (export sees each as one op).  Conventions the
integer Graph and the hardware share:

- :class:`Shift`: channel ``c`` takes ``out[c, y, x] = in[c, y + dy, x + dx]`` (zero outside the
  image) with ``(dy, dx) = SHIFT_OFFSETS[c % 5]`` = up, left, centre, right, down; "up" means the
  pixel comes from the row above (DiracDeltaNet, Yang et al., Synetgy, FPGA 2019).
- :class:`ChannelShuffle`: the last quarter of the channels moves to the front (DiracDeltaNet's
  shift-based shuffle).
- :class:`QAdd`: each branch is quantised to its own codes (signed where it can be negative), the
  sum is re-quantised to signed (or unsigned) codes of ``out_bits``.
- :class:`QAvgPool2d` / :class:`QGlobalAvgPool`: the input is quantised to codes, the codes are
  averaged; the consumer's input quantiser re-quantises the mean (integer sum, then the requant).
- :class:`LeakyReLU`: slope ``2**-shift``; the layer after it takes signed codes (``signed_input``).
"""

from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .quant import ActQuantizer

__all__ = ["SHIFT_OFFSETS", "Shift", "ChannelShuffle", "Split", "Concat", "Upsample", "LeakyReLU",
           "QAdd", "QAvgPool2d", "QGlobalAvgPool", "shift_reference"]

#: (dy, dx) of channel c's source pixel for c % 5 = 0..4: up, left, centre, right, down.
SHIFT_OFFSETS: tuple[tuple[int, int], ...] = ((-1, 0), (0, -1), (0, 0), (0, 1), (1, 0))


def _check_4d(name: str, x: Tensor) -> None:
    if x.dim() != 4:
        raise ValueError(f"{name}: expects an (N, C, H, W) tensor, got shape {tuple(x.shape)}")


def shift_reference(x: Tensor) -> Tensor:
    """:class:`Shift` written pixel by pixel from its definition (slow; for tests)."""
    _, c, h, w = x.shape
    out = torch.zeros_like(x)
    for ch in range(c):
        dy, dx = SHIFT_OFFSETS[ch % 5]
        for y in range(h):
            for xx in range(w):
                if 0 <= y + dy < h and 0 <= xx + dx < w:
                    out[:, ch, y, xx] = x[:, ch, y + dy, xx + dx]
    return out


class Shift(nn.Module):
    """DiracDeltaNet's shift: channel ``c`` reads its pixel at offset ``SHIFT_OFFSETS[c % 5]``, zero fill."""

    _mixq_leaf = True

    def forward(self, x: Tensor) -> Tensor:
        _check_4d("Shift", x)
        h, w = x.shape[2], x.shape[3]
        padded = F.pad(x, (1, 1, 1, 1))
        parts = [padded[:, g::5, 1 + dy:1 + dy + h, 1 + dx:1 + dx + w] for g, (dy, dx) in enumerate(SHIFT_OFFSETS)]
        out = torch.empty_like(x)
        for g, part in enumerate(parts):
            out[:, g::5] = part
        return out


class ChannelShuffle(nn.Module):
    """Shift-based channel shuffle: ``cat(x[:, 3C/4:], x[:, :3C/4])`` (the last quarter to the front)."""

    _mixq_leaf = True

    def __init__(self, channels: int) -> None:
        super().__init__()
        if isinstance(channels, bool) or not isinstance(channels, int) or channels < 4 or channels % 4:
            raise ValueError(f"ChannelShuffle: channels must be a positive multiple of 4, got {channels!r}")
        self.channels = channels

    def extra_repr(self) -> str:
        return f"channels={self.channels}"

    def forward(self, x: Tensor) -> Tensor:
        _check_4d("ChannelShuffle", x)
        if x.shape[1] != self.channels:
            raise ValueError(f"ChannelShuffle({self.channels}): input has {x.shape[1]} channels")
        keep = self.channels - self.channels // 4
        return torch.cat([x[:, keep:], x[:, :keep]], dim=1)


class Split(nn.Module):
    """Channel split into consecutive groups of ``sections`` channels (a tuple of tensors)."""

    _mixq_leaf = True

    def __init__(self, sections: Sequence[int]) -> None:
        super().__init__()
        sections = tuple(sections)
        if not sections or any(isinstance(s, bool) or not isinstance(s, int) or s < 1 for s in sections):
            raise ValueError(f"Split: sections must be positive ints, got {sections!r}")
        self.sections = sections

    def extra_repr(self) -> str:
        return f"sections={self.sections}"

    def forward(self, x: Tensor) -> tuple[Tensor, ...]:
        _check_4d("Split", x)
        if x.shape[1] != sum(self.sections):
            raise ValueError(f"Split{self.sections}: input has {x.shape[1]} channels, sections sum to "
                             f"{sum(self.sections)}")
        return tuple(torch.split(x, list(self.sections), dim=1))


class Concat(nn.Module):
    """Channel concatenation of N inputs, in argument order."""

    _mixq_leaf = True

    def forward(self, *xs: Tensor) -> Tensor:
        if len(xs) < 2:
            raise ValueError(f"Concat: needs at least two inputs, got {len(xs)}")
        return torch.cat(xs, dim=1)


class Upsample(nn.Module):
    """Nearest-neighbour upsampling by 2: ``out[c, y, x] = in[c, y // 2, x // 2]``."""

    _mixq_leaf = True

    def forward(self, x: Tensor) -> Tensor:
        _check_4d("Upsample", x)
        return x.repeat_interleave(2, dim=2).repeat_interleave(2, dim=3)


class LeakyReLU(nn.Module):
    """LeakyReLU with slope ``2**-shift`` (a shift in integer arithmetic); its output is signed."""

    _mixq_leaf = True

    def __init__(self, shift: int = 3) -> None:
        super().__init__()
        if isinstance(shift, bool) or not isinstance(shift, int) or not 1 <= shift <= 15:
            raise ValueError(f"LeakyReLU: shift (slope 2**-shift) must be an int in 1..15, got {shift!r}")
        self.shift = shift
        self.slope = 2.0 ** -shift

    def extra_repr(self) -> str:
        return f"slope=2**-{self.shift}"

    def forward(self, x: Tensor) -> Tensor:
        return F.leaky_relu(x, self.slope)


def _quantizer(bits: int | None, act_mode: str, signed: bool) -> nn.Module:
    return nn.Identity() if bits is None else ActQuantizer(bits, act_mode, signed=signed)


class QAdd(nn.Module):
    """Residual add of two quantised branches, re-quantised: ``Qout(Qa(a) + Qb(b))``.

    ``bits`` quantises both branches (``signed`` per branch: True where a branch can be negative, e.g.
    conv + BN before the add), ``out_bits`` (default ``bits``) the sum, signed unless both branches are
    unsigned.  ``bits=None``: a plain float add (the float variant).
    """

    _mixq_leaf = True

    def __init__(self, bits: int | None, signed: tuple[bool, bool] = (True, False), *,
                 out_bits: int | None = None, act_mode: str = "hwgq") -> None:
        super().__init__()
        self.bits = bits
        self.signed = (bool(signed[0]), bool(signed[1]))
        self.out_signed = any(self.signed)
        self.out_bits = None if bits is None else (bits if out_bits is None else out_bits)
        self.quant_a = _quantizer(bits, act_mode, self.signed[0])
        self.quant_b = _quantizer(bits, act_mode, self.signed[1])
        self.quant_out = _quantizer(self.out_bits, act_mode, self.out_signed)

    def extra_repr(self) -> str:
        return f"bits={self.bits}, signed={self.signed}, out_bits={self.out_bits}"

    def forward(self, a: Tensor, b: Tensor) -> Tensor:
        if a.shape != b.shape:
            raise ValueError(f"QAdd: branch shapes differ: {tuple(a.shape)} and {tuple(b.shape)}")
        return self.quant_out(self.quant_a(a) + self.quant_b(b))


class QAvgPool2d(nn.Module):
    """``kernel`` x ``kernel`` average pool (stride ``kernel``) of the input's ``bits``-bit codes; the
    consumer's input quantiser re-quantises the mean.  ``bits=None``: a float average pool."""

    _mixq_leaf = True

    def __init__(self, kernel: int, bits: int | None, *, signed: bool = False, act_mode: str = "hwgq") -> None:
        super().__init__()
        if isinstance(kernel, bool) or not isinstance(kernel, int) or kernel < 1:
            raise ValueError(f"QAvgPool2d: kernel must be a positive int, got {kernel!r}")
        self.kernel, self.bits = kernel, bits
        self.quant = _quantizer(bits, act_mode, signed)

    def extra_repr(self) -> str:
        return f"kernel={self.kernel}, bits={self.bits}"

    def forward(self, x: Tensor) -> Tensor:
        _check_4d("QAvgPool2d", x)
        if x.shape[2] % self.kernel or x.shape[3] % self.kernel:
            raise ValueError(f"QAvgPool2d({self.kernel}): input {tuple(x.shape[2:])} is not a multiple "
                             "of the kernel")
        return F.avg_pool2d(self.quant(x), self.kernel)


class QGlobalAvgPool(nn.Module):
    """Global average pool of the input's ``bits``-bit codes -> (N, C); the consumer re-quantises."""

    _mixq_leaf = True

    def __init__(self, bits: int | None, *, signed: bool = False, act_mode: str = "hwgq") -> None:
        super().__init__()
        self.bits = bits
        self.quant = _quantizer(bits, act_mode, signed)

    def extra_repr(self) -> str:
        return f"bits={self.bits}"

    def forward(self, x: Tensor) -> Tensor:
        _check_4d("QGlobalAvgPool", x)
        return self.quant(x).mean(dim=(2, 3))
