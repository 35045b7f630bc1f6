"""Fixed-precision quantised layers, the space-to-depth ``Reorg``, and an fx tracer that keeps them whole.

A quantised layer quantises ITS INPUT with its own activation quantiser (or the input-pixel quantiser
for the first layer), then convolves with its fake-quantised weight.  BatchNorm and ReLU stay float
modules after it (export folds them into the integer requantisation).
"""

from __future__ import annotations

import torch
import torch.fx
import torch.nn.functional as F
from torch import Tensor, nn

from .quant import ActQuantizer, InputQuantizer, WeightQuantizer

__all__ = ["QConv2d", "QLinear", "Reorg", "is_leaf", "MixqTracer", "trace"]


def _make_act_quant(bita: int, first: bool, act_mode: str, signed: bool) -> nn.Module:
    return InputQuantizer(bita) if first else ActQuantizer(bita, act_mode, signed=signed)


class QConv2d(nn.Conv2d):
    """Conv2d (dense, depthwise via ``groups``, 1x1) with fixed weight bits ``bitw`` and input bits ``bita``.

    ``first=True`` quantises the input image with :class:`InputQuantizer` (top ``bita`` bits of 8-bit
    pixels) instead of an activation quantiser; ``act_signed=True`` takes signed input codes (after a
    LeakyReLU).
    """

    _mixq_leaf = True
    #: True for a layer whose bits are part of the model, not of its bit-width lists (VGG-tiny's w8a8 linear).
    bits_fixed = False

    def __init__(self, in_ch: int, out_ch: int, k: int, stride: int = 1, padding: int = 0,
                 groups: int = 1, bias: bool = False, *, bitw: int, bita: int, first: bool = False,
                 weight_mode: str = "std", act_mode: str = "hwgq", act_signed: bool = False) -> None:
        super().__init__(in_ch, out_ch, k, stride=stride, padding=padding, groups=groups, bias=bias)
        self.bitw = bitw
        self.bita = bita
        self.first = first
        self.weight_quant = WeightQuantizer(bitw, weight_mode)
        self.act_quant = _make_act_quant(bita, first, act_mode, act_signed)

    def extra_repr(self) -> str:
        return super().extra_repr() + f", bitw={self.bitw}, bita={self.bita}, first={self.first}"

    def forward(self, x: Tensor) -> Tensor:
        return self._conv_forward(self.act_quant(x), self.weight_quant(self.weight), self.bias)


class QLinear(nn.Linear):
    """Linear layer with fixed weight bits ``bitw`` and input activation bits ``bita``."""

    _mixq_leaf = True
    bits_fixed = False

    def __init__(self, in_f: int, out_f: int, bias: bool = True, *, bitw: int, bita: int,
                 first: bool = False, weight_mode: str = "std", act_mode: str = "hwgq",
                 act_signed: bool = False) -> None:
        super().__init__(in_f, out_f, bias=bias)
        self.bitw = bitw
        self.bita = bita
        self.first = first
        self.weight_quant = WeightQuantizer(bitw, weight_mode)
        self.act_quant = _make_act_quant(bita, first, act_mode, act_signed)

    def extra_repr(self) -> str:
        return super().extra_repr() + f", bitw={self.bitw}, bita={self.bita}, first={self.first}"

    def forward(self, x: Tensor) -> Tensor:
        return F.linear(self.act_quant(x), self.weight_quant(self.weight), self.bias)


class Reorg(nn.Module):
    """Space-to-depth by 2 (``pixel_unshuffle``): output channel ``c*4 + dy*2 + dx`` of input channel c."""

    _mixq_leaf = True

    def forward(self, x: Tensor) -> Tensor:
        return F.pixel_unshuffle(x, 2)


def is_leaf(module: nn.Module) -> bool:
    """True for the modules export treats as opaque: quantised layers, quantisers, ``Reorg`` and the
    operators of :mod:`mixq_nn.ops_layers` (every class with ``_mixq_leaf = True``)."""
    from . import quant

    return bool(getattr(type(module), "_mixq_leaf", False)) or isinstance(
        module, (quant.WeightQuantizer, quant.ActQuantizer, quant.InputQuantizer))


class MixqTracer(torch.fx.Tracer):
    """fx tracer that keeps mixq's quantised layers, quantisers and ``Reorg`` as leaf modules."""

    def is_leaf_module(self, m: nn.Module, module_qualified_name: str) -> bool:
        return is_leaf(m) or super().is_leaf_module(m, module_qualified_name)


def trace(model: nn.Module) -> torch.fx.GraphModule:
    """``torch.fx`` graph of ``model`` with :class:`MixqTracer`'s leaf modules."""
    graph = MixqTracer().trace(model)
    return torch.fx.GraphModule(model, graph, type(model).__name__)
