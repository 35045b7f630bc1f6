"""Reorg (space-to-depth, stride 2) on a raster pixel stream: (C, H, W) -> (4C, H/2, W/2).

Output channel ``c*4 + dy*2 + dx`` is input ``x[c, 2*oy + dy, 2*ox + dx]``
(``torch.nn.functional.pixel_unshuffle(x, 2)``).

Buffer and why: every output pixel starts with channel 0, which already needs
the bottom-right input pixel of its 2x2 window -- the last of the four to
arrive.  So the whole even input row (``W * C`` codes) must be held until the
odd row passes, plus the odd row's left pixel of the current window (``C``
codes) until its right neighbour arrives: ``(W + 1) * C`` codes, in three
``lib.memory`` buffers of ``lanes * bits``-bit words (even row, left and right
columns; odd row, left pixel), so that the three stored codes of a window are
read in one cycle.

The core emits ``4 * lanes`` codes per beat (input chunk ``j`` of the four
window pixels, interleaved as the channel order requires), one beat per odd-row
right-hand input beat, so it never stalls its input.  Other ``lanes_out`` go
through a :class:`~mixq_hw.layers.width.LaneConverter`; a narrower output slows
the odd rows down (see :meth:`Reorg.cycles_per_frame`).
"""

from __future__ import annotations

import math

from amaranth import Module, Mux, Shape, Signal
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from ..estimate import Resources, memory_cost, styled_memory
from .width import LaneConverter, lane_converter_cost
from ._checks import layer_label, check_positive
from .spec import LayerSpec, SpecComponent

__all__ = ["Reorg", "ReorgSpec"]




