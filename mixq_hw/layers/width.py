"""Lane conversion: the same code stream regrouped from ``lanes_in`` to ``lanes_out`` codes per beat.

Codes keep their order (raster, channels of a pixel together), so when both
lane counts divide the channel count a pixel stays a whole number of beats on
either side.  Widening collects ``lanes_out / lanes_in`` input beats in a shift
register; narrowing holds one wide beat and shifts ``lanes_out`` codes out per
cycle.  Both sustain one beat per cycle on the narrow side.

:class:`LanesToFlat` / :class:`FlatToLanes` reinterpret a lane array as a flat
``unsigned(8*n)`` AXI-Stream ``tdata`` word and back (each lane padded to whole
bytes, lane 0 in the lowest byte); they are wiring only.
"""

from __future__ import annotations

import math

from amaranth import Module, Mux, Shape, Signal, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from ..estimate import Resources
from ._checks import layer_label, check_positive
from .spec import LayerSpec, SpecComponent

__all__ = ["LaneConverter", "lane_converter_cost", "LanesToFlat", "FlatToLanes", "LaneConverterSpec"]




def _element(bits: int, is_signed: bool) -> Shape:
    return Shape(bits, signed=is_signed)


def lane_converter_cost(lanes_in: int, lanes_out: int, bits: int) -> Resources:
    """Estimate of a :class:`LaneConverter`: a wide register and a counter (zero if lanes are equal).

    Widening is a shift register with a clock enable (no LUTs per bit); narrowing needs a
    load-or-shift 2:1 mux per bit.  (yosys ``synth_xilinx -family xcup``, 64-bit word: 5 LUTs
    widening, 102 LUTs + 48 MUXF narrowing, 67 FFs each.)  A function rather than only a method,
    so a layer that embeds a converter can cost it without building one.
    """
    if lanes_in == lanes_out:
        return Resources()
    wide = max(lanes_in, lanes_out) * bits
    ratio = max(lanes_in, lanes_out) // min(lanes_in, lanes_out)
    counter = max(1, math.ceil(math.log2(ratio)))
    muxes = wide if lanes_out < lanes_in else 0
    return Resources(lut=muxes + 2 * counter + 2, ff=wide + counter + 1)


class LaneConverterSpec(LayerSpec):
    """Regroups a (C, H, W) stream from ``lanes_in`` to ``lanes_out`` codes per beat (one must divide the other).

    Ports: ``i`` (``ArrayLayout(element, lanes_in)``) and ``o`` (``ArrayLayout(element, lanes_out)``),
    element ``unsigned(bits)`` (or ``signed(bits)`` with ``signed=True``).
    """

    def __init__(self, channels: int, height: int, width: int, lanes_in: int, lanes_out: int, bits: int, *,
                 signed: bool = False, name: str = ""):
        where = layer_label(name, "LaneConverter")
        check_positive(where, channels=channels, height=height, width=width, lanes_in=lanes_in,
                        lanes_out=lanes_out, bits=bits)
        for key, lanes in (("lanes_in", lanes_in), ("lanes_out", lanes_out)):
            if channels % lanes:
                raise ValueError(f"channels {channels} not divisible by {key} {lanes} {where}")
        if lanes_in % lanes_out and lanes_out % lanes_in:
            raise ValueError(f"lanes_in {lanes_in} and lanes_out {lanes_out}: one must divide the other {where}")
        self.channels, self.height, self.width = channels, height, width
        self.lanes_in, self.lanes_out, self.bits, self.signed, self.name = lanes_in, lanes_out, bits, signed, name
        element = _element(bits, signed)
        self.in_layout = data.ArrayLayout(element, lanes_in)
        self.out_layout = data.ArrayLayout(element, lanes_out)
        self.declare_ports({"i": In(stream.Signature(self.in_layout)), "o": Out(stream.Signature(self.out_layout))})

    def cycles_per_frame(self) -> int:
        """One beat per cycle on the side with fewer lanes: H * W * C / min(lanes_in, lanes_out)."""
        return self.height * self.width * self.channels // min(self.lanes_in, self.lanes_out)

    def estimate(self) -> Resources:
        """See :func:`lane_converter_cost`."""
        return lane_converter_cost(self.lanes_in, self.lanes_out, self.bits)


