"""What every model family shares: a layer factory per variant, bit-width validation, building blocks.

A family writes its network once in terms of ``LayerFactory.conv`` / ``LayerFactory.linear``; the
factory returns a float layer, a supernet layer or a fixed-precision layer depending on the variant,
and hands out the per-layer bit widths in forward order.
"""

from __future__ import annotations

from typing import Sequence

from torch import nn

from mixq_hw.packing.bits import INPUT_BITS, PACKED_BITS, WEIGHT_BITS

from ..layers import QConv2d, QLinear
from ..quant import ACT_MODES, WEIGHT_MODES
from ..supernet import DEFAULT_CANDIDATES, MixQConv2d, MixQLinear

__all__ = ["VARIANTS", "LayerFactory", "conv_bn_relu", "check_input_shape", "check_channels"]

VARIANTS = ("float", "supernet", "fixed")


def check_input_shape(model: str, input_shape: Sequence[int], multiple: int) -> tuple[int, int, int]:
    """(C, H, W) as ints; H and W must be multiples of the network's total pooling factor."""
    shape = tuple(input_shape) if isinstance(input_shape, (list, tuple)) else ()
    if len(shape) != 3 or not all(isinstance(s, int) and not isinstance(s, bool) and s > 0 for s in shape):
        raise ValueError(f"{model}: input_shape must be three positive ints (C, H, W), got {input_shape!r}")
    c, h, w = shape
    if h % multiple or w % multiple:
        raise ValueError(f"{model}: input height and width must be multiples of {multiple} "
                         f"(its pooling factor), got input_shape {shape}")
    return c, h, w


def check_channels(model: str, channels: object, default: Sequence[int]) -> tuple[int, ...]:
    """A family's ``channels`` option (output widths of its conv/linear layers in creation order, the
    last layer excluded; a pruned network sets them): ``default`` when None, else as many positive ints."""
    if channels is None:
        return tuple(default)
    if isinstance(channels, (str, bytes)) or not isinstance(channels, Sequence) or len(channels) != len(default) \
            or not all(isinstance(c, int) and not isinstance(c, bool) and c > 0 for c in channels):
        raise ValueError(f"{model}: channels must be {len(default)} positive ints (output widths of its "
                         f"conv/linear layers but the last, published {list(default)}), got {channels!r}")
    return tuple(channels)


def _check_list(model: str, what: str, bits: object, count: int) -> list[int]:
    if isinstance(bits, (str, bytes)) or not isinstance(bits, Sequence):
        raise ValueError(f"{model}: {what} must be a list of {count} ints (one per quantised layer), "
                         f"got {bits!r}")
    if len(bits) != count:
        raise ValueError(f"{model}: {what} needs {count} entries (one per quantised layer), "
                         f"got {len(bits)}: {list(bits)!r}")
    return list(bits)


def _check_value(model: str, what: str, index: int, value: object, allowed: range) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value not in allowed:
        raise ValueError(f"{model}: {what}[{index}] must be an int in {allowed.start}..{allowed.stop - 1}, "
                         f"got {value!r}")
    return value


