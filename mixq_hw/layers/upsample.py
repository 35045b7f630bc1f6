"""Nearest-neighbour upsampling by 2 on a raster pixel stream: (C, H, W) -> (C, 2H, 2W).

Output pixel (y, x) is input pixel (y // 2, x // 2) (:func:`~mixq_hw.layers.reference.upsample2x`): each
input row leaves twice, each pixel twice in a row.  One row buffer (``lib.memory``, ``W * C/lanes`` words
of ``lanes * bits``) holds the input row the output is reading; the next input row overwrites it behind the
output's second pass, slot by slot, so the producer runs ahead as far as the buffer allows.  A flag says
whether the input is writing the row the output reads (the output then waits for each slot to be written)
or the next one (the input then waits, on the output's second pass, until the slot's last reader goes).
No row or frame counter is needed: every input row is one output row pair.
"""

from __future__ import annotations

import math

from amaranth.hdl import Module, Shape, Signal
from amaranth.lib import data, stream
from amaranth.lib.wiring import In, Out

from ..estimate import Resources, memory_cost, styled_memory
from ._checks import check_positive, layer_label
from .spec import LayerSpec, SpecComponent

__all__ = ["Upsample2x", "Upsample2xSpec", "upsample_cycles", "upsample_cost"]


def upsample_cycles(channels: int, height: int, width: int, lanes: int) -> int:
    """One output beat per cycle: 4 * H * W * C / lanes (the input is accepted at a quarter of that rate)."""
    return 4 * height * width * (channels // lanes)


def upsample_cost(channels: int, height: int, width: int, lanes: int, bits: int) -> Resources:
    """One row of W * C/lanes words, the read/write position counters and their comparators (estimate;
    yosys ``synth_xilinx -family xcup`` counts 90 LUTs and 48 FFs at 128 channels, 13x13, 4 lanes of 3 bits,
    where this gives 96 and 44)."""
    row = width * (channels // lanes)
    cbits = max(1, math.ceil(math.log2(2 * row + 1)))
    return memory_cost(row, lanes * bits) + Resources(lut=9 * cbits + 6, ff=4 * cbits + 4)


class Upsample2xSpec(LayerSpec):
    """Nearest upsampling by 2 of a (C, H, W) stream into (C, 2H, 2W), same lanes and bits.

    Ports: ``i`` and ``o``, ``stream.Signature(ArrayLayout(unsigned(bits), lanes))`` (``signed(bits)`` with
    ``signed=True``).  Throughput one output beat per cycle; latency: output beat 0 leaves 2 cycles after
    input beat 0 enters.
    """

    kind = "Upsample2x"

    def __init__(self, channels: int, height: int, width: int, lanes: int, bits: int, *, signed: bool = False,
                 name: str = ""):
        where = layer_label(name, self.kind)
        check_positive(where, channels=channels, height=height, width=width, lanes=lanes, bits=bits)
        if channels % lanes:
            raise ValueError(f"channels {channels} not divisible by lanes {lanes} {where}")
        self.channels, self.height, self.width = channels, height, width
        self.lanes, self.bits, self.signed, self.name = lanes, bits, bool(signed), name
        self.layout = data.ArrayLayout(Shape(bits, signed=self.signed), lanes)
        self.declare_ports({"i": In(stream.Signature(self.layout)), "o": Out(stream.Signature(self.layout))})

    @property
    def out_shape(self) -> tuple[int, int, int]:
        """(C, H, W) of the output tensor."""
        return self.channels, 2 * self.height, 2 * self.width

    def cycles_per_frame(self) -> int:
        """See :func:`upsample_cycles`."""
        return upsample_cycles(self.channels, self.height, self.width, self.lanes)

    def estimate(self) -> Resources:
        """See :func:`upsample_cost`."""
        return upsample_cost(self.channels, self.height, self.width, self.lanes, self.bits)


class Upsample2x(Upsample2xSpec, SpecComponent):
    """The hardware of :class:`Upsample2xSpec` (the same arguments)."""

    def elaborate(self, platform) -> Module:
        m = Module()
        chunks = self.channels // self.lanes
        row = self.width * chunks

        m.submodules.line = line = styled_memory(shape=self.layout, depth=row, init=[])
        wr, rd = line.write_port(), line.read_port(transparent_for=())

        ahead = Signal()                    # the input writes the row after the one the output reads
        in_slot = Signal(range(row))        # x * chunks + chunk of the next input beat
        in_chunk = Signal(range(chunks))
        # (2x + 1) * chunks + chunk: where the second pass last reads the slot the input writes next
        last_reader = Signal(range(2 * row), init=chunks)
        out_pos = Signal(range(2 * row))    # x * chunks + chunk of the next output beat in its row
        out_chunk = Signal(range(chunks))
        out_odd_x = Signal()
        out_base = Signal(range(row))       # (x // 2) * chunks
        second = Signal()                   # the output row is the second of its pair

        s1_valid = Signal()
        out_slot = out_base + out_chunk
        can_read = ahead | (out_slot < in_slot)
        fire = can_read & (~s1_valid | self.o.ready)
        # On the second pass a slot is free once its last reader has gone, or goes now (the read port is not
        # transparent: a read and a write of one slot in one cycle read the old code).
        m.d.comb += self.i.ready.eq(~ahead | (second & ((out_pos > last_reader) | (fire & (out_pos == last_reader)))))
        accept = self.i.valid & self.i.ready
        in_row_end = in_slot == row - 1
        out_row_end = out_pos == 2 * row - 1

        m.d.comb += [
            wr.addr.eq(in_slot), wr.data.eq(self.i.payload), wr.en.eq(accept),
            rd.addr.eq(out_slot), rd.en.eq(fire),
            self.o.payload.eq(rd.data), self.o.valid.eq(s1_valid),
        ]
        with m.If(accept & in_row_end & ~(fire & second & out_row_end)):
            m.d.sync += ahead.eq(1)
        with m.Elif(fire & second & out_row_end & ~(accept & in_row_end)):
            m.d.sync += ahead.eq(0)

        with m.If(accept):
            with m.If(in_row_end):
                m.d.sync += [in_slot.eq(0), in_chunk.eq(0), last_reader.eq(chunks)]
            with m.Else():
                m.d.sync += in_slot.eq(in_slot + 1)
                with m.If(in_chunk == chunks - 1):
                    m.d.sync += [in_chunk.eq(0), last_reader.eq(last_reader + chunks + 1)]
                with m.Else():
                    m.d.sync += [in_chunk.eq(in_chunk + 1), last_reader.eq(last_reader + 1)]

        with m.If(fire):
            m.d.sync += s1_valid.eq(1)
            with m.If(out_row_end):
                m.d.sync += [out_pos.eq(0), out_chunk.eq(0), out_odd_x.eq(0), out_base.eq(0), second.eq(~second)]
            with m.Else():
                m.d.sync += out_pos.eq(out_pos + 1)
                with m.If(out_chunk == chunks - 1):
                    m.d.sync += [out_chunk.eq(0), out_odd_x.eq(~out_odd_x)]
                    with m.If(out_odd_x):
                        m.d.sync += out_base.eq(out_base + chunks)
                with m.Else():
                    m.d.sync += out_chunk.eq(out_chunk + 1)
        with m.Elif(self.o.ready):
            m.d.sync += s1_valid.eq(0)
        return m


Upsample2xSpec.component_class = Upsample2x
