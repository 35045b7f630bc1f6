"""Average pooling as an integer sum on a raster pixel stream: (C, H, W) -> (C, H/kh, W/kw), wider codes.

The block sums each non-overlapping ``kh`` x ``kw`` window (stride = window) exactly; the 1/(kh*kw) scale
belongs to the requant that follows (its ``inc``/shift absorb it), so nothing is rounded here.  Global
average pooling is the window (H, W).  The machine is :func:`~mixq_hw.layers.pool.elaborate_window_pool`
with addition as the lane-wise reduction: a line buffer of ``W/kw * C/lanes`` partial sums, one input beat
per cycle.  :func:`~mixq_hw.layers.reference.sum_pool` is the reference.
"""

from __future__ import annotations

import math

from amaranth.hdl import Module, Mux, Shape
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from ..estimate import Resources, memory_cost
from ._checks import check_positive, layer_label
from .pool import elaborate_window_pool
from .spec import LayerSpec

__all__ = ["SumPool", "SumPoolSpec", "sum_bits", "sum_pool_cycles", "sum_pool_cost"]


def sum_bits(bits: int, count: int, signed: bool = False) -> int:
    """Width that holds the exact sum of ``count`` codes of ``bits`` (two's complement when ``signed``)."""
    if not signed:
        return (count * ((1 << bits) - 1)).bit_length()
    lo, hi = count * -(1 << (bits - 1)), count * ((1 << (bits - 1)) - 1)
    return max((-lo - 1).bit_length(), hi.bit_length()) + 1


def sum_pool_cycles(channels: int, height: int, width: int, lanes: int) -> int:
    """One input beat per cycle: H * W * C / lanes."""
    return height * width * (channels // lanes)


def sum_pool_cost(channels: int, height: int, width: int, lanes: int, bits: int, kernel: tuple[int, int],
                  signed: bool = False) -> Resources:
    """Line buffer of W/kw * C/lanes partial sums, one adder and select per partial bit, the stage register (and
    the read register of a LUT-RAM buffer; block RAM has its own), counters (estimate; an upper bound of yosys
    ``synth_xilinx -family xcup`` in ``benchmarks/stream_ops.py``)."""
    out_bits = sum_bits(bits, kernel[0] * kernel[1], signed)
    word = lanes * out_bits
    chunks = channels // lanes
    depth = (width // kernel[1]) * chunks
    counters = sum(max(1, math.ceil(math.log2(n + 1))) for n in (chunks, width, height, depth, *kernel))
    buffer = memory_cost(depth, word)
    read_register = word if buffer.bram36 == 0 else 0
    logic = Resources(lut=2 * word + 2 * counters, ff=lanes * bits + read_register + 2 * counters + 4)
    return logic + buffer


class SumPoolSpec(LayerSpec):
    """Sums ``kernel`` = (kh, kw) windows of a (C, H, W) stream (stride = kernel; H, W multiples of it).

    Ports: ``i``, ``ArrayLayout(unsigned(bits), lanes)`` (``signed(bits)`` with ``signed=True``), and ``o``,
    ``ArrayLayout(unsigned(out_bits), lanes)`` (signed likewise) with ``out_bits = sum_bits(bits, kh*kw)``.
    ``kernel=None`` is the global pool (H, W).  With ``grouped=True`` the output is instead the ConvEngine's
    accumulator-group format with ``pe = lanes`` and ``pixels = 1``, ``ArrayLayout(ArrayLayout(signed(acc_bits),
    lanes), 1)``, ``acc_bits`` = ``out_bits`` (+1 for unsigned input), so that a Requant reads it directly.
    Throughput one input beat per cycle; latency: a window's sum leaves the cycle after its last beat enters.
    """

    kind = "SumPool"

    def __init__(self, channels: int, height: int, width: int, lanes: int, bits: int, *,
                 kernel: tuple[int, int] | None = None, signed: bool = False, grouped: bool = False,
                 name: str = ""):
        where = layer_label(name, self.kind)
        check_positive(where, channels=channels, height=height, width=width, lanes=lanes, bits=bits)
        kernel = (height, width) if kernel is None else kernel
        if not isinstance(kernel, tuple) or len(kernel) != 2:
            raise ValueError(f"kernel must be a (kh, kw) tuple, not {kernel!r} {where}")
        check_positive(where, kh=kernel[0], kw=kernel[1])
        if channels % lanes:
            raise ValueError(f"channels {channels} not divisible by lanes {lanes} {where}")
        if height % kernel[0] or width % kernel[1]:
            raise ValueError(f"{height}x{width} is not a multiple of the {kernel[0]}x{kernel[1]} window {where}")
        self.channels, self.height, self.width, self.kernel = channels, height, width, kernel
        self.lanes, self.bits, self.signed, self.name = lanes, bits, bool(signed), name
        self.out_bits = sum_bits(bits, kernel[0] * kernel[1], self.signed)
        self.in_layout = data.ArrayLayout(Shape(bits, signed=self.signed), lanes)
        self.sum_layout = data.ArrayLayout(Shape(self.out_bits, signed=self.signed), lanes)
        self.grouped = bool(grouped)
        self.acc_bits = self.out_bits + (0 if self.signed else 1)
        self.out_layout = (data.ArrayLayout(data.ArrayLayout(Shape(self.acc_bits, signed=True), lanes), 1)
                           if self.grouped else self.sum_layout)
        self.declare_ports({"i": In(stream.Signature(self.in_layout)), "o": Out(stream.Signature(self.out_layout))})

    @property
    def out_shape(self) -> tuple[int, int, int]:
        """(C, H, W) of the output tensor."""
        return self.channels, self.height // self.kernel[0], self.width // self.kernel[1]

    def cycles_per_frame(self) -> int:
        """See :func:`sum_pool_cycles`."""
        return sum_pool_cycles(self.channels, self.height, self.width, self.lanes)

    def estimate(self) -> Resources:
        """See :func:`sum_pool_cost`."""
        return sum_pool_cost(self.channels, self.height, self.width, self.lanes, self.bits, self.kernel,
                             self.signed)


class SumPool(SumPoolSpec, wiring.Component):
    """The hardware of :class:`SumPoolSpec` (the same arguments)."""

    def __init__(self, *args, **kwargs) -> None:
        SumPoolSpec.__init__(self, *args, **kwargs)
        wiring.Component.__init__(self, self.ports())

    def elaborate(self, platform) -> Module:
        m = Module()
        if self.grouped:
            m.submodules.sum = inner = SumPool(self.channels, self.height, self.width, self.lanes, self.bits,
                                               kernel=self.kernel, signed=self.signed, name=self.name)
            wiring.connect(m, wiring.flipped(self.i), inner.i)
            m.d.comb += [self.o.valid.eq(inner.o.valid), inner.o.ready.eq(self.o.ready)]
            m.d.comb += [self.o.payload[0][j].eq(inner.o.payload[j]) for j in range(self.lanes)]
            return m
        elaborate_window_pool(m, self.i, self.o, chunks=self.channels // self.lanes, height=self.height,
                              width=self.width, kernel=self.kernel, pad=0, partial_layout=self.sum_layout,
                              lanes=self.lanes, combine=lambda first, new, old: Mux(first, new, new + old),
                              result="total")
        return m


SumPoolSpec.component_class = SumPool