class LayerFactory:
    """Builds the quantised layers of one model for one variant, handing out bit widths in order.

    ``bitw``/``bita`` (fixed variant): one entry per searchable quantised layer, ``bita[0]`` is the
    input image's bits.  Layers created with ``fixed_bits=(w, a)`` keep those bits in every quantised
    variant, are not searched and take no entry (VGG-tiny's w8a8 classifier).
    """

    def __init__(self, model: str, variant: str, num_qlayers: int, *, bitw: Sequence[int] | None = None,
                 bita: Sequence[int] | None = None, wbits: Sequence[int] = DEFAULT_CANDIDATES,
                 abits: Sequence[int] = DEFAULT_CANDIDATES, input_bits: int = 8,
                 weight_mode: str = "std", act_mode: str = "hwgq") -> None:
        if variant not in VARIANTS:
            raise ValueError(f"{model}: variant must be one of {VARIANTS}, got {variant!r}")
        if weight_mode not in WEIGHT_MODES:
            raise ValueError(f"{model}: weight_mode must be one of {WEIGHT_MODES}, got {weight_mode!r}")
        if act_mode not in ACT_MODES:
            raise ValueError(f"{model}: act_mode must be one of {ACT_MODES}, got {act_mode!r}")
        self.model, self.variant, self.num_qlayers = model, variant, num_qlayers
        self.weight_mode, self.act_mode = weight_mode, act_mode
        self.wbits, self.abits = tuple(wbits), tuple(abits)
        self.input_bits = _check_value(model, "input_bits", 0, input_bits, INPUT_BITS)
        self.bitw: list[int] = []
        self.bita: list[int] = []
        if variant == "fixed":
            self.bitw = _check_list(model, "bitw", bitw, num_qlayers)
            self.bita = _check_list(model, "bita", bita, num_qlayers)
            for i, (w, a) in enumerate(zip(self.bitw, self.bita)):
                _check_value(model, "bitw", i, w, WEIGHT_BITS)
                # the first layer reads the input quantizer's codes; the others the widths the search prices
                _check_value(model, "bita", i, a, INPUT_BITS if i == 0 else PACKED_BITS)
        elif bitw is not None or bita is not None:
            raise ValueError(f"{model}: bitw/bita set the bits of the fixed variant; the {variant!r} "
                             "variant takes none (supernet candidates: wbits=, abits=, input_bits=)")
        self.index = 0

    def _next(self, fixed_bits: tuple[int, int] | None, signed_input: bool = False) -> dict:
        """Keyword arguments of the next quantised layer."""
        first = self.index == 0 and fixed_bits is None
        common = {"first": first, "weight_mode": self.weight_mode, "act_mode": self.act_mode}
        if signed_input and not first:
            common["act_signed"] = True
        if fixed_bits is not None:
            return {**common, "bitw": fixed_bits[0], "bita": fixed_bits[1]}
        i = self.index
        self.index += 1
        if i >= self.num_qlayers:
            raise RuntimeError(f"{self.model}: more quantised layers than num_qlayers={self.num_qlayers}")
        if self.variant == "supernet":
            abits = (self.input_bits,) if first else self.abits
            return {**common, "wbits": self.wbits, "abits": abits}
        return {**common, "bitw": self.bitw[i], "bita": self.bita[i]}

    def conv(self, in_ch: int, out_ch: int, k: int, *, stride: int = 1, groups: int = 1,
             bias: bool = False, fixed_bits: tuple[int, int] | None = None, padding: int | None = None,
             signed_input: bool = False) -> nn.Conv2d:
        """A k x k conv with "same" zero padding (k // 2) unless ``padding`` is given;
        ``signed_input``: its input codes are signed (it follows a LeakyReLU)."""
        pad = k // 2 if padding is None else padding
        args = (in_ch, out_ch, k, stride, pad, groups, bias)   # QConv2d / MixQConv2d order
        if self.variant == "float":
            self.index += fixed_bits is None
            return nn.Conv2d(in_ch, out_ch, k, stride=stride, padding=pad, groups=groups, bias=bias)
        kwargs = self._next(fixed_bits, signed_input)
        if self.variant == "supernet" and fixed_bits is None:
            return MixQConv2d(*args, **kwargs)
        layer = QConv2d(*args, **kwargs)
        layer.bits_fixed = fixed_bits is not None
        return layer

    def linear(self, in_f: int, out_f: int, *, bias: bool = True,
               fixed_bits: tuple[int, int] | None = None, signed_input: bool = False) -> nn.Linear:
        """A fully connected layer (``signed_input``: its input codes are signed)."""
        if self.variant == "float":
            self.index += fixed_bits is None
            return nn.Linear(in_f, out_f, bias=bias)
        kwargs = self._next(fixed_bits, signed_input)
        if self.variant == "supernet" and fixed_bits is None:
            return MixQLinear(in_f, out_f, bias, **kwargs)
        layer = QLinear(in_f, out_f, bias, **kwargs)
        layer.bits_fixed = fixed_bits is not None
        return layer

    def aux_bits(self, bits: int) -> int | None:
        """Bits of a quantiser outside a conv/linear layer (residual add, average pool) whose width the
        family fixes: ``bits``, or None (no quantisation) in the float variant."""
        return None if self.variant == "float" else bits

    def finish(self) -> None:
        """Check the family used exactly ``num_qlayers`` searchable layers (a programming error otherwise)."""
        if self.index != self.num_qlayers:
            raise RuntimeError(f"{self.model}: built {self.index} quantised layers, "
                               f"registry says {self.num_qlayers}")


def conv_bn_relu(f: LayerFactory, in_ch: int, out_ch: int, k: int, *, groups: int = 1) -> nn.Sequential:
    """conv (no bias: BN follows) -> BatchNorm2d -> ReLU."""
    return nn.Sequential(f.conv(in_ch, out_ch, k, groups=groups), nn.BatchNorm2d(out_ch), nn.ReLU())
