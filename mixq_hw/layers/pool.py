"""2x2 max pooling, stride 2, on a raster pixel stream of codes.

One line buffer (``lib.memory``) holds the running maxima of the current row
pair: ``width // 2`` pooled pixels of ``channels / lanes`` words, ``lanes * bits``
wide.  Every input beat reads its partial maximum (a synchronous read; write-first
when a pixel is one beat, so a partial written in the same cycle is seen), takes
the lane-wise maximum with the beat and writes it back; the beat at the bottom-right of each
2x2 window emits the result instead.  Height and width must be even, as the
Graph's ``maxpool`` requires.
"""

from __future__ import annotations

import math

from amaranth import Module, Mux, Signal, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from ..estimate import Resources, memory_cost, styled_memory
from ..packing.calibration import POOL_LUT_PER_WORD_BIT
from ._checks import layer_label, check_positive

__all__ = ["MaxPool2x2"]




class MaxPool2x2(wiring.Component):
    """Lane-wise 2x2/2 max pooling of a (C, H, W) stream into (C, H//2, W//2), same lanes and bits.

    Ports: ``i`` and ``o``, ``stream.Signature(ArrayLayout(unsigned(bits), lanes))``.
    Throughput: one input beat per cycle; ``o`` carries a quarter as many beats.
    """

    def __init__(self, channels: int, height: int, width: int, lanes: int, bits: int, *, name: str = ""):
        where = layer_label(name, "MaxPool2x2")
        check_positive(where, channels=channels, height=height, width=width, lanes=lanes, bits=bits)
        if channels % lanes:
            raise ValueError(f"channels {channels} not divisible by lanes {lanes} {where}")
        if height % 2 or width % 2:
            raise ValueError(f"a 2x2/2 pool needs even height and width, got {height}x{width} {where}")
        self.channels, self.height, self.width = channels, height, width
        self.lanes, self.bits, self.name = lanes, bits, name
        self.layout = data.ArrayLayout(unsigned(bits), lanes)
        super().__init__({"i": In(stream.Signature(self.layout)), "o": Out(stream.Signature(self.layout))})

    @property
    def out_shape(self) -> tuple[int, int, int]:
        """(C, H, W) of the output tensor."""
        return self.channels, self.height // 2, self.width // 2

    @property
    def chunks(self) -> int:
        """Beats per pixel."""
        return self.channels // self.lanes

    def cycles_per_frame(self) -> int:
        """One input beat per cycle: H * W * C / lanes."""
        return self.height * self.width * self.chunks

    def estimate(self) -> Resources:
        """Line buffer of W/2 * C/lanes words plus lane comparators, a stage register and counters (estimate)."""
        word = self.lanes * self.bits
        depth = (self.width // 2) * self.chunks
        counters = sum(max(1, math.ceil(math.log2(n))) for n in (self.chunks, self.width, self.height, depth + 1))
        # LUTs per word bit for the two max stages' compare and select (calibrated: mixq_hw.packing.calibration)
        logic = Resources(lut=POOL_LUT_PER_WORD_BIT * word + 2 * counters, ff=word + 2 * counters + 4)
        return logic + memory_cost(depth, word)

    def elaborate(self, platform) -> Module:
        m = Module()
        chunks, half = self.chunks, self.width // 2
        depth = half * chunks

        m.submodules.line = line = styled_memory(shape=self.layout, depth=depth, init=[])
        wr = line.write_port()
        # A beat reads its partial in the cycle the beat ahead of it writes; the address can only be
        # the same (write-first forwarding needed) when a pixel is a single beat.
        rd = line.read_port(transparent_for=(wr,) if chunks == 1 else ())

        # Position of the next input beat.
        chunk = Signal(range(chunks))
        x = Signal(range(self.width))
        y = Signal(range(self.height))
        col_base = Signal(range(depth))       # (x // 2) * chunks

        # Stage 1: the accepted beat, waiting for its partial maximum from the line buffer.
        s1_valid = Signal()
        s1_beat = Signal(self.layout)
        s1_first = Signal()     # top-left of its window: ignore the stale partial
        s1_write = Signal()     # store the new partial
        s1_emit = Signal()      # bottom-right of its window: output the maximum
        s1_addr = Signal(range(depth))

        s1_fire = s1_valid & (~s1_emit | self.o.ready)
        accept = self.i.valid & self.i.ready
        m.d.comb += [
            self.i.ready.eq(~s1_valid | s1_fire),
            rd.addr.eq(col_base + chunk),
            rd.en.eq(self.i.ready),
        ]

        maximum = Signal(self.layout)
        for lane in range(self.lanes):
            new, old = s1_beat[lane], rd.data[lane]
            m.d.comb += maximum[lane].eq(Mux(s1_first | (new > old), new, old))
        m.d.comb += [
            wr.addr.eq(s1_addr),
            wr.data.eq(maximum),
            wr.en.eq(s1_fire & s1_write),
            self.o.payload.eq(maximum),
            self.o.valid.eq(s1_valid & s1_emit),
        ]

        with m.If(accept):
            m.d.sync += [
                s1_valid.eq(1),
                s1_beat.eq(self.i.payload),
                s1_first.eq(~x[0] & ~y[0]),
                s1_write.eq(~(x[0] & y[0])),
                s1_emit.eq(x[0] & y[0]),
                s1_addr.eq(col_base + chunk),
            ]
            # Advance the raster position.
            with m.If(chunk == chunks - 1):
                m.d.sync += chunk.eq(0)
                with m.If(x == self.width - 1):
                    m.d.sync += [x.eq(0), col_base.eq(0)]
                    m.d.sync += y.eq(Mux(y == self.height - 1, 0, y + 1))
                with m.Else():
                    m.d.sync += x.eq(x + 1)
                    with m.If(x[0]):
                        m.d.sync += col_base.eq(col_base + chunks)
            with m.Else():
                m.d.sync += chunk.eq(chunk + 1)
        with m.Elif(s1_fire):
            m.d.sync += s1_valid.eq(0)
        return m