class LaneConverter(LaneConverterSpec, SpecComponent):
    """The hardware of :class:`LaneConverterSpec` (the same arguments)."""

    def elaborate(self, platform) -> Module:
        m = Module()
        i, o = self.i, self.o
        li, lo = self.lanes_in, self.lanes_out
        if li == lo:
            m.d.comb += [o.valid.eq(i.valid), o.payload.eq(i.payload), i.ready.eq(o.ready)]
        elif lo > li:
            self._widen(m, lo // li)
        else:
            self._narrow(m, li // lo)
        return m

    def _widen(self, m: Module, ratio: int) -> None:
        """Shift ``ratio`` input beats into the top of a wide register; the first lands in the low lanes."""
        i, o = self.i, self.o
        li, lo = self.lanes_in, self.lanes_out
        buf = Signal(self.out_layout)
        full = Signal()
        count = Signal(range(ratio))
        accept = i.valid & i.ready
        m.d.comb += [
            i.ready.eq(~full | o.ready),
            o.valid.eq(full),
            o.payload.eq(buf),
        ]
        with m.If(accept):
            for lane in range(lo - li):
                m.d.sync += buf[lane].eq(buf[lane + li])
            for lane in range(li):
                m.d.sync += buf[lo - li + lane].eq(i.payload[lane])
            m.d.sync += count.eq(Mux(count == ratio - 1, 0, count + 1))
        m.d.sync += full.eq((accept & (count == ratio - 1)) | (full & ~o.ready))

    def _narrow(self, m: Module, ratio: int) -> None:
        """Hold one wide beat and shift ``lanes_out`` codes out of its low lanes per accepted output beat."""
        i, o = self.i, self.o
        li, lo = self.lanes_in, self.lanes_out
        hold = Signal(self.in_layout)
        valid = Signal()
        index = Signal(range(ratio))
        last = index == ratio - 1
        fire = o.valid & o.ready
        m.d.comb += [
            i.ready.eq(~valid | (o.ready & last)),
            o.valid.eq(valid),
        ]
        for lane in range(lo):
            m.d.comb += o.payload[lane].eq(hold[lane])
        with m.If(i.valid & i.ready):
            m.d.sync += [hold.eq(i.payload), valid.eq(1), index.eq(0)]
        with m.Elif(fire):
            with m.If(last):
                m.d.sync += [valid.eq(0), index.eq(0)]
            with m.Else():
                m.d.sync += index.eq(index + 1)
                for lane in range(li - lo):
                    m.d.sync += hold[lane].eq(hold[lane + lo])


LaneConverterSpec.component_class = LaneConverter


def _lane_bytes(bits: int) -> int:
    return (bits + 7) // 8


class LanesToFlat(wiring.Component):
    """``ArrayLayout(unsigned/signed(bits), lanes)`` -> flat ``unsigned(8 * lanes * ceil(bits/8))`` tdata.

    Lane ``j`` occupies bytes ``j*B .. j*B+B-1`` (B = ceil(bits/8)), zero- or sign-extended.
    """

    def __init__(self, lanes: int, bits: int, *, signed: bool = False, name: str = ""):
        check_positive(layer_label(name, "LanesToFlat"), lanes=lanes, bits=bits)
        self.lanes, self.bits, self.signed = lanes, bits, signed
        self.lane_width = 8 * _lane_bytes(bits)
        self.in_layout = data.ArrayLayout(_element(bits, signed), lanes)
        super().__init__({"i": In(stream.Signature(self.in_layout)),
                          "o": Out(stream.Signature(unsigned(self.lane_width * lanes)))})

    def estimate(self) -> Resources:
        """Wiring only."""
        return Resources()

    def elaborate(self, platform) -> Module:
        m = Module()
        m.d.comb += [self.o.valid.eq(self.i.valid), self.i.ready.eq(self.o.ready)]
        for lane in range(self.lanes):
            field = self.o.payload[lane * self.lane_width:(lane + 1) * self.lane_width]
            m.d.comb += field.eq(self.i.payload[lane])      # .eq extends by the lane's signedness
        return m


class FlatToLanes(wiring.Component):
    """Flat ``unsigned(8 * lanes * ceil(bits/8))`` tdata -> ``ArrayLayout(unsigned/signed(bits), lanes)``.

    Lane ``j`` is the low ``bits`` bits of bytes ``j*B .. j*B+B-1``; the padding bits above are ignored
    (a producer following :class:`LanesToFlat`'s layout leaves them as zero/sign extension).
    """

    def __init__(self, lanes: int, bits: int, *, signed: bool = False, name: str = ""):
        check_positive(layer_label(name, "FlatToLanes"), lanes=lanes, bits=bits)
        self.lanes, self.bits, self.signed = lanes, bits, signed
        self.lane_width = 8 * _lane_bytes(bits)
        self.out_layout = data.ArrayLayout(_element(bits, signed), lanes)
        super().__init__({"i": In(stream.Signature(unsigned(self.lane_width * lanes))),
                          "o": Out(stream.Signature(self.out_layout))})

    def estimate(self) -> Resources:
        """Wiring only."""
        return Resources()

    def elaborate(self, platform) -> Module:
        m = Module()
        m.d.comb += [self.o.valid.eq(self.i.valid), self.i.ready.eq(self.o.ready)]
        for lane in range(self.lanes):
            start = lane * self.lane_width
            m.d.comb += self.o.payload[lane].eq(self.i.payload[start:start + self.bits])
        return m