class ReorgSpec(LayerSpec):
    """Space-to-depth by 2 of a (C, H, W) stream at ``lanes`` into (4C, H/2, W/2) at ``lanes_out``.

    ``lanes_out`` defaults to ``4 * lanes`` (full throughput); it must divide ``4 * channels`` and
    divide or be a multiple of ``4 * lanes``.  ``signed``: the codes are ``signed(bits)`` (it only moves them).
    """

    def __init__(self, channels: int, height: int, width: int, lanes: int, bits: int, *,
                 lanes_out: int | None = None, signed: bool = False, name: str = ""):
        where = layer_label(name, "Reorg")
        lanes_out = 4 * lanes if lanes_out is None else lanes_out
        check_positive(where, channels=channels, height=height, width=width, lanes=lanes, bits=bits,
                        lanes_out=lanes_out)
        if channels % lanes:
            raise ValueError(f"channels {channels} not divisible by lanes {lanes} {where}")
        if height % 2 or width % 2:
            raise ValueError(f"reorg needs even height and width, got {height}x{width} {where}")
        if (4 * channels) % lanes_out:
            raise ValueError(f"output channels {4 * channels} not divisible by lanes_out {lanes_out} {where}")
        if lanes_out % (4 * lanes) and (4 * lanes) % lanes_out:
            raise ValueError(f"lanes_out {lanes_out} must divide or be a multiple of 4 * lanes = {4 * lanes} "
                             f"{where}")
        self.channels, self.height, self.width = channels, height, width
        self.lanes, self.lanes_out, self.bits, self.name = lanes, lanes_out, bits, name
        self.signed = bool(signed)
        self.in_layout = data.ArrayLayout(Shape(bits, signed=self.signed), lanes)
        self.out_layout = data.ArrayLayout(Shape(bits, signed=self.signed), lanes_out)
        self.declare_ports({"i": In(stream.Signature(self.in_layout)), "o": Out(stream.Signature(self.out_layout))})

    @property
    def out_shape(self) -> tuple[int, int, int]:
        """(C, H, W) of the output tensor."""
        return 4 * self.channels, self.height // 2, self.width // 2

    @property
    def chunks(self) -> int:
        """Input beats per pixel."""
        return self.channels // self.lanes

    def _converter(self) -> LaneConverter | None:
        if self.lanes_out == 4 * self.lanes:
            return None
        c, h, w = self.out_shape
        return LaneConverter(c, h, w, 4 * self.lanes, self.lanes_out, self.bits, signed=self.signed,
                             name=f"{self.name}.lanes" if self.name else "")

    def cycles_per_frame(self) -> int:
        """Cycles per frame from the schedule (H * W * C / lanes when lanes_out >= 4 * lanes).

        An even row takes ``W * chunks`` cycles.  In an odd row each right-hand input beat makes
        ``r = 4 * lanes / lanes_out`` output beats (``r = 1`` when not narrowing); one stage register
        sits between the core and the converter, so a window pair of the odd row takes
        ``P = max(r, chunks + 1) + (chunks - 1) * r`` cycles, and the row ``(W/2) * P`` less the slack
        ``max(0, r - chunks - 1)`` its first window finds with the converter idle.
        """
        chunks, r = self.chunks, max(1, 4 * self.lanes // self.lanes_out)
        if r == 1:
            return self.height * self.width * chunks
        window = max(r, chunks + 1) + (chunks - 1) * r
        odd_row = (self.width // 2) * window - max(0, r - chunks - 1)
        return (self.height // 2) * (self.width * chunks + odd_row)

    def estimate(self) -> Resources:
        """Three line buffers ((W + 1) * C codes), a stage register, counters, and the lane converter."""
        word, chunks = self.lanes * self.bits, self.chunks
        half_row = (self.width // 2) * chunks
        counters = sum(max(1, math.ceil(math.log2(n + 1))) for n in (chunks, self.width, self.height, half_row))
        total = memory_cost(half_row, word) * 2 + memory_cost(chunks, word)
        total += Resources(lut=2 * counters + 6, ff=word + 1 + 2 * counters)
        return total + lane_converter_cost(4 * self.lanes, self.lanes_out, self.bits)


class Reorg(ReorgSpec, SpecComponent):
    """The hardware of :class:`ReorgSpec` (the same arguments)."""

    def elaborate(self, platform) -> Module:
        m = Module()
        chunks, half = self.chunks, self.width // 2
        half_row = half * chunks

        m.submodules.even_left = even_left = styled_memory(shape=self.in_layout, depth=half_row, init=[])
        m.submodules.even_right = even_right = styled_memory(shape=self.in_layout, depth=half_row, init=[])
        m.submodules.odd_left = odd_left = styled_memory(shape=self.in_layout, depth=chunks, init=[])
        buffers = (even_left, even_right, odd_left)
        writes = [buf.write_port() for buf in buffers]
        reads = [buf.read_port() for buf in buffers]

        # Position of the next input beat.
        chunk = Signal(range(chunks))
        x = Signal(range(self.width))
        y = Signal(range(self.height))
        col_base = Signal(range(half_row))      # (x // 2) * chunks
        odd_row, right = y[0], x[0]

        # Stage 1: an odd-row right-hand beat waiting for the window's three stored codes.
        s1_valid = Signal()
        s1_beat = Signal(self.in_layout)
        core = stream.Signature(data.ArrayLayout(Shape(self.bits, signed=self.signed), 4 * self.lanes)).create()

        accept = self.i.valid & self.i.ready
        m.d.comb += self.i.ready.eq(~s1_valid | core.ready)
        for port in reads:
            m.d.comb += port.en.eq(self.i.ready)
        m.d.comb += [
            reads[0].addr.eq(col_base + chunk),
            reads[1].addr.eq(col_base + chunk),
            reads[2].addr.eq(chunk),
        ]
        for port, when in zip(writes, (~odd_row & ~right, ~odd_row & right, odd_row & ~right)):
            m.d.comb += [port.data.eq(self.i.payload), port.en.eq(accept & when)]
        m.d.comb += [
            writes[0].addr.eq(col_base + chunk),
            writes[1].addr.eq(col_base + chunk),
            writes[2].addr.eq(chunk),
        ]

        # Output lane 4*s + dy*2 + dx carries input lane s of window pixel (dy, dx).
        for s in range(self.lanes):
            for k, code in enumerate((reads[0].data[s], reads[1].data[s], reads[2].data[s], s1_beat[s])):
                m.d.comb += core.payload[4 * s + k].eq(code)
        m.d.comb += core.valid.eq(s1_valid)

        with m.If(accept):
            m.d.sync += s1_valid.eq(odd_row & right)
            m.d.sync += s1_beat.eq(self.i.payload)
            with m.If(chunk == chunks - 1):
                m.d.sync += chunk.eq(0)
                with m.If(x == self.width - 1):
                    m.d.sync += [x.eq(0), col_base.eq(0)]
                    m.d.sync += y.eq(Mux(y == self.height - 1, 0, y + 1))
                with m.Else():
                    m.d.sync += x.eq(x + 1)
                    with m.If(right):
                        m.d.sync += col_base.eq(col_base + chunks)
            with m.Else():
                m.d.sync += chunk.eq(chunk + 1)
        with m.Elif(core.ready):
            m.d.sync += s1_valid.eq(0)

        converter = self._converter()
        if converter is None:
            wiring.connect(m, core, wiring.flipped(self.o))
        else:
            m.submodules.lanes = converter
            wiring.connect(m, core, converter.i)
            wiring.connect(m, converter.o, wiring.flipped(self.o))
        return m


ReorgSpec.component_class = Reorg
